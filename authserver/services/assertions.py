"""Client assertions accepted once (RFC 7523 §3 item 7, RFC 7521 §4.2 ``jti``).

An assertion is a bearer credential until it expires: whoever copies one from a log or a
proxy could present it again. Each accepted assertion leaves a row keyed by a digest of its
issuer (the client itself, or a trusted platform) and ``jti`` until its expiry, and the row
is written with "insert unless present", so the check and the record are one indexed write
that every worker and instance sharing the database agrees on: of two requests racing with
the same assertion, exactly one inserts.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy import insert as sql_insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Executable

from authserver.models import UsedAssertion

#: "INSERT ... ON CONFLICT DO NOTHING": one statement, no error to roll back on a replay.
_UPSERTS: dict[str, Callable[..., Any]] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def assertion_digest(issuer: str, jti: str) -> str:
    """SHA-256 of the pair, length-prefixed so no two pairs share an encoding. ``issuer``:
    whoever signed the assertion (a client signing its own, or a trusted platform): a
    ``jti`` is unique per issuer."""
    encoded = f"{len(issuer)}:{issuer}:{jti}".encode()
    return hashlib.sha256(encoded).hexdigest()


def first_use(connection: Connection, issuer: str, jti: str, expires_at: datetime) -> bool:
    """Record the assertion; False if it had been recorded before (a replay).

    On an autocommit Core connection (:mod:`assertion_ledger`): the statement is its own
    transaction, and the ORM session's unit of work would cost more than the insert itself.
    """
    values = {"digest": assertion_digest(issuer, jti), "expires_at": expires_at}
    statement = _insert_unless_present(connection.dialect.name)
    if statement is None:  # another database: the key's violation says "seen"
        try:
            connection.execute(sql_insert(UsedAssertion).values(values))
        except IntegrityError:
            return False
        return True
    # RETURNING, not rowcount: rowcount is not promised for every driver and path (psycopg's
    # read -1 through the ORM on PostgreSQL: every assertion a "replay").
    return connection.execute(statement, values).first() is not None


@functools.cache
def _insert_unless_present(dialect: str) -> Executable | None:
    """The upsert for ``dialect``, built once with its values as parameters: building it per
    call was 40 % of a key client's jti record (docs/performance.md)."""
    insert = _UPSERTS.get(dialect)
    if insert is None:
        return None
    statement: Executable = insert_unless_present(insert).returning(UsedAssertion.digest)
    return statement


def insert_unless_present(insert: Callable[..., Any]) -> Any:
    """The used assertion's "insert unless present" in a dialect's ``insert`` construct
    (``postgresql.insert``, ``sqlite.insert``): the one replay check every ledger runs."""
    return insert(UsedAssertion).on_conflict_do_nothing(index_elements=["digest"])


def was_used(session: Session, issuer: str, jti: str, now: datetime) -> bool:
    """Whether the token endpoint has spent this ``jti`` (for diagnostics: reads only)."""
    digest = assertion_digest(issuer, jti)
    found = session.scalar(
        select(UsedAssertion.digest).where(
            UsedAssertion.digest == digest, UsedAssertion.expires_at > now
        )
    )
    return found is not None


def purge_expired_assertions(session: Session, now: datetime) -> None:
    """An expired assertion is refused for its ``exp`` alone: its row is no longer needed."""
    session.execute(delete(UsedAssertion).where(UsedAssertion.expires_at <= now))
