"""How busy each worker of one instance is, so that a worker with a queue can send a client to
an idle one.

granian gives each worker a listening socket of its own (``SO_REUSEPORT``), and the kernel
hashes every new connection to one of them. A few kept-alive connections (a proxy's pool, a
load test) can therefore all land on one worker while another idles: with two workers and four
connections, one time in eight, and then the instance serves at one core's speed. A worker
cannot hand a connection over, but it can ask its client to come back: when it has requests
queued while another worker has none, its answer carries ``Connection: close`` (at most once per
:data:`SHED_INTERVAL_SECONDS`), and the client's next connection is hashed afresh. Balanced
workers are never both queued and idle, so they close nothing.

Each worker owns one slot of a small table in shared memory (a file ``authserver serve``
creates, named in the environment as :data:`~authserver.config.WORKER_LOADS_ENV`): its pid and
the requests it has in hand. A slot has one writer, so no lock is taken per request; a reader
may see a count one request old, which only delays a decision by a request. Without the file
(tests, an app run in-process) there is one worker and nothing to decide.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
import time
from collections.abc import Callable

#: A worker's pid (0: a free slot) and the requests it has in hand.
SLOT = struct.Struct("<iI")
MAX_WORKERS = 256
#: A worker closes at most one connection this often: a client that lands on it again (the
#: hash is random) is asked again only after this pause.
SHED_INTERVAL_SECONDS = 0.25
#: Requests in hand (the one being answered included) from which a worker counts as queued.
QUEUED = 2


def create_file(path: str) -> None:
    """A new table of free slots at ``path`` (owner-only)."""
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "r+b") as handle:
        handle.truncate(SLOT.size * MAX_WORKERS)


class WorkerLoads:
    """This worker's slot in the table at ``path``; with ``path`` None, a worker alone."""

    def __init__(self, path: str | None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._in_hand = 0
        self._last_shed = float("-inf")
        self._map: mmap.mmap | None = None
        self._offset = 0
        self._pid = os.getpid()
        if path is not None:
            with open(path, "r+b") as handle:
                self._map = mmap.mmap(handle.fileno(), SLOT.size * MAX_WORKERS)
                fcntl.flock(handle, fcntl.LOCK_EX)  # one claim at a time, across the workers
                try:
                    self._offset = _free_slot(self._map) * SLOT.size
                    SLOT.pack_into(self._map, self._offset, self._pid, 0)
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)

    def begin(self) -> None:
        """A request is in hand."""
        self._in_hand += 1
        if self._map is not None:
            SLOT.pack_into(self._map, self._offset, self._pid, self._in_hand)

    def end(self) -> bool:
        """The request is answered; True when its connection should close (see the module)."""
        close = (
            self._map is not None
            and self._in_hand >= QUEUED
            and self._clock() - self._last_shed >= SHED_INTERVAL_SECONDS
            and _another_idle(self._map, self._offset)
        )
        if close:
            self._last_shed = self._clock()
        self._in_hand -= 1
        if self._map is not None:
            SLOT.pack_into(self._map, self._offset, self._pid, self._in_hand)
        return close


def _another_idle(table: mmap.mmap, own_offset: int) -> bool:
    """Whether a worker other than the one at ``own_offset`` has no request in hand."""
    for offset in range(0, SLOT.size * MAX_WORKERS, SLOT.size):
        pid, in_hand = SLOT.unpack_from(table, offset)
        if pid == 0:
            return False  # slots are claimed in order: no more workers
        if offset != own_offset and in_hand == 0 and _alive(pid):
            return True
    return False


def _free_slot(table: mmap.mmap) -> int:
    """The first slot never claimed, or whose worker is gone (a respawned worker's)."""
    for index in range(MAX_WORKERS):
        pid, _ = SLOT.unpack_from(table, index * SLOT.size)
        if pid == 0 or not _alive(pid):
            return index
    raise RuntimeError(f"more than {MAX_WORKERS} workers share one load table")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
