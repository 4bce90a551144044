"""Clients that get tokens far more often than their tokens' lifetime needs: they are not
caching them, the most common cause of load on a token endpoint (and of audit noise).

Each worker counts, per client, the tokens it issued in the current window and the distinct
addresses that asked (one per replica of the service, roughly). A client that caches needs
about one token per replica per half lifetime (our helper renews at most half a lifetime
early); one that gets :data:`SLACK` times that and at least :data:`MIN_TOKENS` in the window
is named in the maintenance thread's periodic report. Memory is bounded: at most
:data:`MAX_CLIENTS` clients and :data:`MAX_ADDRESSES` addresses each are tracked per window.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

WINDOW_SECONDS = 600.0
MIN_TOKENS = 20
SLACK = 4
MAX_REPORTED = 10
MAX_CLIENTS = 10_000
MAX_ADDRESSES = 64


@dataclass(frozen=True)
class NotCaching:
    """One client's tokens in a window, and how many caching would have needed at most."""

    client_id: str
    tokens: int
    addresses: int
    token_ttl: int
    expected_at_most: int


@dataclass
class _Tally:
    tokens: int = 0
    token_ttl: int = 0
    addresses: set[str] = field(default_factory=set)


class IssuanceWatch:
    """One worker's count of issued tokens per client; ``clock``: monotonic seconds."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._started = clock()
        self._tallies: dict[str, _Tally] = {}

    def record(self, client_id: str, token_ttl: int, address: str) -> None:
        with self._lock:
            tally = self._tallies.get(client_id)
            if tally is None:
                if len(self._tallies) >= MAX_CLIENTS:
                    return
                tally = self._tallies[client_id] = _Tally()
            tally.tokens += 1
            tally.token_ttl = token_ttl
            if len(tally.addresses) < MAX_ADDRESSES:
                tally.addresses.add(address)

    def due(self) -> bool:
        return self._clock() - self._started >= WINDOW_SECONDS

    def report(self) -> list[NotCaching]:
        """The clients of the window now ending that did not cache (the worst first, at most
        :data:`MAX_REPORTED`); a new window starts."""
        with self._lock:
            now = self._clock()
            window, self._started = now - self._started, now
            tallies, self._tallies = self._tallies, {}
        flagged = []
        for client_id, tally in tallies.items():
            per_address = 2 * window / max(tally.token_ttl, 1) + 1
            expected = math.ceil(len(tally.addresses) * per_address)
            if tally.tokens >= max(MIN_TOKENS, SLACK * expected):
                flagged.append(
                    NotCaching(
                        client_id, tally.tokens, len(tally.addresses), tally.token_ttl, expected
                    )
                )
        flagged.sort(key=lambda found: found.tokens / found.expected_at_most, reverse=True)
        return flagged[:MAX_REPORTED]
