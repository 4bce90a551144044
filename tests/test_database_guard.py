"""The database guard's circuit, driven by a hand-moved clock and plain functions standing in
for database calls (the real database, stopped and hung, is in tests/test_database_outage.py).

Only the hung-call tests wait, and only the guard's own timeout, set to a few milliseconds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from authserver.services.database_guard import DatabaseGuard, DatabaseUnreachable
from tests.support.clock import ManualClock
from tests.support.waiting import wait_until

SHORT_TIMEOUT = 0.05


def refused() -> int:
    raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))


def answers() -> int:
    return 42


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def guard(clock: ManualClock) -> DatabaseGuard:
    return DatabaseGuard(timeout=SHORT_TIMEOUT, probe_interval=1.0, max_in_flight=2, clock=clock)


@pytest.fixture
def hang() -> Iterator[threading.Event]:
    """A call that hangs until the test (or its end) lets it go."""
    released = threading.Event()
    yield released
    released.set()


def test_an_answer_passes_through_and_the_circuit_stays_closed(guard: DatabaseGuard) -> None:
    assert guard.call(answers) == 42
    assert guard.unreachable_for is None


def test_a_refused_connection_opens_the_circuit_and_calls_fail_at_once_until_the_probe(
    guard: DatabaseGuard, clock: ManualClock
) -> None:
    with pytest.raises(DatabaseUnreachable):
        guard.call(refused)
    calls: list[str] = []

    def counted() -> int:
        calls.append("call")
        return answers()

    clock.now += 0.99
    with pytest.raises(DatabaseUnreachable):
        guard.call(counted)
    assert calls == []
    assert guard.unreachable_for == pytest.approx(0.99)

    clock.now += 0.01
    assert guard.call(counted) == 42  # the probe: it answers, and the circuit closes
    assert guard.unreachable_for is None
    assert guard.call(counted) == 42
    assert calls == ["call", "call"]


def test_a_failed_probe_keeps_the_circuit_open_for_another_interval(
    guard: DatabaseGuard, clock: ManualClock
) -> None:
    with pytest.raises(DatabaseUnreachable):
        guard.call(refused)
    clock.now += 1.0
    with pytest.raises(DatabaseUnreachable):
        guard.call(refused)
    clock.now += 0.5
    with pytest.raises(DatabaseUnreachable):
        guard.call(answers)
    assert guard.unreachable_for == pytest.approx(1.5)


def test_an_error_of_the_query_itself_passes_through_and_does_not_open_the_circuit(
    guard: DatabaseGuard,
) -> None:
    def duplicate() -> int:
        raise IntegrityError("INSERT", {}, Exception("duplicate key"))

    with pytest.raises(IntegrityError):
        guard.call(duplicate)
    assert guard.unreachable_for is None


def test_a_call_that_hangs_is_abandoned_after_the_timeout_and_no_other_starts_while_it_hangs(
    guard: DatabaseGuard, clock: ManualClock, hang: threading.Event
) -> None:
    def hung() -> int:
        hang.wait()
        return 7

    with pytest.raises(DatabaseUnreachable):
        guard.call(hung)
    assert guard.unreachable_for == 0.0

    clock.now += 5.0  # long past the probe interval, but the hung call still holds its turn
    calls: list[str] = []
    with pytest.raises(DatabaseUnreachable):
        guard.call(lambda: calls.append("call") or 1)
    assert calls == []

    hang.set()  # the database answers the hung call at last: that success closes the circuit
    wait_until(lambda: guard.unreachable_for is None, 5.0, "the circuit closing")
    assert guard.call(answers) == 42


def test_at_most_max_in_flight_calls_run_and_one_more_is_refused_not_queued(
    clock: ManualClock, hang: threading.Event
) -> None:
    """Refused without opening the circuit: a busy worker says nothing about the database."""
    guard = DatabaseGuard(timeout=30.0, max_in_flight=2, clock=clock)
    started = threading.Semaphore(0)

    def slow() -> int:
        started.release()
        hang.wait()
        return 1

    threads = [threading.Thread(target=_call, args=(guard, slow)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for _ in threads:
        assert started.acquire(timeout=5)
    with pytest.raises(DatabaseUnreachable):
        guard.call(answers)
    assert guard.unreachable_for is None
    hang.set()
    for thread in threads:
        thread.join(timeout=5)
    assert guard.call(answers) == 42


def _call(guard: DatabaseGuard, work: Callable[[], int]) -> None:
    guard.call(work)
