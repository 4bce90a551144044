"""Client registrations kept in each worker, so the token endpoint need not read the database.

The contract lets a CLI change take up to 2 seconds to reach every worker; an entry is reused
for at most :data:`MAX_AGE_SECONDS`, so a disabled client, a rotated secret or a changed scope
counts within that time, while a client calling many times a second costs one database read
per second per worker. Unknown ids are cached too (as ``None``), and the cache is bounded, so
a flood of made-up ids can neither grow memory nor turn into one query per request for long.
Ids longer than any we issue are never looked up nor kept: 10,000 entries of 200 KB ids took
a worker to 1 GiB.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from authserver.security.secrets import MAX_CLIENT_ID_LENGTH
from authserver.services.registrations import Registration

MAX_AGE_SECONDS = 1.0
MAX_ENTRIES = 10_000


class RegistrationCache:
    def __init__(
        self,
        load: Callable[[str], Registration | None],
        *,
        max_age: float = MAX_AGE_SECONDS,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._max_age = max_age
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, Registration | None]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, client_id: str) -> Registration | None:
        """The registration as the database had it at most ``max_age`` seconds ago.

        A load that fails (the database is down) raises, and nothing is cached: the caller
        answers as it would without a cache.
        """
        if len(client_id) > MAX_CLIENT_ID_LENGTH:
            return None
        # Taken before the load, so an entry's age never understates how old its data is.
        now = self._clock()
        with self._lock:
            entry = self._entries.get(client_id)
            if entry is not None and now - entry[0] < self._max_age:
                self._entries.move_to_end(client_id)
                return entry[1]
        found = self._load(client_id)
        with self._lock:
            self._entries[client_id] = (now, found)
            self._entries.move_to_end(client_id)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        return found
