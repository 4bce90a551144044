"""A loopback HTTP server that misbehaves on purpose: it answers from hand-written bytes, so
it can stall, dribble a response a byte at a time, send a body far larger than it should, or
answer normally. What the client helpers must survive, served over a real socket."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, Self

from tests.support.waiting import poll

#: How long a stalling or dribbling answer goes on at most, so that a client without a
#: deadline (the code before the fix) fails a test in seconds instead of hanging it.
MISBEHAVE_SECONDS = 4.0


class HostileServer:
    """Serves ``routes`` (path → answer) on a free loopback port for a ``with`` block.

    An answer is a callable given the connection and the server; :meth:`json`, :meth:`stall`
    and :meth:`dribble` make the usual ones. ``hits`` counts requests by path, and
    ``disconnects`` by path the answers that failed because the client went away (it shut
    the connection before the answer was complete); ``received`` holds every request's bytes.
    """

    def __init__(self, routes: dict[str, Answer] | None = None) -> None:
        self.routes: dict[str, Answer] = routes or {}
        self.hits: Counter[str] = Counter()
        self.disconnects: Counter[str] = Counter()
        self.received: list[bytes] = []
        self.stopping = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._threads: list[threading.Thread] = []
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()

    def __enter__(self) -> Self:
        accepting = threading.Thread(target=self._accept, daemon=True)
        accepting.start()
        self._threads.append(accepting)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stopping.set()
        with contextlib.suppress(OSError):  # wakes the blocked accept(), which close() does not
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=MISBEHAVE_SECONDS + 1)

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._connections.append(connection)
            thread = threading.Thread(target=self._serve, args=(connection,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            request = _read_request(connection)
            if request is None:
                return
            path, raw = request
            with self._lock:
                self.hits[path] += 1
                self.received.append(raw)
            answer = self.routes.get(path, HostileServer.json({"error": "not found"}, 404))
            try:
                answer(connection, self)
            except OSError:
                with self._lock:
                    self.disconnects[path] += 1

    def wait_for_disconnect(self, path: str, within: float) -> bool:
        """Whether the client dropped an answer to ``path`` within ``within`` seconds."""

        def dropped() -> bool:
            with self._lock:
                return bool(self.disconnects[path])

        return bool(poll(dropped, within, interval=0.01))

    # -- answers -------------------------------------------------------------------------

    @staticmethod
    def json(document: Any, status: int = 200, headers: dict[str, str] | None = None) -> Answer:
        """A complete JSON answer."""
        return HostileServer.raw(json.dumps(document).encode(), status, headers)

    @staticmethod
    def raw(
        body: bytes | Callable[[], Iterable[bytes]],
        status: int = 200,
        headers: dict[str, str] | None = None,
        *,
        length: bool = True,
    ) -> Answer:
        """``body`` (bytes, or a function giving chunks) with ``Content-Length`` when
        ``length`` and the body is bytes, otherwise delimited by closing the connection."""

        def answer(connection: socket.socket, server: HostileServer) -> None:
            head = {"Content-Type": "application/json", "Connection": "close", **(headers or {})}
            if length and isinstance(body, bytes):
                head["Content-Length"] = str(len(body))
            lines = [f"HTTP/1.1 {status} X"] + [f"{name}: {value}" for name, value in head.items()]
            connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            for chunk in [body] if isinstance(body, bytes) else body():
                connection.sendall(chunk)

        return answer

    @staticmethod
    def stall() -> Answer:
        """Read the request and never answer."""

        def answer(connection: socket.socket, server: HostileServer) -> None:
            server.stopping.wait(MISBEHAVE_SECONDS)

        return answer

    @staticmethod
    def dribble(head: bytes, filler: bytes = b" ", interval: float = 0.05) -> Answer:
        """Send ``head``, then one ``filler`` byte per ``interval``: every read gets data
        quickly, so only a total deadline ends the response."""

        def answer(connection: socket.socket, server: HostileServer) -> None:
            connection.sendall(head)
            deadline = time.monotonic() + MISBEHAVE_SECONDS
            while time.monotonic() < deadline and not server.stopping.wait(interval):
                connection.sendall(filler)

        return answer


Answer = Callable[[socket.socket, HostileServer], None]


def _read_request(connection: socket.socket) -> tuple[str, bytes] | None:
    """The path and the whole of the request on ``connection`` (a body by its
    ``Content-Length`` read too: closing with unread data would reset the connection)."""
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            chunk = connection.recv(65536)
        except OSError:
            return None
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = connection.recv(65536)
        if not chunk:
            break
        body += chunk
    parts = head.split(b"\r\n", 1)[0].split()
    if len(parts) < 2:
        return None
    return parts[1].decode().split("?", 1)[0], data
