"""Access tokens revoked before their expiry (RFC 7009), by ``jti``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from authserver.models.base import Base, UTCDateTime, utcnow


class RevokedToken(Base):
    """A deny-list entry, kept only until the token would have expired anyway.

    Tokens are stateless JWTs, so this table is the only per-token state; it is read by
    introspection alone, never by the token endpoint.
    """

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    #: Indexed for the workers' poll of what was revoked since they last looked.
    revoked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
