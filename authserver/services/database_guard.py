"""A per-worker circuit in front of the database: no request waits on it for more than about
1.5 seconds, whatever the database does.

Server-side timeouts are not enough: a PostgreSQL that is stopped (SIGSTOP) or cut off by the
network still has its TCP connection acknowledged by the kernel, so a query on it answers
neither result nor error. Each call therefore runs on a thread of its own (a daemon: one that
hangs must not hold up the worker's exit; threads are kept for the next call, since starting one
cost more than the SQLite write of a key client's token) while the caller waits at most
:data:`CALL_TIMEOUT_SECONDS`; a call that does not
answer in time, or fails to connect, opens the circuit. While it is open, callers are told
:class:`DatabaseUnreachable` at once, and one call (a probe) is let through at most every
:data:`PROBE_INTERVAL_SECONDS`, and only when no earlier call still hangs, so hung calls
cannot pile up threads or pool connections. The first call that succeeds closes it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

from sqlalchemy.engine import Engine
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How long a caller waits for one database call: under the contract's 2 seconds with room
#: for the rest of the request.
CALL_TIMEOUT_SECONDS = 1.5
#: How long a background task (the deny-list poll, whose full reload reads every live entry)
#: may wait: no request waits on it, and a large deny-list must still load.
BACKGROUND_CALL_TIMEOUT_SECONDS = 30.0
#: While the circuit is open, how often one call is let through to see if the database is back.
PROBE_INTERVAL_SECONDS = 1.0
#: What a client refused for want of the database should wait (``Retry-After``): about when
#: the next probe may have found the database back.
RETRY_AFTER_SECONDS = 1
#: Calls running at once while the database answers; more are refused rather than queued,
#: since a queued call could wait out its caller's time without the database being at fault.
MAX_CALLS_IN_FLIGHT = 8


class DatabaseUnreachable(SQLAlchemyError):
    """The database did not answer (refused, or no answer in time), or the circuit is open.

    A :class:`SQLAlchemyError`, so a caller that does not handle it gets the same 503 as any
    other database failure.
    """


class DatabaseGuard:
    def __init__(
        self,
        *,
        timeout: float = CALL_TIMEOUT_SECONDS,
        probe_interval: float = PROBE_INTERVAL_SECONDS,
        max_in_flight: int = MAX_CALLS_IN_FLIGHT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._timeout = timeout
        self._probe_interval = probe_interval
        self._max_in_flight = max_in_flight
        self._clock = clock
        self._lock = threading.Lock()
        self._in_flight = 0
        self._unreachable_since: float | None = None
        self._last_probe = 0.0
        self._threads = DaemonThreads("authserver-database")

    @property
    def unreachable_for(self) -> float | None:
        """Seconds since the database was found unreachable, or None while it answers."""
        with self._lock:
            since = self._unreachable_since
        return None if since is None else self._clock() - since

    def call(self, work: Callable[[], T], timeout: float | None = None) -> T:
        """``work()``'s result, or :class:`DatabaseUnreachable` within the timeout (the
        guard's own unless a background caller gives a longer one).

        Errors that say nothing about reachability (a constraint violation, say) are raised
        as they are and leave the circuit as it was.
        """
        self._admit()
        future: Future[T] = Future()
        self._threads.run(lambda: self._run(work, future))
        waited = self._timeout if timeout is None else timeout
        try:
            return future.result(waited)
        except FutureTimeout:
            self._failed(f"no answer within {waited:.1f} s")
            raise DatabaseUnreachable("the database did not answer in time") from None

    def _admit(self) -> None:
        with self._lock:
            if self._unreachable_since is not None:
                now = self._clock()
                if self._in_flight or now - self._last_probe < self._probe_interval:
                    raise DatabaseUnreachable("the database is unreachable")
                self._last_probe = now
            elif self._in_flight >= self._max_in_flight:
                raise DatabaseUnreachable("every database call of this worker is taken")
            self._in_flight += 1

    def _run(self, work: Callable[[], T], future: Future[T]) -> None:
        try:
            result = work()
        except SQLAlchemyError as exc:
            if _means_unreachable(exc):
                self._failed(_first_line(exc))
                unreachable = DatabaseUnreachable(_first_line(exc))
                unreachable.__cause__ = exc
                future.set_exception(unreachable)
            else:
                future.set_exception(exc)
            return
        except BaseException as exc:  # noqa: BLE001 (the caller's thread raises it)
            future.set_exception(exc)
            return
        finally:
            with self._lock:
                self._in_flight -= 1
        self._answered()
        future.set_result(result)

    def _failed(self, reason: str) -> None:
        with self._lock:
            if self._unreachable_since is not None:
                return
            self._unreachable_since = self._last_probe = self._clock()
        log.warning(
            "database unreachable (%s): serving from what this worker last read; "
            "trying again about once a second",
            reason,
        )

    def _answered(self) -> None:
        with self._lock:
            if self._unreachable_since is None:
                return
            self._unreachable_since = None
        log.warning("database reachable again")


class DaemonThreads:
    """Daemon threads that run one job each at a time and wait for the next.

    Unlike ``ThreadPoolExecutor``, whose threads the interpreter joins at exit, a thread stuck
    in a call the database never answers cannot hold up the worker's exit. No bound here: the
    guard admits at most ``max_in_flight`` calls, so at most that many threads exist (a hung
    call keeps its thread, and its admission, until it returns).
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        #: Threads waiting for a job that no submitted job has claimed yet.
        self._unclaimed = 0

    def run(self, job: Callable[[], None]) -> None:
        with self._lock:
            claimed = self._unclaimed > 0
            if claimed:
                self._unclaimed -= 1
        if not claimed:
            threading.Thread(target=self._serve, name=self._name, daemon=True).start()
        self._jobs.put(job)

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                job()
            except Exception:  # the guard's jobs catch their own; a thread must outlive any
                log.exception("a database call failed outside the guard")
            with self._lock:
                self._unclaimed += 1


def _means_unreachable(exc: SQLAlchemyError) -> bool:
    """Refused or broken connections, a timed-out statement or pool: the database's state,
    not the query's fault."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError | InterfaceError | DisconnectionError | PoolTimeout)


def _first_line(exc: BaseException) -> str:
    return (str(exc) or type(exc).__name__).splitlines()[0]


def in_session(engine: Engine, work: Callable[[Session], T]) -> Callable[[], T]:
    """``work`` in a session and transaction of its own, committed if it returns.

    The guard's threads have no Flask app context, so the caller passes the engine (read in
    its own context) rather than using the context's session.
    """

    def run() -> T:
        with Session(engine) as session, session.begin():
            return work(session)

    return run
