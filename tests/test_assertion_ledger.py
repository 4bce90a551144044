"""The SQLite ledger of spent assertions (``authserver/services/assertion_ledger.py``) on a
real, migrated SQLite file: several connections racing with one ``jti``, the rows the ORM
reads, and a database it cannot write to. The PostgreSQL ledger is exercised through HTTP by
tests/test_private_key_jwt.py on both databases."""

from __future__ import annotations

import shutil
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from authserver.services.assertion_ledger import (
    FIRST_PAUSE_SECONDS,
    LONGEST_PAUSE_SECONDS,
    GuardedLedger,
    SqliteLedger,
    ledger_for,
)
from authserver.services.assertions import was_used
from authserver.services.database_guard import (
    CALL_TIMEOUT_SECONDS,
    DatabaseGuard,
    DatabaseUnreachable,
)


@pytest.fixture
def database_file(migrated_sqlite_url: str) -> str:
    return migrated_sqlite_url.removeprefix("sqlite:///")


def later(seconds: int = 120) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def test_of_eight_threads_on_four_ledgers_spending_one_jti_exactly_one_succeeds(
    database_file: str,
) -> None:
    ledgers = [SqliteLedger(database_file) for _ in range(4)]  # four workers
    start, results = threading.Barrier(8), []

    def spend(ledger: SqliteLedger) -> None:
        start.wait(timeout=10)
        results.append(ledger.spend("client-a", "jti-1", later()))

    threads = [threading.Thread(target=spend, args=(ledger,)) for ledger in ledgers * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(results) == [False] * 7 + [True]


def test_a_jti_is_spent_per_issuer_and_read_back_by_the_orm(
    migrated_sqlite_url: str, database_file: str
) -> None:
    ledger = SqliteLedger(database_file)
    assert ledger.spend("client-a", "jti-1", later())
    assert ledger.spend("client-b", "jti-1", later())
    assert not ledger.spend("client-a", "jti-1", later())

    engine = create_engine(migrated_sqlite_url)
    with Session(engine) as session:
        now = datetime.now(UTC)
        assert was_used(session, "client-a", "jti-1", now)
        assert not was_used(session, "client-a", "jti-2", now)
        assert not was_used(session, "client-a", "jti-1", later(200))  # compared as the ORM binds
    engine.dispose()


class Stopwatch:
    """A monotonic clock that only the ledger's pauses move, so a wait of the guard's whole
    bound takes no time and every pause is on record."""

    def __init__(self) -> None:
        self.now = 0.0
        self.pauses: list[float] = []

    def clock(self) -> float:
        return self.now

    def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds


@pytest.fixture
def blocker(database_file: str) -> Iterator[sqlite3.Connection]:
    """Another process's connection holding SQLite's write lock until it rolls back."""
    connection = sqlite3.connect(database_file, isolation_level=None)
    connection.execute("BEGIN IMMEDIATE")
    yield connection
    if connection.in_transaction:
        connection.execute("ROLLBACK")
    connection.close()


def test_a_locked_database_is_unreachable_after_the_guards_bound_and_the_ledger_recovers(
    database_file: str, blocker: sqlite3.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    watch = Stopwatch()
    ledger = SqliteLedger(database_file, clock=watch.clock, pause=watch.pause)

    with pytest.raises(DatabaseUnreachable, match="locked"):
        ledger.spend("client-a", "jti-1", later())

    assert watch.now >= CALL_TIMEOUT_SECONDS
    assert watch.pauses[0] == FIRST_PAUSE_SECONDS
    assert watch.pauses == sorted(watch.pauses)  # doubling, then the longest pause
    assert max(watch.pauses) == LONGEST_PAUSE_SECONDS
    assert "used assertion not recorded (SQLite: database is locked)" in caplog.text
    blocker.execute("ROLLBACK")
    assert ledger.spend("client-a", "jti-1", later())


def test_a_writer_waiting_for_the_lock_writes_once_it_is_released(
    database_file: str, blocker: sqlite3.Connection
) -> None:
    pauses: list[float] = []

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        if blocker.in_transaction:
            blocker.execute("ROLLBACK")

    ledger = SqliteLedger(database_file, pause=pause)

    assert ledger.spend("client-a", "jti-1", later())
    assert pauses == [FIRST_PAUSE_SECONDS]
    assert not ledger.spend("client-a", "jti-1", later())


def test_a_database_under_a_path_with_uri_characters_is_the_one_written(
    tmp_path: Path, database_file: str
) -> None:
    folder = tmp_path / "a?b#c%20d"
    folder.mkdir()
    moved = folder / "authserver.db"
    shutil.copyfile(database_file, moved)

    assert SqliteLedger(str(moved)).spend("client-a", "jti-1", later())

    with closing(sqlite3.connect(moved)) as connection:
        assert connection.execute("SELECT count(*) FROM used_assertions").fetchone() == (1,)


def test_a_missing_file_is_unreachable_and_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "gone.db"

    with pytest.raises(DatabaseUnreachable):
        SqliteLedger(str(missing)).spend("client-a", "jti-1", later())

    assert not missing.exists()


def test_an_in_memory_sqlite_database_goes_through_the_engine(tmp_path: Path) -> None:
    """A ``:memory:`` database exists only on the engine's own connection."""
    assert isinstance(ledger_for(create_engine("sqlite://"), DatabaseGuard()), GuardedLedger)
    file_engine = create_engine(f"sqlite:///{tmp_path / 'a.db'}")
    assert isinstance(ledger_for(file_engine, DatabaseGuard()), SqliteLedger)
