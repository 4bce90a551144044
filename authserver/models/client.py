"""Registered clients and their hashed secrets."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from authserver.models.base import Base, UTCDateTime, utcnow


class Client(Base):
    """A service allowed to obtain tokens with the client_credentials grant.

    ``scope`` is the space-separated set of scopes the client may ask for (RFC 6749 §3.3);
    ``audiences`` the resource indicators it may name (RFC 8707).
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
