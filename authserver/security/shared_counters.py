"""Failure counters shared by every worker of one instance, in a fixed table of shared memory.

``authserver serve`` creates one file per instance (:func:`create_file`) and names it in the
environment (``authserver.config.SHARED_COUNTERS_ENV``) before its workers start; each worker
maps it, so the tenth failure counts the same whichever worker saw the other nine. Without a
file (tests, an app run in-process) the same table lives in an anonymous mapping: one process.

Windows are fixed, starting at a key's first failure ("N failures within 60 s of the first"):
an exact moving window would need every failure's time, the fixed window needs one entry.

The table never grows: :data:`TABLE_SLOTS` entries of :data:`ENTRY` bytes whatever keys arrive.
A key hashes (keyed BLAKE2b, its key random per instance, so nobody can aim ids at one group)
to a group of :data:`PROBE` neighbouring slots; a new key takes an expired slot of its group,
else the one with the fewest failures, the oldest among equals. A flood of made-up ids thus
reuses the slots of other made-up ids (one failure each) before a locked id's.

Updates run under a thread lock and, with a file, ``flock`` on it, which excludes the other
workers; a check is a hash, the lock and at most :data:`PROBE` reads from memory.
"""

from __future__ import annotations

import fcntl
import hashlib
import math
import mmap
import os
import secrets
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: Key digest, monotonic time the window ends, failures counted in it.
ENTRY = struct.Struct("<16sdI4x")
#: The table's hash key, written once by :func:`create_file`.
HASH_KEY_BYTES = 16
HEADER_BYTES = 64
TABLE_SLOTS = 1 << 16
PROBE = 8


def table_bytes(slots: int = TABLE_SLOTS) -> int:
    return HEADER_BYTES + slots * ENTRY.size


def create_file(path: str, slots: int = TABLE_SLOTS) -> None:
    """A new empty table at ``path`` (owner-only), with a fresh random hash key."""
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "r+b") as handle:
        handle.write(secrets.token_bytes(HASH_KEY_BYTES))
        handle.truncate(table_bytes(slots))


class SharedCounters:
    """Failure counts per key within a window, in a table shared by the processes mapping it."""

    def __init__(
        self,
        path: str | None = None,
        *,
        slots: int = TABLE_SLOTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if slots < PROBE or slots & (slots - 1):
            raise ValueError("slots must be a power of two, at least PROBE")
        self._mask = slots - 1
        self._clock = clock
        self._thread_lock = threading.Lock()
        self._descriptor: int | None = None
        if path is None:
            self._map = mmap.mmap(-1, table_bytes(slots))
            self._map[:HASH_KEY_BYTES] = secrets.token_bytes(HASH_KEY_BYTES)
        else:
            self._descriptor = os.open(path, os.O_RDWR)
            if os.fstat(self._descriptor).st_size != table_bytes(slots):
                os.close(self._descriptor)
                raise ValueError(f"{path} is not a counter table of {slots} slots")
            self._map = mmap.mmap(self._descriptor, table_bytes(slots))
        self._hash_key = bytes(self._map[:HASH_KEY_BYTES])

    def retry_after(self, key: str, limit: int) -> int | None:
        """Seconds until ``key``'s window ends if it holds ``limit`` failures, else None."""
        digest = self._digest(key)
        with self._locked():
            now = self._clock()
            _, ends, failures = self._find(digest, now)
        return _seconds_left(ends, now) if failures >= limit else None

    def hit(self, key: str, limit: int, window: float) -> int | None:
        """Count one failure for ``key``, unless it already holds ``limit`` in its window: then
        nothing is counted and the seconds until the window ends are returned."""
        digest = self._digest(key)
        with self._locked():
            now = self._clock()
            offset, ends, failures = self._find(digest, now)
            if failures >= limit:
                return _seconds_left(ends, now)
            if failures == 0:
                ends = now + window
            ENTRY.pack_into(self._map, offset, digest, ends, failures + 1)
        return None

    def _digest(self, key: str) -> bytes:
        data = key.encode("utf-8", "surrogatepass")
        return hashlib.blake2b(data, digest_size=16, key=self._hash_key).digest()

    def _find(self, digest: bytes, now: float) -> tuple[int, float, int]:
        """``digest``'s slot, window end and live failures (0 if none or expired); for a new
        key, the slot it may take (see the module's docstring)."""
        start = int.from_bytes(digest[:8], "little")
        victim, victim_rank = 0, (math.inf, math.inf)
        for step in range(PROBE):
            offset = HEADER_BYTES + ((start + step) & self._mask) * ENTRY.size
            stored, ends, failures = ENTRY.unpack_from(self._map, offset)
            live = ends > now
            if stored == digest:
                return (offset, ends, failures) if live else (offset, 0.0, 0)
            rank = (failures, ends) if live else (0.0, 0.0)
            if rank < victim_rank:
                victim, victim_rank = offset, rank
        return victim, 0.0, 0

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._thread_lock:
            if self._descriptor is None:
                yield
                return
            fcntl.flock(self._descriptor, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._descriptor, fcntl.LOCK_UN)


def _seconds_left(ends: float, now: float) -> int:
    return max(1, math.ceil(ends - now))
