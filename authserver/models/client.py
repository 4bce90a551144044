"""Registered clients and their hashed secrets."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from authserver.models.base import Base, UTCDateTime, utcnow


class Client(Base):
    """A service allowed to obtain tokens with the client_credentials grant.

    ``scope`` is the space-separated set of scopes the client may ask for (RFC 6749 §3.3);
    ``audiences`` the resource indicators it may name (RFC 8707). ``auth_method`` is how it
    authenticates (RFC 7591 §2 ``token_endpoint_auth_method``): with a secret
    (``client_secret_basic``, which also admits ``client_secret_post``), or with a signed
    assertion (``private_key_jwt``, RFC 7523 §2.2) verified against its public keys, given
    either inline (``jwks``) or as a URL it serves them at (``jwks_uri``).
    ``max_tokens_per_hour`` caps the tokens it gets (None: no cap).
    """

    __tablename__ = "clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    scope: Mapped[str] = mapped_column(Text)
    audiences: Mapped[list[str]] = mapped_column(JSON, default=list)
    token_ttl: Mapped[int | None] = mapped_column(Integer, nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    auth_method: Mapped[str] = mapped_column(
        String(32), default="client_secret_basic", server_default="client_secret_basic"
    )
    jwks: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    jwks_uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    max_tokens_per_hour: Mapped[int | None] = mapped_column(Integer, nullable=True)

    secrets: Mapped[list[ClientSecret]] = relationship(
        back_populates="client",
        cascade="all, delete-orphan",
        order_by="ClientSecret.id",
    )


class ClientSecret(Base):
    """One secret of a client, kept only as a hash (see ``authserver.security.secrets``).

    A separate table so that a rotated secret can overlap with its successor for a grace
    period; ``expires_at`` is when it stops being accepted.
    """

    __tablename__ = "client_secrets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(
        ForeignKey("clients.client_id", ondelete="CASCADE"), index=True
    )
    secret_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    client: Mapped[Client] = relationship(back_populates="secrets")
