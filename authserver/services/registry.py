"""Registering and changing clients: what an admin does, used alike by the CLI and (later)
the admin API.

Functions here only ``flush()``; the caller (a CLI command) commits, so one command is one
transaction and a failure leaves nothing half-written.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from authserver.errors import ClientNotFound, InvalidClientData
from authserver.models import Client, ClientSecret, utcnow
from authserver.security import secrets
from authserver.services.client_fields import (
    KEY_AUTH_METHOD,
    MAX_GRACE,
    MAX_SECRET_LIFETIME,
    SECRET_AUTH_METHOD,
    checked_auth_method,
    checked_quota,
    checked_token_ttl,
    hash_chosen_secret,
    in_range,
    key_source,
    normalize_audiences,
    normalize_name,
    normalize_scope,
)


class _Keep(enum.Enum):
    KEEP = "keep"


#: ``update_client``'s default for a field that may also be set to None: leave it as it is.
KEEP = _Keep.KEEP
Keep = Literal[_Keep.KEEP]


@dataclass(frozen=True)
class NewClient:
    """A freshly created client with its secret in clear, which exists only in this object
    (``None`` for a ``private_key_jwt`` client, which has no secret)."""

    client: Client
    client_secret: str | None


@dataclass(frozen=True)
class RotatedSecret:
    """A secret client after a rotation, with its new secret in clear."""

    client: Client
    client_secret: str


def create_client(
    session: Session,
    *,
    name: str,
    scope: str,
    audiences: list[str] | tuple[str, ...] = (),
    token_ttl: int | None = None,
    chosen_secret: str | None = None,
    secret_expires_in: int | None = None,
    auth_method: str = SECRET_AUTH_METHOD,
    jwks: Any | None = None,
    jwks_uri: str | None = None,
    max_tokens_per_hour: int | None = None,
    now: datetime | None = None,
) -> NewClient:
    """Register a client. A secret client's secret is generated unless the admin supplies one
    to migrate; a ``private_key_jwt`` client has no secret, only its public keys."""
    now = now or utcnow()
    client = Client(
        client_id=secrets.generate_client_id(),
        name=normalize_name(name),
        scope=normalize_scope(scope),
        audiences=normalize_audiences(audiences),
        token_ttl=checked_token_ttl(token_ttl),
        enabled=True,
        created_at=now,
        auth_method=checked_auth_method(auth_method),
        max_tokens_per_hour=checked_quota(max_tokens_per_hour),
    )
    plain_secret = None
    if client.auth_method == KEY_AUTH_METHOD:
        if chosen_secret is not None or secret_expires_in is not None:
            raise InvalidClientData("a private_key_jwt client has keys, not a secret")
        client.jwks, client.jwks_uri = key_source(jwks, jwks_uri)
    else:
        if jwks is not None or jwks_uri is not None:
            raise InvalidClientData("jwks and jwks_uri are for private_key_jwt clients only")
        plain_secret, secret = _new_secret(chosen_secret, _expiry(secret_expires_in, now), now)
        client.secrets.append(secret)
    session.add(client)
    session.flush()
    return NewClient(client, plain_secret)


def rotate_secret(
    session: Session,
    client_id: str,
    *,
    grace: int = 0,
    expires_in: int | None = None,
    now: datetime | None = None,
) -> RotatedSecret:
    """Give a client a new generated secret; the previous one works ``grace`` seconds more.

    A client has at most two live secrets, so rotating again during a grace period ends the
    older one at once. Hashes of secrets that stopped working are deleted. The client is
    locked first: rotations running at the same moment would otherwise each read the same
    secrets and each keep "the previous one", leaving three or more live secrets.
    """
    in_range(grace, "grace", 0, MAX_GRACE)
    client = get_client(session, client_id, for_update=True)
    if client.auth_method == KEY_AUTH_METHOD:
        raise InvalidClientData(
            f"client {client_id!r} authenticates with private_key_jwt and has no secret to "
            "rotate; give it new keys with: authserver clients update --jwks-file or --jwks-uri"
        )
    # The clock is read once the lock is held: a rotation that waited for another comes
    # after it, and its secret must be the newer of the two.
    now = now or utcnow()
    grace_end = now + timedelta(seconds=grace)
    expires_at = _expiry(expires_in, now)
    previous = sorted(
        (s for s in client.secrets if not _expired(s, now)),
        key=lambda s: (s.created_at, s.id),
        reverse=True,
    )
    for index, old in enumerate(previous):
        if grace == 0 or index > 0:
            client.secrets.remove(old)
        elif old.expires_at is None or old.expires_at > grace_end:
            old.expires_at = grace_end
    for expired in [s for s in client.secrets if _expired(s, now)]:
        client.secrets.remove(expired)
    plain_secret, secret = _new_secret(None, expires_at, now)
    client.secrets.append(secret)
    session.flush()
    return RotatedSecret(client, plain_secret)


def replace_secret(
    session: Session, client_id: str, chosen_secret: str, *, now: datetime | None = None
) -> Client:
    """Make an admin-chosen secret the client's only one, at once (no grace): what a file
    that names the secret (``authserver apply``'s ``secret_env``) declares."""
    client = get_client(session, client_id, for_update=True)
    if client.auth_method == KEY_AUTH_METHOD:
        raise InvalidClientData(f"client {client_id!r} authenticates with private_key_jwt")
    now = now or utcnow()
    _plain, secret = _new_secret(chosen_secret, None, now)
    client.secrets.clear()
    client.secrets.append(secret)
    session.flush()
    return client


def _lock_database_for_writing(session: Session) -> None:
    """On SQLite, take the database's write lock now, before the transaction reads anything.

    SQLite has no row locks (``FOR UPDATE`` is not even rendered) and its driver begins a
    transaction only at the first write, so a plain read sees a state another process may
    change before this one writes. ``BEGIN IMMEDIATE`` waits out the busy timeout for the
    lock instead. A transaction that has already written holds the lock, so it is left be.
    """
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        return
    driver_connection: Any = connection.connection.driver_connection
    if not driver_connection.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _expiry(expires_in: int | None, now: datetime) -> datetime | None:
    """When a secret given ``expires_in`` seconds stops working (``None``: never)."""
    if expires_in is None:
        return None
    return now + timedelta(seconds=in_range(expires_in, "expires_in", 1, MAX_SECRET_LIFETIME))


def _new_secret(
    chosen_secret: str | None, expires_at: datetime | None, now: datetime
) -> tuple[str, ClientSecret]:
    if chosen_secret is None:
        plain_secret = secrets.generate_client_secret()
        secret_hash = secrets.hash_generated_secret(plain_secret)
    else:
        plain_secret = chosen_secret
        secret_hash = hash_chosen_secret(chosen_secret)
    return plain_secret, ClientSecret(
        secret_hash=secret_hash, created_at=now, expires_at=expires_at
    )


def purge_expired_secrets(session: Session, now: datetime) -> None:
    """Delete the hashes of secrets past their grace period or expiry."""
    session.execute(
        delete(ClientSecret).where(
            ClientSecret.expires_at.is_not(None), ClientSecret.expires_at <= now
        )
    )


def get_client(session: Session, client_id: str, *, for_update: bool = False) -> Client:
    """The client; with ``for_update``, locked until the caller commits.

    The lock (``SELECT ... FOR UPDATE``, the write lock on SQLite) serialises changes that
    read the client's state before writing it, such as a secret rotation.
    """
    if for_update:
        _lock_database_for_writing(session)
    client = session.get(
        Client, client_id, with_for_update=for_update, populate_existing=for_update
    )
    if client is None:
        raise ClientNotFound(client_id)
    return client


def list_clients(session: Session) -> list[Client]:
    return list(session.scalars(select(Client).order_by(Client.created_at, Client.client_id)))


def update_client(
    session: Session,
    client_id: str,
    *,
    name: str | None = None,
    scope: str | None = None,
    audiences: list[str] | tuple[str, ...] | None = None,
    token_ttl: int | None | Keep = KEEP,
    jwks: Any | None = None,
    jwks_uri: str | None = None,
    max_tokens_per_hour: int | None | Keep = KEEP,
) -> Client:
    """Change the given fields; ``audiences`` replaces the whole list, and ``jwks`` or
    ``jwks_uri`` replaces a key client's keys (whichever way they were given before).
    ``token_ttl`` None goes back to the server's default lifetime, ``max_tokens_per_hour``
    None lifts the quota; either left out (``KEEP``) stays as it is."""
    client = get_client(session, client_id)
    if jwks is not None or jwks_uri is not None:
        if client.auth_method != KEY_AUTH_METHOD:
            raise InvalidClientData(
                f"client {client_id!r} authenticates with a secret: only a private_key_jwt "
                "client has keys"
            )
        client.jwks, client.jwks_uri = key_source(jwks, jwks_uri)
    if name is not None:
        client.name = normalize_name(name)
    if scope is not None:
        client.scope = normalize_scope(scope)
    if audiences is not None:
        client.audiences = normalize_audiences(audiences)
    if token_ttl is not KEEP:
        client.token_ttl = checked_token_ttl(token_ttl)
    if max_tokens_per_hour is not KEEP:
        client.max_tokens_per_hour = checked_quota(max_tokens_per_hour)
    session.flush()
    return client


def set_enabled(session: Session, client_id: str, enabled: bool) -> Client:
    client = get_client(session, client_id)
    client.enabled = enabled
    session.flush()
    return client


def delete_client(session: Session, client_id: str) -> None:
    session.delete(get_client(session, client_id))
    session.flush()


def _expired(secret: ClientSecret, now: datetime) -> bool:
    return secret.expires_at is not None and secret.expires_at <= now


def count_clients(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Client)) or 0
