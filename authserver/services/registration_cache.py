"""Client registrations kept in each worker, so the token endpoint need not read the database.

The contract lets a CLI change take up to 2 seconds to reach every worker; an entry is reused
for at most :data:`MAX_AGE_SECONDS`, so a disabled client, a rotated secret or a changed scope
counts within that time, while a client calling many times a second costs one database read
per second per worker.

Through a database outage (the load raises :class:`DatabaseUnreachable`) an entry read within
the outage grace is used as it was read, so known clients keep getting tokens; a client with
no such entry cannot be answered (the caller says 503). An id the database said it did not know
stays unknown for the grace too: the worker answers as the database last did.

Known and unknown ids are kept apart, each bounded: a flood of made-up ids can neither grow
memory, nor turn into one query per request for long, nor push the real clients out (which
would leave them without an entry for the next outage). Ids longer than any we issue are never
looked up nor kept: 10,000 entries of 200 KB ids took a worker to 1 GiB.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from authserver.security.secrets import MAX_CLIENT_ID_LENGTH
from authserver.services.database_guard import DatabaseUnreachable
from authserver.services.registrations import Registration

MAX_AGE_SECONDS = 1.0
MAX_ENTRIES = 10_000

#: When each entry was read (the cache's clock), and what was read.
_Entries = OrderedDict[str, tuple[float, Registration | None]]


class RegistrationCache:
    def __init__(
        self,
        load: Callable[[str], Registration | None],
        *,
        outage_grace: float = 0.0,
        max_age: float = MAX_AGE_SECONDS,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._outage_grace = outage_grace
        self._max_age = max_age
        self._max_entries = max_entries
        self._clock = clock
        self._known: _Entries = OrderedDict()
        self._unknown: _Entries = OrderedDict()
        self._lock = threading.Lock()

    def get(self, client_id: str) -> Registration | None:
        """The registration as the database had it at most ``max_age`` seconds ago, or,
        while the database is unreachable, as it was read within the outage grace.

        Raises :class:`DatabaseUnreachable` when neither is known, and whatever else the
        load raises (nothing is cached then).
        """
        if len(client_id) > MAX_CLIENT_ID_LENGTH:
            return None
        # Taken before the load, so an entry's age never understates how old its data is.
        now = self._clock()
        with self._lock:
            entries = self._known if client_id in self._known else self._unknown
            entry = entries.get(client_id)
            if entry is not None and now - entry[0] < self._max_age:
                entries.move_to_end(client_id)
                return entry[1]
        try:
            found = self._load(client_id)
        except DatabaseUnreachable:
            if entry is not None and now - entry[0] < self._outage_grace:
                return entry[1]
            raise
        with self._lock:
            self._keep(self._known if found else self._unknown, client_id, (now, found))
            (self._unknown if found else self._known).pop(client_id, None)
        return found

    def _keep(
        self, entries: _Entries, client_id: str, entry: tuple[float, Registration | None]
    ) -> None:
        entries[client_id] = entry
        entries.move_to_end(client_id)
        while len(entries) > self._max_entries:
            entries.popitem(last=False)
