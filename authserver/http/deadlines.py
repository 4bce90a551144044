"""Deadlines for request bodies: one timer per worker instead of one per request.

``asyncio.timeout`` arms a timer for every request with a body; on the token path that was
about forty Python calls per request (a heap entry pushed, cancelled, later popped), for a body
that nearly always arrived with its headers. Here each waiting read is noted with its deadline,
and one timer, armed only while reads wait, cancels the overdue ones every ``resolution``
seconds: a stalled body ends between its deadline and ``resolution`` seconds after it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")

#: The longest a stalled read may outlive its deadline.
MAX_RESOLUTION_SECONDS = 0.5


class BodyDeadlines:
    """Bounds the awaits given to :meth:`within` to ``seconds`` each (``TimeoutError``)."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._resolution = min(MAX_RESOLUTION_SECONDS, seconds / 4)
        self._waiting: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._timer: asyncio.TimerHandle | None = None

    async def within(self, awaitable: Awaitable[T]) -> T:
        """``awaitable``'s result, or ``TimeoutError`` once it has waited past the deadline.

        Cancelling is the same as ``asyncio.timeout``'s: the task is cancelled, and the
        cancellation becomes ``TimeoutError`` unless someone else cancelled the task too.
        """
        task = asyncio.current_task()
        if task is None:  # not run as a task (no one could cancel it): the stdlib's way
            async with asyncio.timeout(self._seconds):
                return await awaitable
        loop = task.get_loop()
        self._waiting[task] = loop.time() + self._seconds
        if self._timer is None:
            self._timer = loop.call_later(self._resolution, self._sweep, loop)
        cancelling = task.cancelling()
        try:
            return await awaitable
        except asyncio.CancelledError:
            if task in self._expired and task.uncancel() <= cancelling:
                raise TimeoutError from None
            raise
        finally:
            del self._waiting[task]
            self._expired.discard(task)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        now = loop.time()
        for task, deadline in self._waiting.items():
            if deadline <= now and task not in self._expired:
                self._expired.add(task)
                task.cancel()
        if self._waiting:
            self._timer = loop.call_later(self._resolution, self._sweep, loop)
