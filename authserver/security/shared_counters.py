"""Failure counters shared by every worker of one instance, in a fixed table of shared memory.

``authserver serve`` creates one file per instance (:func:`create_file`) and names it in the
environment (``authserver.config.SHARED_COUNTERS_ENV``) before its workers start; each worker
maps it, so the tenth failure counts the same whichever worker saw the other nine. Without a
file (tests, an app run in-process) the same table lives in an anonymous mapping: one process.

Windows are fixed, starting at a key's first failure ("N failures within 60 s of the first"):
an exact moving window would need every failure's time, the fixed window needs one entry.

The table never grows: :data:`TABLE_SLOTS` entries of :data:`ENTRY` bytes whatever keys arrive.
A key hashes (keyed BLAKE2b, its key random per instance, so nobody can aim ids at one group)
to a group of :data:`PROBE` neighbouring slots; a new key takes an expired or empty slot of its
group, else the one with the fewest failures, the oldest among equals. A flood of made-up ids thus
reuses the slots of other made-up ids (one failure each) before a locked id's.

Updates run under a thread lock and, with a file, an exclusive ``flock`` on it, which excludes
the other workers; a check (every OAuth request makes one) takes the lock shared and is a hash
and one search of the group's 256 bytes of memory, no file read.
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
from collections.abc import Callable

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
            raise ValueError(f"slots must be a power of two, at least {PROBE}")
        self._group_mask = slots // PROBE - 1
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
        self._acquire(fcntl.LOCK_SH)
        try:
            now = self._clock()
            offset = self._lookup(digest)
            if offset is None:
                return None
            _, ends, failures = ENTRY.unpack_from(self._map, offset)
        finally:
            self._release()
        return _seconds_left(ends, now) if ends > now and failures >= limit else None

    def hit(self, key: str, limit: int, window: float) -> int | None:
        """Count one failure for ``key``, unless it already holds ``limit`` in its window: then
        nothing is counted and the seconds until the window ends are returned."""
        digest = self._digest(key)
        self._acquire(fcntl.LOCK_EX)
        try:
            now = self._clock()
            offset = self._lookup(digest)
            if offset is not None:
                _, ends, failures = ENTRY.unpack_from(self._map, offset)
                if ends > now:
                    if failures >= limit:
                        return _seconds_left(ends, now)
                    ENTRY.pack_into(self._map, offset, digest, ends, failures + 1)
                    return None
            else:
                offset = self._victim(digest, now)
            ENTRY.pack_into(self._map, offset, digest, now + window, 1)
        finally:
            self._release()
        return None

    def _digest(self, key: str) -> bytes:
        data = key.encode("utf-8", "surrogatepass")
        return hashlib.blake2b(data, digest_size=16, key=self._hash_key).digest()

    def _group(self, digest: bytes) -> int:
        """Where the :data:`PROBE` slots ``digest`` may occupy start."""
        group = int.from_bytes(digest[8:], "little") & self._group_mask
        return HEADER_BYTES + group * PROBE * ENTRY.size

    def _lookup(self, digest: bytes) -> int | None:
        """The offset of ``digest``'s entry, found by one search of its group's bytes."""
        start = self._group(digest)
        end = start + PROBE * ENTRY.size
        found = self._map.find(digest, start, end)
        while found != -1 and (found - start) % ENTRY.size:  # matched across two entries
            found = self._map.find(digest, found + 1, end)
        return None if found == -1 else found

    def _victim(self, digest: bytes, now: float) -> int:
        """The slot a new key takes: expired or empty first, else fewest failures, oldest."""
        start = self._group(digest)
        victim, victim_rank = start, (math.inf, math.inf)
        for offset in range(start, start + PROBE * ENTRY.size, ENTRY.size):
            _, ends, failures = ENTRY.unpack_from(self._map, offset)
            if ends <= now:
                return offset
            if (failures, ends) < victim_rank:
                victim, victim_rank = offset, (failures, ends)
        return victim

    def _acquire(self, operation: int) -> None:
        """Exclude this process's other threads, then (with a file) the other workers.

        ``flock`` belongs to the open file, which this process's threads share: without the
        thread lock, one thread's ``LOCK_UN`` would release another's lock.
        """
        self._thread_lock.acquire()
        if self._descriptor is not None:
            try:
                fcntl.flock(self._descriptor, operation)
            except BaseException:
                self._thread_lock.release()
                raise

    def _release(self) -> None:
        if self._descriptor is not None:
            fcntl.flock(self._descriptor, fcntl.LOCK_UN)
        self._thread_lock.release()


def _seconds_left(ends: float, now: float) -> int:
    return max(1, math.ceil(ends - now))
