"""Client assertions already used, so each is accepted once (RFC 7523 §3, item 7)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from authserver.models.base import Base, UTCDateTime


class UsedAssertion(Base):
    """One accepted assertion, by a digest of its client id and ``jti``, until it expires.

    The digest, not the ``jti`` itself: a ``jti`` is whatever the client chose (up to the
    form's size), and the table needs a fixed-width key its primary-key index serves. The row
    is written once per assertion with "insert unless present", which is the whole replay
    check: every worker and instance sharing the database sees the same rows.
    """

    __tablename__ = "used_assertions"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: Past this the assertion is refused as expired anyway, and the row can go.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
