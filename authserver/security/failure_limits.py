"""Limits on failed client authentication, against secret guessing.

Only failures count, and the right secret always gets through the per-client limit:
verification is cheap, so an attacker hammering one client id cannot lock its owner out.

- per client id: from the 11th failure within a minute, wrong secrets get 429 instead of 401;
- per source address: from the 51st failure within a minute, that address gets 429 for every
  OAuth request until the window passes.

Counters live in the ``limits`` library's storage: in memory (per worker) by default, or Redis
(``AUTHSERVER_RATELIMIT_STORAGE_URL=redis://…``) to share them between workers and instances.
"""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItemPerMinute
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from authserver.errors import ConfigError

log = logging.getLogger(__name__)

PER_CLIENT = RateLimitItemPerMinute(10)
PER_ADDRESS = RateLimitItemPerMinute(50)


class FailureLimiter:
    def __init__(self, storage_url: str) -> None:
        try:
            storage = storage_from_string(storage_url)
        except Exception as exc:  # the library raises several types for a bad URL
            raise ConfigError(f"AUTHSERVER_RATELIMIT_STORAGE_URL is not usable ({exc})") from None
        self._limiter = MovingWindowRateLimiter(storage)

    def address_retry_after(self, address: str) -> int | None:
        """Seconds until ``address`` may try again, or None while it is under its limit."""
        try:
            if self._limiter.test(PER_ADDRESS, "address", address):
                return None
            return self._retry_after(PER_ADDRESS, "address", address)
        except Exception:  # whatever the storage raises; see _storage_failed
            return self._storage_failed()

    def record_failure(self, client_id: str, address: str) -> int | None:
        """Count one failed authentication; seconds to wait if ``client_id`` is now over its
        limit (the caller answers 429 instead of 401), else None."""
        try:
            self._limiter.hit(PER_ADDRESS, "address", address)
            if self._limiter.hit(PER_CLIENT, "client", client_id):
                return None
            return self._retry_after(PER_CLIENT, "client", client_id)
        except Exception:  # whatever the storage raises; see _storage_failed
            return self._storage_failed()

    @staticmethod
    def _storage_failed() -> None:
        """With the counter store (Redis) unreachable the limits are off, not the server:
        clients with the right secret keep getting tokens, and the failure is logged."""
        log.warning("failed-authentication limits unavailable: the counter storage failed")
        return None

    def _retry_after(self, item: RateLimitItemPerMinute, *keys: str) -> int:
        reset_time = self._limiter.get_window_stats(item, *keys).reset_time
        return max(1, math.ceil(reset_time - time.time()))
