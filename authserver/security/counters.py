"""Counters of events per key within a time window, shared by every worker of an instance or,
through Redis, by every instance: what the failed-authentication limits and the per-client
token quotas count with.

``memory://`` (the default) is a table every worker of the instance maps
(:mod:`authserver.security.shared_counters`), windows fixed from a key's first event; any
other ``AUTHSERVER_RATELIMIT_STORAGE_URL`` (``redis://…``) goes through the ``limits``
library (moving windows). A storage that stops answering turns the counting off, not the
server: :class:`StorageWatch` says so once per outage.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TypeVar
from urllib.parse import urlsplit

from authserver.errors import ConfigError
from authserver.security.shared_counters import SharedCounters

if TYPE_CHECKING:
    from limits import RateLimitItem

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The longest a request waits on a Redis that refuses or hangs, connecting or answering: the
#: limits then fail open for that request instead of holding it (a hung Redis held each
#: request about 9 s). An operator's own ``socket_timeout=`` in the URL's query wins.
REDIS_SOCKET_TIMEOUT_SECONDS = 0.5


class Counters(Protocol):
    def retry_after(self, item: RateLimitItem, kind: str, key: str) -> int | None:
        """Seconds until ``key`` may be counted again if it is at its limit, else None."""

    def hit(self, item: RateLimitItem, kind: str, key: str) -> int | None:
        """Count one event for ``key``, unless it is at its limit: then count nothing and
        return the seconds to wait."""


class SharedMemoryCounters:
    """The ``memory://`` storage: one table for every worker of this instance."""

    def __init__(self, table: SharedCounters) -> None:
        self._table = table

    def retry_after(self, item: RateLimitItem, kind: str, key: str) -> int | None:
        return self._table.retry_after(f"{kind}\0{key}", item.amount)

    def hit(self, item: RateLimitItem, kind: str, key: str) -> int | None:
        return self._table.hit(f"{kind}\0{key}", item.amount, item.get_expiry())


class LimitsCounters:
    """Any other storage the ``limits`` library knows (Redis): shared between instances."""

    def __init__(self, storage_url: str) -> None:
        # Only a storage other than memory:// (the default) needs the library: every CLI
        # command checks this URL at start-up, and importing ``limits`` costs it ~30 ms.
        from limits.storage import storage_from_string
        from limits.strategies import MovingWindowRateLimiter

        options: dict[str, float] = {}
        if urlsplit(storage_url).scheme.startswith("redis"):
            options = {
                "socket_timeout": REDIS_SOCKET_TIMEOUT_SECONDS,
                "socket_connect_timeout": REDIS_SOCKET_TIMEOUT_SECONDS,
            }
        try:
            storage = storage_from_string(storage_url, **options)
        except Exception as exc:  # the library raises several types for a bad URL
            raise ConfigError(f"AUTHSERVER_RATELIMIT_STORAGE_URL is not usable ({exc})") from None
        self._limiter = MovingWindowRateLimiter(storage)

    def retry_after(self, item: RateLimitItem, kind: str, key: str) -> int | None:
        return None if self._limiter.test(item, kind, key) else self._wait(item, kind, key)

    def hit(self, item: RateLimitItem, kind: str, key: str) -> int | None:
        return None if self._limiter.hit(item, kind, key) else self._wait(item, kind, key)

    def _wait(self, item: RateLimitItem, kind: str, key: str) -> int:
        reset_time = self._limiter.get_window_stats(item, kind, key).reset_time
        return max(1, math.ceil(reset_time - time.time()))


def counters_for(
    storage_url: str,
    *,
    shared_file: str | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Counters:
    """The counters ``storage_url`` names; ``shared_file``: the table ``authserver serve``
    made for its workers (memory only)."""
    if urlsplit(storage_url).scheme == "memory":
        return SharedMemoryCounters(SharedCounters(shared_file, clock=clock))
    return LimitsCounters(storage_url)


class StorageWatch:
    """Whether the counter storage answers, logged once when an outage starts and once when
    it ends, not once per request (which filled the log while it lasted)."""

    def __init__(self, what: str) -> None:
        self._what = what
        #: False from a storage failure until the storage answers again (the outage).
        self.up = True

    def failed(self) -> None:
        if self.up:
            self.up = False
            log.warning(
                "%s off: the counter storage does not answer; they come back when it does",
                self._what,
            )

    def answered(self) -> None:
        if not self.up:
            self.up = True
            log.warning("%s back: the counter storage answers again", self._what)


class FailOpenCounters:
    """The counters ``storage_url`` names, for ``what`` (the log's words): while the storage
    does not answer, :meth:`call` answers None (nothing counted, no limit) and the server log
    says so once, so a Redis outage turns the counting off, not the server."""

    def __init__(
        self,
        storage_url: str,
        *,
        what: str,
        shared_file: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._counters = counters_for(storage_url, shared_file=shared_file, clock=clock)
        self.storage = StorageWatch(what)

    def call(self, work: Callable[[Counters], T]) -> T | None:
        """``work(counters)``, or None if the storage failed on the way."""
        try:
            answer = work(self._counters)
        except Exception:  # whatever the storage raises
            self.storage.failed()
            return None
        self.storage.answered()
        return answer
