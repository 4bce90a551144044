"""Registering workload identity trusts: what an admin does, for the CLI (and later a file
and the admin API) alike.

Functions here only ``flush()``; the caller commits. Each field is checked here, once, so
every way in refuses the same input with the same words.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime
from functools import partial

from sqlalchemy import select
from sqlalchemy.orm import Session

from authserver.errors import InvalidClientData, TrustNotFound
from authserver.models import Trust, utcnow
from authserver.services.client_fields import checked_jwks_uri, in_range
from authserver.services.registry import get_client

TRUST_ID_PREFIX = "trs_"
DEFAULT_MAX_LIFETIME = 3600
#: Platform tokens live minutes to a day; a longer-lived one is no workload identity.
MAX_LIFETIME = 86_400
MAX_FIELD_LENGTH = 1024


def add_trust(
    session: Session,
    *,
    client_id: str,
    issuer: str,
    subject: str,
    audience: str,
    jwks_uri: str | None = None,
    allow_reuse: bool = False,
    max_lifetime: int = DEFAULT_MAX_LIFETIME,
    now: datetime | None = None,
) -> Trust:
    """Trust ``issuer``'s tokens for ``subject`` and ``audience`` to authenticate as the client."""
    get_client(session, client_id)  # an unknown client is refused before anything is written
    issuer = checked_issuer(issuer)
    subject = _checked_text(subject, "subject")
    audience = _checked_text(audience, "audience")
    _refuse_twin(session, issuer, subject, audience)
    trust = Trust(
        trust_id=TRUST_ID_PREFIX + secrets.token_urlsafe(16),
        client_id=client_id,
        issuer=issuer,
        subject=subject,
        audience=audience,
        jwks_uri=None if jwks_uri is None else checked_jwks_uri(jwks_uri),
        allow_reuse=allow_reuse,
        max_lifetime=in_range(max_lifetime, "max_lifetime", 1, MAX_LIFETIME),
        created_at=now or utcnow(),
    )
    session.add(trust)
    session.flush()
    return trust


def update_trust(
    session: Session,
    trust_id: str,
    *,
    jwks_uri: str | None,
    allow_reuse: bool,
    max_lifetime: int,
) -> Trust:
    """Set what a trust may change without becoming another trust: where its issuer's keys
    are (None: discovery), reuse and lifetime. Its client, issuer, subject and audience are
    what it is; another of those is another trust."""
    trust = get_trust(session, trust_id)
    trust.jwks_uri = None if jwks_uri is None else checked_jwks_uri(jwks_uri)
    trust.allow_reuse = allow_reuse
    trust.max_lifetime = in_range(max_lifetime, "max_lifetime", 1, MAX_LIFETIME)
    session.flush()
    return trust


def field_problems(
    *, issuer: str, subject: str, audience: str, jwks_uri: str | None, max_lifetime: int
) -> dict[str, str]:
    """What :func:`add_trust` would refuse in each of these fields, by field, before anything
    is written (``authserver apply`` checks a whole file first and says where)."""
    checks: list[tuple[str, Callable[[], object]]] = [
        ("issuer", partial(checked_issuer, issuer)),
        ("subject", partial(_checked_text, subject, "subject")),
        ("audience", partial(_checked_text, audience, "audience")),
        ("max_lifetime", partial(in_range, max_lifetime, "max_lifetime", 1, MAX_LIFETIME)),
    ]
    if jwks_uri is not None:
        checks.append(("jwks_uri", partial(checked_jwks_uri, jwks_uri)))
    problems = {}
    for name, check in checks:
        try:
            check()
        except InvalidClientData as exc:
            problems[name] = str(exc)
    return problems


def checked_issuer(issuer: str) -> str:
    """An issuer is where its OpenID discovery document is fetched from, so it follows the
    ``jwks_uri`` rules: https, or http on a loopback host. Kept exactly as given: tokens are
    matched to it character for character (OpenID Connect Discovery §4.3), trailing slash
    and all."""
    # The fetcher's module loads httpx: only for a trust being added or changed, not for the
    # commands that show or delete one.
    from authserver.security.remote_jwks import uri_problem

    problem = uri_problem(issuer)
    if problem is not None:
        raise InvalidClientData(f"issuer {issuer!r}: {problem}")
    return issuer


def _refuse_twin(session: Session, issuer: str, subject: str, audience: str) -> None:
    """Two trusts accepting exactly the same tokens would leave the client they become to
    chance: one issuer, subject and audience is one trust."""
    twin = session.scalar(
        select(Trust.trust_id).where(
            Trust.issuer == issuer, Trust.subject == subject, Trust.audience == audience
        )
    )
    if twin is not None:
        raise InvalidClientData(
            f"trust {twin} already accepts this issuer, subject and audience; delete it first"
        )


def _checked_text(value: str, what: str) -> str:
    """Printable, without surrounding spaces, at most ``MAX_FIELD_LENGTH`` characters: these
    are compared with token claims and shown in terminals and logs."""
    if not value or not value.isprintable() or value != value.strip():
        raise InvalidClientData(
            f"{what} must be non-empty printable text without surrounding spaces"
        )
    if len(value) > MAX_FIELD_LENGTH:
        raise InvalidClientData(f"{what} must be at most {MAX_FIELD_LENGTH} characters")
    return value


def get_trust(session: Session, trust_id: str) -> Trust:
    trust = session.get(Trust, trust_id)
    if trust is None:
        raise TrustNotFound(trust_id)
    return trust


def trusts_of(session: Session, issuer: str) -> list[Trust]:
    """The trusts naming ``issuer`` exactly (as tokens write it): for the token endpoint."""
    return list(session.scalars(select(Trust).where(Trust.issuer == issuer)))


def list_trusts(session: Session) -> list[Trust]:
    return list(session.scalars(select(Trust).order_by(Trust.created_at, Trust.trust_id)))


def delete_trust(session: Session, trust_id: str) -> None:
    session.delete(get_trust(session, trust_id))
    session.flush()
