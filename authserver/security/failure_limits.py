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
import time
from collections.abc import Callable

from limits import RateLimitItemPerMinute

from authserver.security.counters import Counters, FailOpenCounters

PER_CLIENT = RateLimitItemPerMinute(10)
PER_ADDRESS = RateLimitItemPerMinute(50)
#: How many bits of an IPv6 address name one source (RFC 6177: a /64 per end site at least).
IPV6_SOURCE_PREFIX = 64
_IPV6_SOURCE_MASK = ((1 << IPV6_SOURCE_PREFIX) - 1) << (128 - IPV6_SOURCE_PREFIX)


class FailureLimiter:
    def __init__(
        self,
        storage_url: str,
        *,
        shared_file: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``shared_file``: the table ``authserver serve`` made for its workers (memory only)."""
        self._counters = FailOpenCounters(
            storage_url, what="failed-authentication limits", shared_file=shared_file, clock=clock
        )

    @property
    def storage_up(self) -> bool:
        """False from a storage failure until the storage answers again (the outage)."""
        return self._counters.storage.up

    def address_retry_after(self, address: str) -> int | None:
        """Seconds until ``address`` may try again, or None while it is under its limit."""
        key = source_key(address)
        return self._counters.call(
            lambda counters: counters.retry_after(PER_ADDRESS, "address", key)
        )

    def client_retry_after(self, client_id: str) -> int | None:
        """Seconds until ``client_id`` is unlocked, or None while it is under its limit."""
        return self._counters.call(
            lambda counters: counters.retry_after(PER_CLIENT, "client", client_id)
        )

    def record_failure(self, client_id: str | None, address: str) -> int | None:
        """Count one failed authentication from ``address`` and, unless None, for ``client_id``;
        seconds to wait if that id was already locked (the answer is 429, not 401), else None."""

        def count(counters: Counters) -> int | None:
            counters.hit(PER_ADDRESS, "address", source_key(address))
            return None if client_id is None else counters.hit(PER_CLIENT, "client", client_id)

        return self._counters.call(count)


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
