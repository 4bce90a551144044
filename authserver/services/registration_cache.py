"""Client registrations (and workload trusts, by issuer) kept in each worker, so the token
endpoint need not read the database.

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

The same rules serve any value read by a string key (:class:`FreshCache`): an empty value
(no registration, no trust for an issuer) counts as unknown.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from authserver.security.secrets import MAX_CLIENT_ID_LENGTH
from authserver.services.database_guard import DatabaseUnreachable
from authserver.services.registrations import Registration

MAX_AGE_SECONDS = 1.0
MAX_ENTRIES = 10_000

V = TypeVar("V")


class FreshCache(Generic[V]):
    """Values read through ``load`` by key, each reused for ``max_age`` seconds; a key
    longer than ``max_key_length`` gets ``empty`` without a lookup."""

    def __init__(
        self,
        load: Callable[[str], V],
        *,
        empty: V,
        max_key_length: int = MAX_CLIENT_ID_LENGTH,
        outage_grace: float = 0.0,
        max_age: float = MAX_AGE_SECONDS,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._empty = empty
        self._max_key_length = max_key_length
        self._outage_grace = outage_grace
        self._max_age = max_age
        self._max_entries = max_entries
        self._clock = clock
        #: When each entry was read (the cache's clock), and what was read.
        self._known: OrderedDict[str, tuple[float, V]] = OrderedDict()
        self._unknown: OrderedDict[str, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, client_id: str) -> V:
        """The value as the database had it at most ``max_age`` seconds ago, or,
        while the database is unreachable, as it was read within the outage grace.

        Raises :class:`DatabaseUnreachable` when neither is known, and whatever else the
        load raises (nothing is cached then).
        """
        if len(client_id) > self._max_key_length:
            return self._empty
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
        self, entries: OrderedDict[str, tuple[float, V]], client_id: str, entry: tuple[float, V]
    ) -> None:
        entries[client_id] = entry
        entries.move_to_end(client_id)
        while len(entries) > self._max_entries:
            entries.popitem(last=False)


class RegistrationCache(FreshCache[Registration | None]):
    """Client registrations by client id; None: no such client."""

    def __init__(self, load: Callable[[str], Registration | None], **options: Any) -> None:
        super().__init__(load, empty=None, **options)
