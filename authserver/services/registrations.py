"""The registration read model: what authenticating a client needs, read in one query.

Used on every token request (through :class:`RegistrationCache`), so it holds plain values
detached from the session, and its checks never write.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from joserfc.jwk import KeySet
from sqlalchemy import select
from sqlalchemy.orm import Session

from authserver.models import Client, ClientSecret
from authserver.security import secrets
from authserver.security.client_keys import InvalidKeySet, public_key_set
from authserver.services.client_fields import SECRET_AUTH_METHOD, capped_token_ttl

#: Anything else cannot be a client id; it is never sent to the database (PostgreSQL rejects
#: a NUL byte in text with an error, which must not look like an outage).
_PLAUSIBLE_CLIENT_ID = re.compile(r"[\x21-\x7E]{1,64}")


@dataclass(frozen=True)
class Registration:
    """What authenticating a client needs, detached from the session so workers can cache it.

    ``secrets`` holds ``(hash, expires_at)`` pairs; expiry is judged at each use, so a cached
    registration never accepts a secret past its end. A ``private_key_jwt`` client has no
    secrets but a ``key_set`` (parsed once per read, not per request) or a ``jwks_uri``.
    """

    client_id: str
    enabled: bool
    scopes: tuple[str, ...]
    audiences: tuple[str, ...]
    token_ttl: int | None
    secrets: tuple[tuple[str, datetime | None], ...]
    auth_method: str = SECRET_AUTH_METHOD
    key_set: KeySet | None = field(default=None, compare=False)
    jwks_uri: str | None = None
    max_tokens_per_hour: int | None = None


def registration(session: Session, client_id: str) -> Registration | None:
    """The client and its secret hashes in one query, or ``None`` if it is not registered."""
    if not _PLAUSIBLE_CLIENT_ID.fullmatch(client_id):
        return None
    rows = session.execute(
        select(
            Client.enabled,
            Client.scope,
            Client.audiences,
            Client.token_ttl,
            Client.auth_method,
            Client.jwks,
            Client.jwks_uri,
            Client.max_tokens_per_hour,
            ClientSecret.secret_hash,
            ClientSecret.expires_at,
        )
        .outerjoin(ClientSecret, ClientSecret.client_id == Client.client_id)
        .where(Client.client_id == client_id)
        .order_by(ClientSecret.id)
    ).all()
    if not rows:
        return None
    first = rows[0]
    return Registration(
        client_id=client_id,
        enabled=first.enabled,
        scopes=tuple(first.scope.split()),
        audiences=tuple(first.audiences),
        token_ttl=capped_token_ttl(first.token_ttl),
        secrets=tuple(
            (row.secret_hash, row.expires_at) for row in rows if row.secret_hash is not None
        ),
        auth_method=first.auth_method,
        key_set=_key_set(first.jwks),
        jwks_uri=first.jwks_uri,
        max_tokens_per_hour=first.max_tokens_per_hour,
    )


def _key_set(jwks: dict[str, Any] | None) -> KeySet | None:
    """The registered keys; a set that no longer passes the rules (stored by hand, or before
    a rule was added) counts as no keys, so its client cannot authenticate."""
    if jwks is None:
        return None
    try:
        return public_key_set(jwks)
    except InvalidKeySet:
        return None


def accepted(
    found: Registration | None,
    secret: str,
    now: datetime,
    verify: Callable[[str, str | None], bool] = secrets.verify_secret,
) -> Registration | None:
    """``found`` if it is enabled and ``secret`` is one of its live secrets, else ``None``.

    Every path verifies at least one hash, so an unknown id, a disabled client and a wrong
    secret cannot be told apart by timing.
    """
    live: list[str | None] = [
        stored
        for stored, expires_at in (found.secrets if found else ())
        if expires_at is None or expires_at > now
    ] or [None]
    matched = False
    for stored in live:
        matched = verify(secret, stored) or matched
    return found if found is not None and found.enabled and matched else None


def authenticate(
    session: Session, client_id: str, secret: str, now: datetime
) -> Registration | None:
    """The enabled client whose live secret matches, or ``None``."""
    return accepted(registration(session, client_id), secret, now)
