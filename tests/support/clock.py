"""A clock for components that take one: the test moves it by hand instead of sleeping."""

from __future__ import annotations


class ManualClock:
    """Seconds (monotonic, or since the epoch for a wall clock) that change only when the
    test sets or advances ``now``."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
