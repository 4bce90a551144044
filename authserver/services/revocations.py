"""The revocation deny-list (RFC 7009): the only state kept about issued tokens.

Introspection reads each worker's copy (:mod:`authserver.services.revocation_list`), kept
current with :func:`revoked_since`."""

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


def purge_expired_revocations(session: Session, now: datetime) -> None:
    """Entries for tokens that have expired are useless: an expired token is inactive anyway."""
    session.execute(delete(RevokedToken).where(RevokedToken.expires_at <= now))


def revoked_since(
    session: Session, since: datetime | None, now: datetime
) -> list[tuple[str, datetime]]:
    """Unexpired entries stamped at or after ``since`` (all unexpired ones if None).

    The incremental query filters by ``revoked_at`` alone, so the database reads only the
    recent end of that index (two range conditions would let it pick the expiry index and
    read every live entry, twice a second per worker); the few expired ones are dropped here.
    """
    if since is None:
        query = select(RevokedToken.jti, RevokedToken.expires_at).where(
            RevokedToken.expires_at > now
        )
    else:
        query = select(RevokedToken.jti, RevokedToken.expires_at).where(
            RevokedToken.revoked_at >= since
        )
    return [(row.jti, row.expires_at) for row in session.execute(query) if row.expires_at > now]
