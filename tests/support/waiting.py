"""Waiting for something another process or thread does, by polling it against a deadline
instead of sleeping a guessed time: the wait ends as soon as the thing is seen, and a thing
that never happens fails naming what was awaited.

For time passing inside a component that takes a clock, move a :mod:`tests.support.clock`
instead: nothing waits at all.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: How often a condition is looked at: often enough that a wait ends within a few tens of
#: milliseconds of the event, rarely enough not to load a busy 2-core machine.
POLL_INTERVAL_SECONDS = 0.05


def poll(
    predicate: Callable[[], T | None], timeout: float, *, interval: float = POLL_INTERVAL_SECONDS
) -> T | None:
    """``predicate()``'s first truthy value, asked every ``interval`` seconds for up to
    ``timeout`` seconds; ``None`` if it stayed falsy. It is always asked at least once, and
    once more when the deadline has passed, so a slow last call cannot be lost."""
    deadline = time.monotonic() + timeout
    while True:
        last_chance = time.monotonic() >= deadline
        value = predicate()
        if value:
            return value
        if last_chance:
            return None
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))


def wait_until(
    predicate: Callable[[], T | None],
    timeout: float,
    what: str,
    *,
    interval: float = POLL_INTERVAL_SECONDS,
    detail: Callable[[], str] | None = None,
) -> T:
    """``predicate()``'s first truthy value within ``timeout`` seconds (see :func:`poll`);
    otherwise an ``AssertionError`` saying that ``what`` did not happen, followed by
    ``detail()`` (a server's log, say) when given."""
    value = poll(predicate, timeout, interval=interval)
    if not value:
        message = f"{what}: not within {timeout:.3g} s"
        raise AssertionError(f"{message}\n{detail()}" if detail is not None else message)
    return value


def holds_throughout(
    check: Callable[[], object],
    seconds: float,
    what: str,
    *,
    interval: float = POLL_INTERVAL_SECONDS,
) -> None:
    """``check()`` stays truthy for ``seconds``, looked at every ``interval`` seconds and once
    more at the end; otherwise an ``AssertionError`` naming ``what``. Only for claims that
    something keeps holding (or that nothing else happens) for a time nothing can signal the
    end of: such a wait costs its whole length, so keep it as short as the claim allows."""
    started = time.monotonic()
    deadline = started + seconds
    while True:
        last = time.monotonic() >= deadline
        if not check():
            raise AssertionError(f"{what}: stopped after {time.monotonic() - started:.2f} s")
        if last:
            return
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
