"""Signing keys of the database key store (``AUTHSERVER_KEY_STORE=database``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from authserver.models.base import Base, UTCDateTime


class StoredSigningKey(Base):
    """One signing key and its schedule, shared by every instance using the database.

    The private key is an encrypted PKCS#8 PEM, never clear text: the passphrase is not in
    the database, so a dump or a backup of it does not give away the keys. ``version`` grows
    on every change of the row, so a worker polling ``(kid, version)`` of every row sees any
    change with one small query.
    """

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(128), primary_key=True)
    alg: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    activates_at: Mapped[datetime] = mapped_column(UTCDateTime)
    encrypted_private_key: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
