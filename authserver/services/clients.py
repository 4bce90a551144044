"""The client registry, used alike by the CLI and the token endpoint.

Functions here only ``flush()``; the caller (a CLI command) commits, so one command is one
transaction and a failure leaves nothing half-written.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from authserver.config import MAX_ACCESS_TOKEN_TTL
from authserver.errors import ClientNotFound, InvalidClientData
from authserver.models import Client, ClientSecret, utcnow
from authserver.security import secrets
from authserver.services.formatting import iso_utc

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5B\x5D-\x7E]+")
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7E]+")
#: Anything else cannot be a client id; it is never sent to the database (PostgreSQL rejects
#: a NUL byte in text with an error, which must not look like an outage).
_PLAUSIBLE_CLIENT_ID = re.compile(r"[\x21-\x7E]{1,64}")
#: RFC 3986 §2 characters (reserved, unreserved, percent-encoded) less ``#``: RFC 8707 §2
#: forbids a fragment in a resource indicator. No whitespace, control or non-ASCII character.
_URI_CHARACTERS = re.compile(r"(?:[A-Za-z0-9\-._~:/?\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})+")
#: RFC 8141 §2: ``urn:`` NID ``:`` NSS, the NID 2 to 32 letters, digits or inner hyphens.
_URN = re.compile(r"urn:[A-Za-z0-9][A-Za-z0-9-]{0,30}[A-Za-z0-9]:.+", re.IGNORECASE)
AUDIENCE_SCHEMES = ("https", "http", "urn")
MAX_NAME_LENGTH = 200
#: An admin-chosen secret can be guessed, unlike a generated one: this is its floor.
MIN_CHOSEN_SECRET_LENGTH = 16
MAX_CHOSEN_SECRET_LENGTH = 512
#: The longest an old secret may keep working after a rotation (a week).
MAX_GRACE = 604_800
#: The longest a secret may be given to live with ``expires_in`` (ten years).
MAX_SECRET_LIFETIME = 315_360_000
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class NewClient:
    """A freshly created client with its secret in clear, which exists only in this object."""

    client: Client
    client_secret: str


def normalize_scope(scope: str) -> str:
    """Validate a space-separated scope list and return it de-duplicated, order kept."""
    tokens = scope.split()
    if not tokens:
        raise InvalidClientData("scope must name at least one scope")
    for token in tokens:
        if not _SCOPE_TOKEN.fullmatch(token):
            raise InvalidClientData(f"scope {token!r} has characters RFC 6749 section 3.3 forbids")
    return " ".join(dict.fromkeys(tokens))


def normalize_audiences(audiences: list[str] | tuple[str, ...]) -> list[str]:
    """Audiences are RFC 8707 resource indicators: absolute URIs without a fragment.

    Only ``https``, ``http`` (with a host) and ``urn`` are accepted: they end up in every
    token's ``aud`` and in resource servers' configuration, where ``javascript:`` or a URI
    with a trailing newline has no business. Python's ``urlsplit`` silently drops tabs and
    newlines, so the characters are checked on the raw string first.
    """
    for audience in audiences:
        if not _is_resource_indicator(audience):
            raise InvalidClientData(
                f"audience {audience!r} must be an absolute https, http or urn URI "
                "without a fragment, whitespace or control characters"
            )
    return list(dict.fromkeys(audiences))


def _is_resource_indicator(audience: str) -> bool:
    if not _URI_CHARACTERS.fullmatch(audience):
        return False
    scheme = audience.partition(":")[0].lower()
    if scheme == "urn":
        return _URN.fullmatch(audience) is not None
    if scheme not in AUDIENCE_SCHEMES:
        return False
    try:
        parts = urlsplit(audience)
        parts.port  # noqa: B018 -- raises ValueError on a port that is not a number in range
    except ValueError:
        return False
    return bool(parts.hostname)


def _normalize_name(name: str) -> str:
    """1 to 200 printable characters, surrounding spaces dropped.

    Names are shown in terminals and logs: a newline would forge a row of ``clients list``,
    an escape sequence would drive the admin's terminal, a bidi override would disguise the
    name. ``str.isprintable`` refuses every Unicode control, format and separator character
    except the ASCII space.
    """
    stripped = name.strip(" ")
    if not name.isprintable() or not 1 <= len(stripped) <= MAX_NAME_LENGTH:
        raise InvalidClientData(
            f"name must be 1 to {MAX_NAME_LENGTH} printable characters "
            "(no newline, tab, escape or other control character)"
        )
    return stripped


def _in_range(value: int, what: str, low: int, high: int) -> int:
    """``value`` if ``low <= value <= high``; the CLI checks the same bounds as a usage error.

    Larger numbers overflow date arithmetic (a ``timedelta`` beyond year 9999) and would
    break key retention, the JWKS and introspection for everyone, not just this client.
    """
    if not low <= value <= high:
        raise InvalidClientData(f"{what} must be {low} to {high} seconds, got {value}")
    return value


def _token_ttl(token_ttl: int | None) -> int | None:
    if token_ttl is None:
        return None
    return _in_range(token_ttl, "token_ttl", 1, MAX_ACCESS_TOKEN_TTL)


def _hash_chosen_secret(secret: str) -> str:
    """Hash an admin-chosen secret after checking it is long enough to resist guessing."""
    if len(secret) < MIN_CHOSEN_SECRET_LENGTH:
        raise InvalidClientData(
            f"the secret must be at least {MIN_CHOSEN_SECRET_LENGTH} characters long "
            f"(it has {len(secret)}); choose a longer one or let authserver generate one"
        )
    if not _PRINTABLE_ASCII.fullmatch(secret) or len(secret) > MAX_CHOSEN_SECRET_LENGTH:
        raise InvalidClientData(
            f"the secret must be {MIN_CHOSEN_SECRET_LENGTH} to {MAX_CHOSEN_SECRET_LENGTH} "
            "printable ASCII characters (no tab, newline or non-ASCII character)"
        )
    return secrets.hash_chosen_secret(secret)


def create_client(
    session: Session,
    *,
    name: str,
    scope: str,
    audiences: list[str] | tuple[str, ...] = (),
    token_ttl: int | None = None,
    chosen_secret: str | None = None,
    secret_expires_in: int | None = None,
    now: datetime | None = None,
) -> NewClient:
    """Register a client; the secret is generated unless the admin supplies one to migrate."""
    now = now or utcnow()
    plain_secret, secret = _new_secret(chosen_secret, _expiry(secret_expires_in, now), now)
    client = Client(
        client_id=secrets.generate_client_id(),
        name=_normalize_name(name),
        scope=normalize_scope(scope),
        audiences=normalize_audiences(audiences),
        token_ttl=_token_ttl(token_ttl),
        enabled=True,
        created_at=now,
    )
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
) -> NewClient:
    """Give a client a new generated secret; the previous one works ``grace`` seconds more.

    A client has at most two live secrets, so rotating again during a grace period ends the
    older one at once. Hashes of secrets that stopped working are deleted. The client is
    locked first: rotations running at the same moment would otherwise each read the same
    secrets and each keep "the previous one", leaving three or more live secrets.
    """
    _in_range(grace, "grace", 0, MAX_GRACE)
    client = get_client(session, client_id, for_update=True)
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
    return NewClient(client, plain_secret)


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
    return now + timedelta(seconds=_in_range(expires_in, "expires_in", 1, MAX_SECRET_LIFETIME))


def _new_secret(
    chosen_secret: str | None, expires_at: datetime | None, now: datetime
) -> tuple[str, ClientSecret]:
    if chosen_secret is None:
        plain_secret = secrets.generate_client_secret()
        secret_hash = secrets.hash_generated_secret(plain_secret)
    else:
        plain_secret = chosen_secret
        secret_hash = _hash_chosen_secret(chosen_secret)
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


def record_last_used(session: Session, last_used: dict[str, datetime]) -> None:
    """Store when clients last authenticated, at most once a minute per client.

    Workers collect the times in memory and call this from a background thread, so the
    token endpoint itself never writes to the database.
    """
    for client_id, moment in last_used.items():
        session.execute(
            update(Client)
            .where(
                Client.client_id == client_id,
                or_(
                    Client.last_used_at.is_(None),
                    Client.last_used_at <= moment - LAST_USED_RESOLUTION,
                ),
            )
            .values(last_used_at=moment)
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
    token_ttl: int | None = None,
) -> Client:
    """Change the given fields; ``audiences`` replaces the whole list."""
    client = get_client(session, client_id)
    if name is not None:
        client.name = _normalize_name(name)
    if scope is not None:
        client.scope = normalize_scope(scope)
    if audiences is not None:
        client.audiences = normalize_audiences(audiences)
    if token_ttl is not None:
        client.token_ttl = _token_ttl(token_ttl)
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


@dataclass(frozen=True)
class Registration:
    """What authenticating a client needs, detached from the session so workers can cache it.

    ``secrets`` holds ``(hash, expires_at)`` pairs; expiry is judged at each use, so a cached
    registration never accepts a secret past its end.
    """

    client_id: str
    enabled: bool
    scopes: tuple[str, ...]
    audiences: tuple[str, ...]
    token_ttl: int | None
    secrets: tuple[tuple[str, datetime | None], ...]


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
        token_ttl=_bounded_stored_ttl(first.token_ttl),
        secrets=tuple(
            (row.secret_hash, row.expires_at) for row in rows if row.secret_hash is not None
        ),
    )


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


def _expired(secret: ClientSecret, now: datetime) -> bool:
    return secret.expires_at is not None and secret.expires_at <= now


def longest_token_ttl(session: Session, default_ttl: int) -> int:
    """The longest lifetime any client's tokens can have: how long a retired key must stay."""
    longest = _bounded_stored_ttl(session.scalar(select(func.max(Client.token_ttl))))
    return max(default_ttl, longest or 0)


def _bounded_stored_ttl(token_ttl: int | None) -> int | None:
    """A stored lifetime, capped at ``MAX_ACCESS_TOKEN_TTL``.

    Versions before the bound stored any number; migration 0003 clamps those rows, but a
    server may read them before ``authserver db upgrade`` runs, and one such row must not
    overflow key retention (JWKS, introspection, ``keys list``) nor mint a near-eternal token.
    """
    return None if token_ttl is None else min(token_ttl, MAX_ACCESS_TOKEN_TTL)


def client_view(client: Client) -> dict[str, Any]:
    """The public client object of the contract: never a secret or a hash."""
    return {
        "client_id": client.client_id,
        "name": client.name,
        "scope": client.scope,
        "audiences": list(client.audiences),
        "token_ttl": client.token_ttl,
        "enabled": client.enabled,
        "created_at": iso_utc(client.created_at),
        "last_used_at": iso_utc(client.last_used_at),
    }
