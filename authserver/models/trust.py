"""Trusts: platform issuers whose workload tokens authenticate as a registered client."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from authserver.models.base import Base, UTCDateTime, utcnow


class Trust(Base):
    """A workload identity trust (the contract's "Workload identity federation").

    A JWT from ``issuer`` whose ``sub`` matches ``subject`` (exact, or a pattern where ``*``
    matches any run of characters) and whose ``aud`` contains ``audience`` authenticates as
    ``client_id``. Its keys come from the issuer's OpenID discovery document, or from
    ``jwks_uri`` when given. ``allow_reuse`` lets one token be presented until it expires
    (Kubernetes and SPIFFE tokens are reused by design); ``max_lifetime`` bounds its
    ``exp - iat``. Deleting the client deletes its trusts.
    """

    __tablename__ = "trusts"

    trust_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(
        ForeignKey("clients.client_id", ondelete="CASCADE"), index=True
    )
    issuer: Mapped[str] = mapped_column(Text, index=True)
    subject: Mapped[str] = mapped_column(Text)
    audience: Mapped[str] = mapped_column(Text)
    jwks_uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    allow_reuse: Mapped[bool] = mapped_column(Boolean, default=False)
    max_lifetime: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
