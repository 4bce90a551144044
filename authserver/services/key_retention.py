"""How long retired signing keys stay published, which depends on the clients' token lifetimes.

A retired key must stay in the JWKS while tokens it signed may live (the longest lifetime any
client's tokens can have) plus the time resource servers may cache the JWKS.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from authserver.config import Settings
from authserver.models import Client
from authserver.services.client_fields import capped_token_ttl
from authserver.services.keys import retention

#: How stale the longest client token lifetime may be. It decides when retired keys leave the
#: JWKS, so a lifetime raised by the CLI must count within about the contract's 2 seconds.
RETENTION_REFRESH_SECONDS = 1.0


def longest_token_ttl(session: Session, default_ttl: int) -> int:
    """The longest lifetime any client's tokens can have: how long a retired key must stay."""
    longest = capped_token_ttl(session.scalar(select(func.max(Client.token_ttl))))
    return max(default_ttl, longest or 0)


@dataclass
class RetentionCache:
    """How long retired keys stay published; refreshed from the database now and then.

    Read by the JWKS endpoint and the maintenance thread, never by the token endpoint.
    ``longest_ttl`` reads :func:`longest_token_ttl` through the database guard, so a
    database that does not answer delays the JWKS by at most the guard's timeout.
    """

    settings: Settings
    longest_ttl: Callable[[], int]
    clock: Callable[[], float] = time.monotonic
    _value: timedelta | None = None
    _fetched_at: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def current(self) -> timedelta:
        with self._lock:
            now = self.clock()
            fresh = (
                self._fetched_at is not None and now - self._fetched_at < RETENTION_REFRESH_SECONDS
            )
            if self._value is None or not fresh:
                self._value = self._fetch(self._value)
                self._fetched_at = now
            return self._value

    def _fetch(self, previous: timedelta | None) -> timedelta:
        """The database's answer; while it is unreachable, the last one (or the default TTL)."""
        try:
            longest = self.longest_ttl()
        except SQLAlchemyError:
            if previous is not None:
                return previous
            longest = self.settings.access_token_ttl
        return retention(self.settings, longest)
