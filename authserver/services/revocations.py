"""The revocation deny-list (RFC 7009): the only state kept about issued tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from authserver.models import RevokedToken, utcnow


def revoke(session: Session, *, jti: str, client_id: str, expires_at: datetime) -> bool:
    """Deny-list a token until its expiry; False if it already was (revocation is idempotent)."""
    if session.get(RevokedToken, jti) is not None:
        return False
    try:
        with session.begin_nested():
            session.add(
                RevokedToken(
                    jti=jti, client_id=client_id, expires_at=expires_at, revoked_at=utcnow()
                )
            )
    except IntegrityError:
        return False  # a concurrent request revoked it first
    return True


def is_revoked(session: Session, jti: str) -> bool:
    return session.scalar(select(RevokedToken.jti).where(RevokedToken.jti == jti)) is not None


def purge_expired_revocations(session: Session, now: datetime) -> None:
    """Entries for tokens that have expired are useless: an expired token is inactive anyway."""
    session.execute(delete(RevokedToken).where(RevokedToken.expires_at <= now))
