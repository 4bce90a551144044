"""The bridge between granian and our WSGI app: each request body is read whole, under a
deadline and a size limit, before the app sees the request.

granian's own WSGI interface hands the app a body stream that blocks the worker's thread until
the client sends the bytes it announced; a client that stalls half-way holds that thread (one
per worker) until the socket closes, so two such connections stopped a two-worker server.
Here the body is awaited on granian's event loop (RSGI, granian's native interface), where a
stalled client costs one pending coroutine, and only a complete request runs the app:

- the whole body must arrive within ``body_deadline`` seconds of the headers, else 408 and
  the connection is closed;
- a body over ``max_body_bytes``, however it is framed (``Content-Length`` or chunked), is
  refused with 413 as soon as that is known: never cut short and served.

The refusals are answered by the app itself (see :data:`REFUSED`), so they carry the same
request id, headers and access-log line as every other answer. The environ is PEP 3333's, with
the body also under ``authserver.body`` for the OAuth endpoints, which read it as it is. Each
answer may also close its connection when the worker is queued and another idles
(:mod:`authserver.http.worker_loads`).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote_to_bytes

from granian.rsgi import ProtocolClosed as RSGIProtocolClosed
from granian.rsgi import ProtocolError as RSGIProtocolError

from authserver.http.deadlines import BodyDeadlines
from authserver.http.forms import BODY
from authserver.http.worker_loads import WorkerLoads
from authserver.security.pending import ResultPending
from authserver.security.secrets import ARGON2_CONCURRENCY, SLOW_CHECKS_ALLOWED, SlowCheckNeeded

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

#: The environ key under which the gateway tells the app to refuse the request: 400 (the body
#: ended early), 408 (it did not arrive in time), 413 (it is over the limit) or 503 (the slow
#: lane is full).
REFUSED = "authserver.refused"
#: How many requests the slow lane holds per thread, running or queued.
SLOW_LANE_QUEUE_FACTOR = 2
#: How long a request waits for a fetch it needs (a client's ``jwks_uri``, 5 s at most)
#: before it runs again anyway.
REMOTE_WAIT_SECONDS = 6.0
#: Fetches one request may wait for in turn: a trusted issuer's discovery document, then
#: the keys it names.
MAX_FETCHES_PER_REQUEST = 2

_Answer = tuple[int, list[tuple[str, str]], bytes]


class RSGIHeaders(Protocol):
    def items(self) -> list[tuple[str, str]]: ...


class RSGIScope(Protocol):
    """The parts of granian's RSGI scope that a WSGI environ needs."""

    proto: str
    http_version: str
    server: str
    client: str
    scheme: str
    method: str
    path: str
    query_string: str

    @property
    def headers(self) -> RSGIHeaders: ...


class RSGIProtocol(Protocol):
    async def __call__(self) -> bytes: ...

    def __aiter__(self) -> Any: ...

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None: ...


class _BodyTooLarge(Exception):
    """The request announced or sent more than the limit."""


class _BodyIncomplete(Exception):
    """The body ended before its ``Content-Length``, or its framing broke: the client is gone
    or broken, and a truncated form must never be served (it could drop ``scope``)."""


class BufferedGateway:
    """An RSGI application that runs a WSGI application on complete requests only.

    Requests run on the event loop, one after the other: the app is CPU-bound and quick, and
    a thread hop would cost a tenth of a token's CPU. The exception is a request whose client
    authentication needs an Argon2id check (an admin-chosen secret not yet remembered): the
    app raises :class:`~authserver.security.secrets.SlowCheckNeeded` before doing anything,
    and the request runs again on the slow lane, a pool of ``slow_lane_threads`` threads, so
    the check's quarter of a second holds up nobody else. When the slow lane already holds
    ``SLOW_LANE_QUEUE_FACTOR`` times its threads, the request gets 503 with ``Retry-After``.

    A request that needs something fetched from another host (a client's ``jwks_uri``) raises
    :class:`~authserver.security.pending.ResultPending` before doing anything; its coroutine
    awaits the fetch (up to ``remote_wait`` seconds) while the loop serves everyone else,
    then runs the request again on the loop, which finds the fetched result (or the fetch's
    remembered failure), or the next fetch it needs (at most ``MAX_FETCHES_PER_REQUEST`` in
    turn). Still pending after that: 503 with ``Retry-After``.
    """

    def __init__(
        self,
        app: WSGIApplication,
        *,
        max_body_bytes: int,
        body_deadline: float,
        slow_lane_threads: int = ARGON2_CONCURRENCY,
        remote_wait: float = REMOTE_WAIT_SECONDS,
        loads: WorkerLoads | None = None,
    ) -> None:
        self._app = app
        self._loads = loads or WorkerLoads(None)
        self._max_body_bytes = max_body_bytes
        self._deadlines = BodyDeadlines(body_deadline)
        self._remote_wait = remote_wait
        self._slow_lane = ThreadPoolExecutor(slow_lane_threads, "authserver-slow-lane")
        #: Requests in the slow lane, running or queued; beyond the capacity: 503 at once.
        self._slow_lane_capacity = slow_lane_threads * SLOW_LANE_QUEUE_FACTOR
        self._slow_lane_waiting = 0

    async def __call__(self, scope: RSGIScope, protocol: RSGIProtocol) -> None:
        self._loads.begin()
        try:
            (status, headers, content), close = await self._answer(scope, protocol)
        except BaseException:
            self._loads.end()
            raise
        # A queued worker asks its client to reconnect when another worker idles (worker_loads).
        if self._loads.end() or close:
            headers = [*headers, ("Connection", "close")]
        protocol.response_bytes(status, headers, content)

    async def _answer(self, scope: RSGIScope, protocol: RSGIProtocol) -> tuple[_Answer, bool]:
        """The answer, and whether the connection must close after it."""
        environ = _environ(scope)
        body = b""
        try:
            body = await self._read_body(environ, protocol)
        except _BodyTooLarge:
            environ[REFUSED] = 413
        except TimeoutError:
            environ[REFUSED] = 408
        except _BodyIncomplete:
            environ[REFUSED] = 400
        # A body not read to its end would be taken for the next request: close after answering.
        close = REFUSED in environ
        # The app gets the body as one buffer with its length, however it was framed.
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ[BODY] = body
        pristine = dict(environ)  # as it was before the app saw it, for a second run
        environ["wsgi.input"] = io.BytesIO(body)
        allowed = SLOW_CHECKS_ALLOWED.set(False)
        try:
            status, headers, content = self._call(environ)
        except SlowCheckNeeded:
            status, headers, content = await self._in_slow_lane(pristine, body)
        except ResultPending as pending:
            status, headers, content = await self._after_fetch(pending, pristine, body)
        finally:
            SLOW_CHECKS_ALLOWED.reset(allowed)
        return (status, headers, content), close

    async def _in_slow_lane(self, environ: dict[str, Any], body: bytes) -> _Answer:
        """Run the request again where slow checks may run, or refuse it if too many wait."""
        if self._slow_lane_waiting >= self._slow_lane_capacity:
            return self._busy(environ)
        environ["wsgi.input"] = io.BytesIO(body)
        self._slow_lane_waiting += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._slow_lane, self._call, dict(environ))
        except ResultPending:
            # Cannot happen today (a client has a secret or keys, not both, and the slow lane
            # may block anyway); were it to, the thread must not be held: retry later.
            return self._busy(environ)
        finally:
            self._slow_lane_waiting -= 1

    async def _after_fetch(
        self, pending: ResultPending, pristine: dict[str, Any], body: bytes
    ) -> _Answer:
        """Await the fetch the request needs, then run the request again on the loop.

        The wait's end, a timeout or the fetch's own failure alike, only means "try again":
        the second run finds the outcome where the fetcher left it. ``shield``: the future
        is shared with other requests, and our timeout must not cancel it for them.
        """
        for _ in range(MAX_FETCHES_PER_REQUEST):
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self._remote_wait):
                    await asyncio.shield(asyncio.wrap_future(pending.future))
            environ = dict(pristine)
            environ["wsgi.input"] = io.BytesIO(body)
            try:
                return self._call(environ)
            except ResultPending as next_pending:
                if next_pending.future is pending.future:
                    break  # the fetch outlasted the wait
                # The next fetch of a chain: a trusted issuer's discovery document, then the
                # keys it names.
                pending = next_pending
        return self._busy(dict(pristine))

    def _busy(self, environ: dict[str, Any]) -> _Answer:
        """503 with ``Retry-After``, answered by the app (see :data:`REFUSED`)."""
        environ[REFUSED] = 503
        environ["wsgi.input"] = io.BytesIO()
        return self._call(environ)

    async def _read_body(self, environ: dict[str, Any], protocol: RSGIProtocol) -> bytes:
        declared = environ.get("CONTENT_LENGTH", "")
        chunked = "HTTP_TRANSFER_ENCODING" in environ
        if not chunked:
            if not declared.isdigit() or declared == "0":
                return b""
            if int(declared) > self._max_body_bytes:
                raise _BodyTooLarge
        try:
            if chunked:
                return await self._deadlines.within(self._read_chunked(protocol))
            # hyper reads no further than Content-Length, which is within the limit.
            body = await self._deadlines.within(protocol())
        except (RSGIProtocolError, RSGIProtocolClosed):
            raise _BodyIncomplete from None
        if len(body) != int(declared):
            raise _BodyIncomplete
        return body

    async def _read_chunked(self, protocol: RSGIProtocol) -> bytes:
        """A chunked body, refused as soon as it passes the limit (nothing past it is kept)."""
        chunks: list[bytes] = []
        size = 0
        async for chunk in protocol:
            size += len(chunk)
            if size > self._max_body_bytes:
                raise _BodyTooLarge
            chunks.append(chunk)
        return b"".join(chunks)

    def _call(self, environ: dict[str, Any]) -> _Answer:
        """The WSGI app's whole answer: it is CPU-bound and quick, so it runs to completion."""
        response: list[Any] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            response[:] = [int(status.split(" ", 1)[0]), headers]
            return _no_write

        chunks = self._app(environ, start_response)
        try:
            content = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        status, headers = response
        return status, headers, content


def _no_write(data: bytes) -> None:
    raise NotImplementedError("the write() callable of PEP 3333 is not supported")


def _environ(scope: RSGIScope) -> dict[str, Any]:
    """PEP 3333's environ for a request whose head granian has parsed."""
    server_host, _, server_port = scope.server.rpartition(":")
    client_host, _, client_port = scope.client.rpartition(":")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote_to_bytes(scope.path).decode("latin-1"),
        "QUERY_STRING": scope.query_string,
        "SERVER_NAME": server_host.strip("[]"),
        "SERVER_PORT": server_port,
        "SERVER_PROTOCOL": f"HTTP/{scope.http_version}",
        "REMOTE_ADDR": client_host.strip("[]"),
        "REMOTE_PORT": client_port,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.scheme,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for name, value in scope.headers.items():
        if "_" in name:
            # "X-Forwarded-For" and "X_Forwarded_For" both map to HTTP_X_FORWARDED_FOR;
            # dropping the underscore spelling keeps a client from smuggling a header past a
            # proxy that sets the dashed one (gunicorn and nginx do the same).
            continue
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ
