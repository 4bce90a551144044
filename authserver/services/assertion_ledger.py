"""Where a key client's token request spends its assertion's ``jti``: the one database write
on the token path, so the one place its cost is decided (docs/performance.md, issue 18).

Both ledgers write one autocommit ``INSERT ... ON CONFLICT DO NOTHING``: the statement is its
own transaction, and of two requests racing with the same assertion exactly one inserts
(:mod:`assertions`).

- :class:`SqliteLedger` (an embedded SQLite file) runs it on the caller's thread, through the
  driver, on a connection of that thread's own. Measured in alternating pairs of ``make
  bench``'s runs (2 workers, c=16, both cores busy): the layers around the write (the guard's
  thread hand-off, the pool's checkout, SQLAlchemy's connection and transaction) cost several
  times what they cost in one process, and dropping them took a key client's token from 1.8×
  to 1.4× a secret client's CPU. A local file cannot hang like a network peer, so the guard's
  thread is not needed: the wait for another writer's lock is bounded by the guard's own
  :data:`CALL_TIMEOUT_SECONDS`, and waited out in short pauses (:meth:`SqliteLedger._insert`).
- :class:`GuardedLedger` (PostgreSQL) runs it on the guard's thread (a database across a
  network can stop answering), in one round trip instead of ``BEGIN``, ``INSERT``, ``COMMIT``.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Engine

from authserver.database import configure_sqlite_connection, sqlite_file
from authserver.models import UsedAssertion
from authserver.services.assertions import (
    assertion_digest,
    first_use,
    insert_unless_present,
)
from authserver.services.database_guard import (
    CALL_TIMEOUT_SECONDS,
    DatabaseGuard,
    DatabaseUnreachable,
)

log = logging.getLogger(__name__)

#: The first wait for another worker's write lock, doubled on each retry up to the longest:
#: the lock is held for about a tenth of a millisecond per row.
FIRST_PAUSE_SECONDS = 0.0001
LONGEST_PAUSE_SECONDS = 0.002


class AssertionLedger(Protocol):
    def spend(self, issuer: str, jti: str, expires_at: datetime) -> bool:
        """Record the assertion until ``expires_at``; False if it was recorded before (a
        replay). Raises :class:`DatabaseUnreachable` when it cannot be recorded."""


def ledger_for(engine: Engine, guard: DatabaseGuard) -> AssertionLedger:
    """The ledger for the engine's database."""
    file = sqlite_file(engine.url)
    if file is not None:
        return SqliteLedger(file)
    return GuardedLedger(engine, guard)


class GuardedLedger:
    """On the guard's thread, as one autocommit statement."""

    def __init__(self, engine: Engine, guard: DatabaseGuard) -> None:
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._guard = guard

    def spend(self, issuer: str, jti: str, expires_at: datetime) -> bool:
        def insert() -> bool:
            with self._engine.connect() as connection:
                return first_use(connection, issuer, jti, expires_at)

        return self._guard.call(insert)


class SqliteLedger:
    """On the calling thread, through a connection each thread keeps to the file, made on
    its first write there (in a worker, never in the process that forks the workers).

    The statement is SQLAlchemy's own for the table (compiled once), and the expiry is bound
    as the column's type binds it, so the rows are the ones :class:`GuardedLedger` and the
    ORM write and read.
    """

    def __init__(
        self,
        path: str,
        clock: Callable[[], float] = time.monotonic,
        pause: Callable[[float], None] = time.sleep,
    ) -> None:
        """``clock`` and ``pause``: monotonic seconds and a sleep, for the wait for the lock."""
        self._clock, self._pause = clock, pause
        # mode=rw: the engine made the file (with its owner-only mode); never create one here.
        # as_uri() escapes what a URI would read as its query or fragment ("?", "#", "%").
        self._uri = f"{Path(path).absolute().as_uri()}?mode=rw"
        self._connections = threading.local()
        dialect = sqlite.dialect()
        compiled = insert_unless_present(sqlite.insert).compile(dialect=dialect)
        self._sql = str(compiled)
        self._order = tuple(compiled.positiontup or ())
        column_type = UsedAssertion.__table__.c.expires_at.type
        bind: Callable[[Any], Any] | None = column_type.dialect_impl(dialect).bind_processor(
            dialect
        )
        self._bind_expiry: Callable[[Any], Any] = bind or (lambda value: value)

    def spend(self, issuer: str, jti: str, expires_at: datetime) -> bool:
        values = {
            "digest": assertion_digest(issuer, jti),
            "expires_at": self._bind_expiry(expires_at),
        }
        parameters = [values[n] for n in self._order]
        try:
            return self._insert(parameters)
        except sqlite3.Error as exc:
            self._drop_connection()
            reason = str(exc) or type(exc).__name__
            # The guard's circuit, which logs an outage once, does not see this connection:
            # one line per refused request (at most one per 1.5 s per thread when locked).
            log.warning("used assertion not recorded (SQLite: %s): the request gets a 503", reason)
            raise DatabaseUnreachable(reason) from exc

    def _insert(self, parameters: list[Any]) -> bool:
        """The insert, retried while another connection holds the write lock, for up to
        :data:`CALL_TIMEOUT_SECONDS`.

        Why not SQLite's busy timeout: its handler sleeps 1, 2, then 5 ms and more between
        tries, for a lock held about 0.1 ms, and the worker's event loop (every request on it)
        sleeps with it. Two processes writing rows as fast as they can used 9–18 % less CPU
        per row with these pauses (docs/performance.md). An autocommit insert refused as busy
        did nothing, so trying it again is safe.
        """
        connection = self._connection()
        deadline: float | None = None
        pause = FIRST_PAUSE_SECONDS
        while True:
            try:
                return connection.execute(self._sql, parameters).rowcount == 1
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                    raise
                now = self._clock()
                deadline = now + CALL_TIMEOUT_SECONDS if deadline is None else deadline
                if now >= deadline:
                    raise
            self._pause(pause)
            pause = min(pause * 2, LONGEST_PAUSE_SECONDS)

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._connections, "connection", None)
        if connection is None:
            connection = sqlite3.connect(
                self._uri,
                uri=True,
                isolation_level=None,  # autocommit: the statement is its own transaction
            )
            # The engine's settings (its busy timeout bounds opening the file); then none:
            # _insert waits for the write lock itself.
            configure_sqlite_connection(connection, int(CALL_TIMEOUT_SECONDS * 1000))
            connection.execute("PRAGMA busy_timeout=0")
            self._connections.connection = connection
        return connection

    def _drop_connection(self) -> None:
        connection = getattr(self._connections, "connection", None)
        self._connections.connection = None
        if connection is not None:
            try:
                connection.close()
            except sqlite3.Error:
                pass
