"""Per-client token quotas: at most ``max_tokens_per_hour`` access tokens an hour for a client
that has one, so one runaway service cannot flood the token endpoint (and whatever verifies
its tokens) for everyone.

Counted in the failed-authentication limits' storage (:mod:`counters`): per instance with
``memory://`` (every worker of the instance shares the count; N instances let a client have
up to N times its quota), across instances with Redis. A token that was refused is not
counted, so a client over its quota gets its next token as soon as the window lets it. When
the storage stops answering, quotas are off (tokens are issued) rather than the server.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

from limits import RateLimitItem, RateLimitItemPerHour

from authserver.security.counters import FailOpenCounters


class TokenQuotas:
    """One worker's view of the quotas; ``shared_file`` and ``clock`` as for the counters."""

    def __init__(
        self,
        storage_url: str,
        *,
        shared_file: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._counters = FailOpenCounters(
            storage_url, what="per-client token quotas", shared_file=shared_file, clock=clock
        )

    def take(self, client_id: str, per_hour: int) -> int | None:
        """Count one token for ``client_id``; if it already had ``per_hour`` this hour, count
        nothing and return the seconds until it may have the next one."""
        item = _per_hour(per_hour)
        return self._counters.call(lambda counters: counters.hit(item, "quota", client_id))


@functools.lru_cache(maxsize=1024)
def _per_hour(amount: int) -> RateLimitItem:
    return RateLimitItemPerHour(amount)
