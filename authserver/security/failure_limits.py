"""Limits on failed client authentication, against secret guessing.

Only failures count:

- per client id: after 10 failures within a minute the id is locked; a wrong secret then gets
  429 instead of 401. Server-generated secrets are still checked (the right one gets through,
  so an attacker cannot lock the owner out, and nobody can guess one); admin-chosen ones are
  not (see :class:`~authserver.security.secrets.RememberingVerifier`).
- per source address: after 50 failures within a minute, that address gets 429 for every
  OAuth request until the window passes. An IPv4 address counts alone; an IPv6 address counts
  with its whole /64, the block one subscriber is usually given, so owning a /64 does not give
  2^64 fresh addresses.

Counters live, by default (``memory://``), in a table every worker of the instance shares
(:mod:`authserver.security.shared_counters`), windows fixed from the first failure; with
``AUTHSERVER_RATELIMIT_STORAGE_URL=redis://…`` they live in Redis through the ``limits``
library (moving windows), shared by every instance.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import math
import time
from collections.abc import Callable
from typing import Protocol
from urllib.parse import urlsplit

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from authserver.errors import ConfigError
from authserver.security.shared_counters import SharedCounters

log = logging.getLogger(__name__)

#: The longest a request waits on a Redis that refuses or hangs, connecting or answering: the
#: limits then fail open for that request instead of holding it (a hung Redis held each
#: request about 9 s). An operator's own ``socket_timeout=`` in the URL's query wins.
REDIS_SOCKET_TIMEOUT_SECONDS = 0.5
PER_CLIENT = RateLimitItemPerMinute(10)
PER_ADDRESS = RateLimitItemPerMinute(50)
#: How many bits of an IPv6 address name one source (RFC 6177: a /64 per end site at least).
IPV6_SOURCE_PREFIX = 64
_IPV6_SOURCE_MASK = ((1 << IPV6_SOURCE_PREFIX) - 1) << (128 - IPV6_SOURCE_PREFIX)


class Counters(Protocol):
    def retry_after(self, item: RateLimitItem, kind: str, key: str) -> int | None:
        """Seconds until ``key`` may fail again if it is at its limit, else None."""

    def hit(self, item: RateLimitItem, kind: str, key: str) -> int | None:
        """Count a failure; if ``key`` was already at its limit, the seconds to wait."""


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


class FailureLimiter:
    def __init__(
        self,
        storage_url: str,
        *,
        shared_file: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``shared_file``: the table ``authserver serve`` made for its workers (memory only)."""
        self._counters: Counters
        #: False from a storage failure until the storage answers again (the outage).
        self.storage_up = True
        if urlsplit(storage_url).scheme == "memory":
            self._counters = SharedMemoryCounters(SharedCounters(shared_file, clock=clock))
        else:
            self._counters = LimitsCounters(storage_url)

    def address_retry_after(self, address: str) -> int | None:
        """Seconds until ``address`` may try again, or None while it is under its limit."""
        try:
            wait = self._counters.retry_after(PER_ADDRESS, "address", source_key(address))
        except Exception:  # whatever the storage raises; see _storage_failed
            self._storage_failed()
            return None
        self._storage_answered()
        return wait

    def client_retry_after(self, client_id: str) -> int | None:
        """Seconds until ``client_id`` is unlocked, or None while it is under its limit."""
        try:
            wait = self._counters.retry_after(PER_CLIENT, "client", client_id)
        except Exception:  # whatever the storage raises; see _storage_failed
            self._storage_failed()
            return None
        self._storage_answered()
        return wait

    def record_failure(self, client_id: str | None, address: str) -> int | None:
        """Count one failed authentication from ``address`` and, unless None, for ``client_id``;
        seconds to wait if that id was already locked (the answer is 429, not 401), else None."""
        try:
            self._counters.hit(PER_ADDRESS, "address", source_key(address))
            wait = (
                None if client_id is None else self._counters.hit(PER_CLIENT, "client", client_id)
            )
        except Exception:  # whatever the storage raises; see _storage_failed
            self._storage_failed()
            return None
        self._storage_answered()
        return wait

    def _storage_failed(self) -> None:
        """With the counter store (Redis) unreachable the limits are off, not the server:
        clients with the right secret keep getting tokens. Said once per outage, when it
        starts, not once per request (which filled the log while it lasted)."""
        if self.storage_up:
            self.storage_up = False
            log.warning(
                "failed-authentication limits off: the counter storage does not answer; "
                "they come back when it does"
            )

    def _storage_answered(self) -> None:
        if not self.storage_up:
            self.storage_up = True
            log.warning("failed-authentication limits back: the counter storage answers again")


@functools.lru_cache(maxsize=4096)
def source_key(address: str) -> str:
    """What the per-address limit counts under: an IPv4 address (an IPv4-mapped IPv6 one
    included) as it is, an IPv6 address as its /64, anything else verbatim."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        network = ipaddress.IPv6Address(int(parsed) & _IPV6_SOURCE_MASK)
        return f"{network}/{IPV6_SOURCE_PREFIX}"
    return str(parsed)
