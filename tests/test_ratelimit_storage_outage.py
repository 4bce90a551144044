"""A Redis counter store that refuses, hangs or comes back: requests are held at most about
half a second, the limits fail open, and the outage is logged once, not once per request."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from urllib.parse import urlsplit

import pytest

from authserver.http.metrics import CounterStorageCollector
from authserver.security.counters import REDIS_SOCKET_TIMEOUT_SECONDS
from authserver.security.failure_limits import FailureLimiter
from tests.support.postgres import free_port

#: A bound, not a speed measurement: without the socket timeout a hung Redis held a request
#: for as long as the kernel kept the connection (about 9 s was measured).
HELD_AT_MOST_SECONDS = 4 * REDIS_SOCKET_TIMEOUT_SECONDS
WARNING = "failed-authentication limits off"


@contextmanager
def silent_redis() -> Iterator[str]:
    """A listener that accepts connections and never answers: a hung Redis."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        for connection in accepted:
            connection.close()
        listener.close()


class Switch:
    """A TCP relay to a real Redis that can be cut and restored, as a network outage is."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self._target = (parts.hostname or "127.0.0.1", parts.port or 6379)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self._open = threading.Event()
        self._open.set()
        self._stop = threading.Event()
        self._connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self._listener.getsockname()[1]}"

    def cut(self) -> None:
        self._open.clear()
        for connection in self._connections:
            connection.close()

    def restore(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._stop.set()
        self.cut()
        self._thread.join(timeout=5)
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client = self._listener.accept()[0]
            except TimeoutError:
                continue
            if not self._open.is_set():
                client.close()
                continue
            upstream = socket.create_connection(self._target, timeout=5)
            self._connections += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with closing(source), closing(sink):
            try:
                while chunk := source.recv(65536):
                    sink.sendall(chunk)
            except OSError:
                return


def test_a_hung_redis_holds_a_request_about_half_a_second_and_the_limits_fail_open() -> None:
    with silent_redis() as url:
        limiter = FailureLimiter(url)
        answers: list[int | None] = []
        # In a thread, so that a missing timeout fails the test instead of hanging it.
        asking = threading.Thread(
            target=lambda: answers.append(limiter.address_retry_after("192.0.2.1")), daemon=True
        )
        asking.start()
        asking.join(timeout=HELD_AT_MOST_SECONDS)
        assert not asking.is_alive(), "the request was held by the hung Redis"
        assert answers == [None]
        assert limiter.storage_up is False
        gauge = list(CounterStorageCollector(limiter).collect())[0]
        assert gauge.samples[0].value == 0


def test_a_refused_redis_is_logged_once_per_outage_not_per_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    limiter = FailureLimiter(f"redis://127.0.0.1:{free_port()}")
    with caplog.at_level(logging.WARNING, logger="authserver.security.counters"):
        for _ in range(20):
            assert limiter.record_failure("cli_x", "192.0.2.1") is None
            assert limiter.client_retry_after("cli_x") is None
    warnings = [r.getMessage() for r in caplog.records if WARNING in r.getMessage()]
    assert len(warnings) == 1


def test_the_limits_come_back_with_redis_and_say_so(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    switch = Switch(redis_url)
    try:
        limiter = FailureLimiter(switch.url)
        with caplog.at_level(logging.WARNING, logger="authserver.security.counters"):
            assert limiter.record_failure("cli_back", "192.0.2.7") is None
            assert limiter.storage_up is True
            switch.cut()
            for _ in range(5):
                limiter.record_failure("cli_back", "192.0.2.7")
            assert limiter.storage_up is False
            switch.restore()
            # The first call after the cut may still meet a connection the cut broke.
            for _ in range(5):
                limiter.address_retry_after("192.0.2.7")
                if limiter.storage_up:
                    break
            assert limiter.storage_up is True
            for _ in range(10):
                limiter.record_failure("cli_back", "192.0.2.7")
        # Counted again: at least 10 failures reached Redis after it came back, so the id is
        # locked, as the per-client limit of 10 a minute says.
        assert limiter.client_retry_after("cli_back") is not None
        messages = [r.getMessage() for r in caplog.records]
        assert sum(WARNING in m for m in messages) == 1
        assert sum("limits back" in m for m in messages) == 1
    finally:
        switch.close()
