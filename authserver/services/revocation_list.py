"""Each worker's copy of the deny-list, so introspection never queries the database.

A background poll (:data:`SYNC_INTERVAL_SECONDS`) asks only for entries revoked since the
last poll, so a revocation made on any instance reaches every worker within the contract's
2 seconds. "Since" is taken on this host's clock minus :data:`OVERLAP_SECONDS`: the entries
are stamped by whichever host revoked them, and a transaction may commit a little after its
stamp, so the window overlaps (entries seen twice are merged). A late commit beyond the
overlap is caught by the full reload every :data:`FULL_RELOAD_SECONDS`. After a gap in the
polls (an outage, or a poll slowed by a burst of revocations) the next poll asks from the last
successful one's start, so nothing is missed; reloading everything instead would make a slow
poll (a million entries revoked at once) slower still, round after round.

A revocation made by this worker is added at once. Entries leave with their token's expiry:
an expired token is inactive anyway. While the polls fail, the list answers for the outage
grace from what it last knew, and then no longer (the caller says 503).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

SYNC_INTERVAL_SECONDS = 0.5
#: Our own revocations commit within milliseconds of their stamp (statements time out after
#: 1.5 s), and NTP keeps hosts' clocks far closer than this. Wider would make every poll
#: re-read each entry for that long: after a million revoked at once, a million rows twice
#: a second per worker. Anything later still arrives with the full reload.
OVERLAP_SECONDS = 5.0
FULL_RELOAD_SECONDS = 300.0
#: How often entries past their token's expiry are dropped: a pass over the whole copy, too
#: dear for every poll once the deny-list is large (an expired entry answers nothing wrongly:
#: an expired token is inactive anyway).
PRUNE_SECONDS = 60.0
#: How old the last successful poll may be with no outage grace (``0``): two missed polls.
UNGRACED_STALENESS_SECONDS = 2.0

#: Revoked ``(jti, expires_at)`` pairs stamped at or after the given moment (all if None).
Fetch = Callable[[datetime | None], Iterable[tuple[str, datetime]]]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class RevocationList:
    def __init__(
        self,
        *,
        outage_grace: float,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._usable_for = max(float(outage_grace), UNGRACED_STALENESS_SECONDS)
        self._clock = clock
        self._wall_clock = wall_clock
        self._revoked: dict[str, datetime] = {}
        self._lock = threading.Lock()
        self._synced_at: float | None = None
        self._synced_from: datetime | None = None
        self._reloaded_at: float | None = None
        self._pruned_at: float | None = None

    def usable(self) -> bool:
        """Loaded, and polled successfully within the outage grace."""
        synced_at = self._synced_at
        return synced_at is not None and self._clock() - synced_at < self._usable_for

    def is_revoked(self, jti: str) -> bool:
        return jti in self._revoked

    def add(self, jti: str, expires_at: datetime) -> None:
        with self._lock:
            self._revoked[jti] = expires_at

    def sync(self, fetch: Fetch) -> None:
        """One poll: the entries stamped since the last one (all of them when due); whatever
        ``fetch`` raises is raised, and the list stays as it was."""
        started, started_wall = self._clock(), self._wall_clock()
        since = self._since(started)
        rows = fetch(since)
        with self._lock:
            # Merged, never replaced: nothing is ever un-revoked, and an entry this worker
            # added while a reload ran may be missing from the reload's snapshot.
            self._revoked.update(rows)
            if self._pruned_at is None or started - self._pruned_at >= PRUNE_SECONDS:
                self._revoked = {j: e for j, e in self._revoked.items() if e > started_wall}
                self._pruned_at = started
            self._synced_at, self._synced_from = started, started_wall
            if since is None:
                self._reloaded_at = started

    def _since(self, now: float) -> datetime | None:
        synced_at, synced_from, reloaded_at = self._synced_at, self._synced_from, self._reloaded_at
        if synced_at is None or synced_from is None or reloaded_at is None:
            return None
        if now - reloaded_at >= FULL_RELOAD_SECONDS:
            return None
        return synced_from - timedelta(seconds=OVERLAP_SECONDS)
