"""Each worker's copy of the deny-list: what each poll asks for, what it keeps and for how
long it answers. Driven by hand-moved clocks and a plain function standing in for the query
(the query itself, on SQLite and PostgreSQL, is in tests/test_database_outage.py and every
introspection test)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pytest

from authserver.services.database_guard import DatabaseUnreachable
from authserver.services.revocation_list import (
    FULL_RELOAD_SECONDS,
    OVERLAP_SECONDS,
    PRUNE_SECONDS,
    SYNC_INTERVAL_SECONDS,
    UNGRACED_STALENESS_SECONDS,
    RevocationList,
)
from tests.support.clock import ManualClock

START = datetime(2026, 1, 1, tzinfo=UTC)


class Table:
    """The deny-list as the database holds it, and what each poll asked for."""

    def __init__(self, wall: WallClock) -> None:
        self.wall = wall
        self.rows: dict[str, tuple[datetime, datetime]] = {}  # jti: (revoked_at, expires_at)
        self.asked: list[datetime | None] = []
        self.down = False

    def revoke(self, jti: str, *, expires_in: float = 3600, stamped_ago: float = 0) -> None:
        now = self.wall()
        self.rows[jti] = (now - timedelta(seconds=stamped_ago), now + timedelta(seconds=expires_in))

    def fetch(self, since: datetime | None) -> Iterable[tuple[str, datetime]]:
        self.asked.append(since)
        if self.down:
            raise DatabaseUnreachable("down")
        return [
            (jti, expires)
            for jti, (stamped, expires) in self.rows.items()
            if since is None or stamped >= since
        ]


class WallClock:
    def __init__(self, monotonic: ManualClock) -> None:
        self.monotonic = monotonic
        self.offset = monotonic.now

    def __call__(self) -> datetime:
        return START + timedelta(seconds=self.monotonic.now - self.offset)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def table(clock: ManualClock) -> Table:
    return Table(WallClock(clock))


def revocation_list(table: Table, clock: ManualClock, grace: float = 60.0) -> RevocationList:
    return RevocationList(outage_grace=grace, clock=clock, wall_clock=table.wall)


def test_the_first_poll_loads_everything_and_later_ones_ask_since_the_last_minus_the_overlap(
    table: Table, clock: ManualClock
) -> None:
    table.revoke("jti-1")
    revoked = revocation_list(table, clock)
    assert not revoked.usable()
    revoked.sync(table.fetch)
    assert revoked.is_revoked("jti-1")
    assert not revoked.is_revoked("jti-2")

    clock.now += SYNC_INTERVAL_SECONDS
    table.revoke("jti-2")
    revoked.sync(table.fetch)
    assert revoked.is_revoked("jti-2")
    assert table.asked == [None, START - timedelta(seconds=OVERLAP_SECONDS)]


def test_a_revocation_stamped_late_within_the_overlap_is_still_seen(
    table: Table, clock: ManualClock
) -> None:
    """Another host's clock a little behind, or a transaction committing after its stamp."""
    revoked = revocation_list(table, clock)
    revoked.sync(table.fetch)
    clock.now += SYNC_INTERVAL_SECONDS
    table.revoke("late", stamped_ago=OVERLAP_SECONDS - 1)
    revoked.sync(table.fetch)
    assert revoked.is_revoked("late")


def test_everything_is_reloaded_now_and_then_and_a_gap_asks_from_the_last_poll(
    table: Table, clock: ManualClock
) -> None:
    revoked = revocation_list(table, clock, grace=FULL_RELOAD_SECONDS * 2)
    revoked.sync(table.fetch)
    clock.now += 100  # polls failed (or one was slow) meanwhile
    table.revoke("during-the-gap", stamped_ago=50)
    revoked.sync(table.fetch)
    assert table.asked[-1] == START - timedelta(seconds=OVERLAP_SECONDS)
    assert revoked.is_revoked("during-the-gap")
    for _ in range(int(FULL_RELOAD_SECONDS / 10)):
        clock.now += 10
        revoked.sync(table.fetch)
    assert table.asked.count(None) == 2


def test_entries_leave_with_their_tokens_expiry_and_local_revocations_count_at_once(
    table: Table, clock: ManualClock
) -> None:
    revoked = revocation_list(table, clock)
    table.revoke("short", expires_in=5)
    revoked.sync(table.fetch)
    revoked.add("mine", START + timedelta(seconds=3600))
    assert revoked.is_revoked("short")
    assert revoked.is_revoked("mine")
    clock.now += PRUNE_SECONDS  # pruned once a minute, not at every poll: a pass over all
    revoked.sync(table.fetch)
    assert not revoked.is_revoked("short")
    assert revoked.is_revoked("mine")


def test_while_polls_fail_it_answers_for_the_grace_from_what_it_knew(
    table: Table, clock: ManualClock
) -> None:
    table.revoke("jti-1")
    revoked = revocation_list(table, clock, grace=60.0)
    revoked.sync(table.fetch)
    table.down = True
    clock.now += 59.9
    with pytest.raises(DatabaseUnreachable):
        revoked.sync(table.fetch)
    assert revoked.usable()
    assert revoked.is_revoked("jti-1")
    clock.now += 0.1
    assert not revoked.usable()

    table.down = False
    revoked.sync(table.fetch)
    assert revoked.usable()


def test_without_a_grace_it_answers_only_while_the_polls_succeed(
    table: Table, clock: ManualClock
) -> None:
    revoked = revocation_list(table, clock, grace=0)
    assert not revoked.usable()
    revoked.sync(table.fetch)
    clock.now += UNGRACED_STALENESS_SECONDS - 0.1
    assert revoked.usable()
    clock.now += 0.1
    assert not revoked.usable()
