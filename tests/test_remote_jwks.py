"""The jwks_uri fetcher (``authserver.security.remote_jwks``) against real HTTP servers on
loopback: each test serves what it needs (a key set with a Cache-Control, a stalling or
dribbling host, an oversized body, a redirect, errors) and counts the requests the host got.

Time passing is a :class:`ManualClock` moved by hand; only the fetch deadline is real time,
kept under a second so the suite stays fast.
"""

from __future__ import annotations

import json
import logging
import select
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from joserfc.jwk import ECKey, KeySet

from authserver.security.client_keys import has_kid
from authserver.security.pending import ResultPending
from authserver.security.remote_jwks import (
    ACCEPT,
    KeySetUnavailable,
    RemoteKeySets,
    uri_problem,
)
from authserver.security.secrets import SLOW_CHECKS_ALLOWED
from tests.support.clock import ManualClock
from tests.support.postgres import free_port
from tests.support.waiting import holds_throughout, wait_until

#: The longest any host here holds a request unless the test releases it first.
HOLD_SECONDS = 10
#: What a fetch that must end at once (no deadline involved) may take on a busy machine.
PROMPT_SECONDS = 2.0
KEYS = {kid: ECKey.generate_key("P-256", {"kid": kid}, private=True) for kid in "abc"}


def document(*kids: str) -> dict[str, Any]:
    return {"keys": [KEYS[kid].as_dict(private=False) for kid in kids]}


def kids_of(key_set: KeySet) -> list[str | None]:
    return [key.kid for key in key_set.keys]


Route = Callable[["_Handler"], None]


class KeyHost:
    """A threaded HTTP server on 127.0.0.1 that answers each path with the route a test set,
    and remembers what it was asked."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.active = 0
        self.most_active = 0
        #: Opened by the test to let held requests go; opened at teardown in any case.
        self.gate = threading.Event()
        #: Seconds from a request's arrival to its client's disconnecting, per dribbled request.
        self.disconnected_after: list[float] = []
        self._lock = threading.Lock()
        self._server = _Server(self)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,))

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_port}{path}"

    def count(self, path: str) -> int:
        """Requests for ``path`` (with its query, if it has one) so far."""
        with self._lock:
            return sum(1 for asked, _ in self.requests if asked == path)

    def arrived(self, handler: _Handler) -> None:
        with self._lock:
            self.requests.append((handler.path, dict(handler.headers.items())))
            self.active += 1
            self.most_active = max(self.most_active, self.active)

    def left(self) -> None:
        with self._lock:
            self.active -= 1

    def disconnected(self, seconds: float) -> None:
        with self._lock:
            self.disconnected_after.append(seconds)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.gate.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, host: KeyHost) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.host = host


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        host = self.server.host
        host.arrived(self)
        try:
            route = host.routes.get(urlsplit(self.path).path)
            if route is None:
                self.send_error(404)
            else:
                route(self)
        except OSError:  # the client hung up (a cut at the deadline, a refused body)
            pass
        finally:
            host.left()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's name)
        pass


def respond(
    handler: _Handler, status: int, body: bytes, headers: tuple[tuple[str, str], ...] = ()
) -> None:
    handler.send_response(status)
    for name, value in headers:
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def key_set_route(cache_control: str | None = "max-age=300", *kids: str) -> Route:
    body = json.dumps(document(*(kids or ("a",)))).encode()
    headers = (("Content-Type", "application/jwk-set+json"),)
    if cache_control is not None:
        headers += (("Cache-Control", cache_control),)
    return lambda handler: respond(handler, 200, body, headers)


def held(route: Route) -> Route:
    """``route``, once the test opens the host's gate."""

    def answer(handler: _Handler) -> None:
        handler.server.host.gate.wait(HOLD_SECONDS)
        route(handler)

    return answer


def status_route(status: int, body: bytes = b"", *headers: tuple[str, str]) -> Route:
    return lambda handler: respond(handler, status, body, headers)


def stall_before_headers(handler: _Handler) -> None:
    handler.server.host.gate.wait(HOLD_SECONDS)


def dribble(interval: float) -> Route:
    """Headers at once, then a byte every ``interval`` seconds (each read is quick: only a
    deadline on the whole body ends it), until the client goes away."""

    def answer(handler: _Handler) -> None:
        started = time.monotonic()
        handler.send_response(200)
        handler.end_headers()  # no Content-Length: the body ends when the connection does
        handler.wfile.write(b'{"keys": [')
        handler.wfile.flush()
        sock = handler.connection
        while time.monotonic() - started < HOLD_SECONDS:
            readable, _, _ = select.select([sock], [], [], interval)
            if readable and not sock.recv(1):
                handler.server.host.disconnected(time.monotonic() - started)
                return
            sock.sendall(b" ")

    return answer


def announce_then_stall(length: int) -> Route:
    def answer(handler: _Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(length))
        handler.end_headers()
        handler.wfile.flush()
        handler.server.host.gate.wait(HOLD_SECONDS)

    return answer


def stream_then_stall(size: int) -> Route:
    """``size`` bytes with no Content-Length, then nothing: only a reader that counts while
    streaming sees it is too much before the deadline."""

    def answer(handler: _Handler) -> None:
        handler.send_response(200)
        handler.end_headers()
        handler.wfile.write(b"[" + b"0," * (size // 2))
        handler.wfile.flush()
        handler.server.host.gate.wait(HOLD_SECONDS)

    return answer


@pytest.fixture
def host() -> Iterator[KeyHost]:
    server = KeyHost()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def make_fetcher() -> Iterator[Callable[..., RemoteKeySets]]:
    """``RemoteKeySets(**options)``, each closed (its threads stopped) when the test ends."""
    made: list[RemoteKeySets] = []

    def make(**options: Any) -> RemoteKeySets:
        made.append(RemoteKeySets(**options))
        return made[-1]

    yield make
    for fetcher in made:
        fetcher.close()


@pytest.fixture
def key_sets(clock: ManualClock, make_fetcher: Callable[..., RemoteKeySets]) -> RemoteKeySets:
    return make_fetcher(timeout=1.0, clock=clock)


@contextmanager
def on_the_event_loop() -> Iterator[None]:
    """As the gateway runs a request: blocking is not allowed."""
    token = SLOW_CHECKS_ALLOWED.set(False)
    try:
        yield
    finally:
        SLOW_CHECKS_ALLOWED.reset(token)


def pending_future(key_sets: RemoteKeySets, uri: str, kid: str | None = None) -> Any:
    with on_the_event_loop(), pytest.raises(ResultPending) as pending:
        key_sets.key_set(uri, kid)
    return pending.value.future


def fetch_threads(fetcher: RemoteKeySets) -> list[threading.Thread]:
    """The fetcher's own threads (other tests' apps may have fetchers of their own)."""
    return [t for t in threading.enumerate() if t.name.startswith(f"{fetcher.thread_name}-")]


# -- which uris may be a jwks_uri ---------------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    [
        "https://keys.example.com/jwks.json",
        "https://keys.example.com:8443/.well-known/jwks.json?tenant=7",
        "HTTPS://Keys.Example.com/jwks",
        "http://localhost/jwks",
        "http://localhost:8080/jwks",
        "http://127.0.0.1:9000/jwks",
        "http://127.0.0.5/jwks",
        "http://[::1]:8080/jwks",
        "https://keys.example.com/" + "a" * (2000 - len("https://keys.example.com/")),
    ],
)
def test_uri_problem_accepts_https_and_loopback_http(uri: str) -> None:
    assert uri_problem(uri) is None


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("http://keys.example.com/jwks", "not loopback"),
        ("http://localhost.example.com/jwks", "not loopback"),
        ("http://127.0.0.1.nip.io/jwks", "not loopback"),
        ("http://10.0.0.1/jwks", "not loopback"),
        ("ftp://keys.example.com/jwks", "not an absolute https URL"),
        ("//keys.example.com/jwks", "not an absolute https URL"),
        ("/jwks", "not an absolute https URL"),
        ("https:///jwks", "no host"),
        ("https://user:password@keys.example.com/jwks", "user information"),
        ("https://user@keys.example.com/jwks", "user information"),
        ("http://localhost@keys.example.com/jwks", "user information"),
        ("https://keys.example.com/jwks#main", "fragment"),
        ("https://keys.example.com/jwks#", "fragment"),
        ("https://keys.example.com/my jwks", "characters"),
        ("https://keys.example.com/jwks\n", "characters"),
        ("https://keys.example.com/jwks\r\nX-Injected: 1", "characters"),
        ("https://keys.example.com\\@evil.example/jwks", "characters"),
        ("https://kéys.example.com/jwks", "characters"),
        ("", "empty"),
        ("https://keys.example.com:99999/jwks", "not a valid URL"),
        ("https://[::1/jwks", "not a valid URL"),
        ("https://keys.example.com/" + "a" * 2000, "longer than 2000"),
    ],
)
def test_uri_problem_refuses(uri: str, problem: str) -> None:
    said = uri_problem(uri)
    assert said is not None
    assert problem in said
    assert "\n" not in said


def test_the_uri_is_checked_again_before_any_fetch(key_sets: RemoteKeySets) -> None:
    """Whatever registration let through, the fetcher connects to no uri the rules refuse."""
    for uri in ("http://keys.example.com/jwks", "https://keys.example.com/jwks\nx"):
        with pytest.raises(KeySetUnavailable, match="refused to fetch"):
            key_sets.key_set(uri, None)


# -- fetching and caching -----------------------------------------------------------------------


def test_fetches_with_the_jwk_set_accept_header_and_no_io_while_fresh(
    host: KeyHost, key_sets: RemoteKeySets, clock: ManualClock
) -> None:
    host.routes["/jwks"] = key_set_route("max-age=300", "a", "b")
    uri = host.url("/jwks")
    first = key_sets.key_set(uri, "a")
    assert kids_of(first) == ["a", "b"]
    ((path, headers),) = host.requests
    assert headers["Accept"] == ACCEPT
    for _ in range(50):
        clock.now += 4.7  # up to 235 s of the 300, below the 80 % renewal point
        assert key_sets.key_set(uri, "b") is first
        assert key_sets.key_set(uri, None) is first
    assert host.count("/jwks") == 1


@pytest.mark.parametrize(
    ("cache_control", "lifetime"),
    [
        ("max-age=300", 300),
        ("public, Max-Age=300", 300),
        ("max-age=5", 60),  # at least min_max_age
        ("max-age=-5", 60),
        ("max-age=999999999", 86_400),  # at most max_max_age
        ("max-age=" + "9" * 400, 86_400),
        ("no-store", 60),
        ("no-cache", 60),
        ("no-store, max-age=300", 60),
        ("max-age=soon", 60),
        (None, 60),
    ],
)
def test_a_set_is_kept_as_its_cache_control_says_within_the_bounds(
    host: KeyHost,
    key_sets: RemoteKeySets,
    clock: ManualClock,
    cache_control: str | None,
    lifetime: float,
) -> None:
    host.routes["/jwks"] = key_set_route(cache_control)
    uri = host.url("/jwks")
    started = clock.now
    key_sets.key_set(uri, None)
    clock.now = started + 0.79 * lifetime
    key_sets.key_set(uri, None)
    assert host.count("/jwks") == 1, "still fresh: no request"
    clock.now = started + lifetime
    key_sets.key_set(uri, None)
    assert host.count("/jwks") == 2, "expired: fetched again"


def test_an_expired_set_is_fetched_at_once_whatever_the_refetch_interval(
    host: KeyHost,
    clock: ManualClock,
    make_fetcher: Callable[..., RemoteKeySets],
) -> None:
    fetcher = make_fetcher(timeout=1.0, clock=clock, min_max_age=1, refetch_interval=30)
    host.routes["/jwks"] = key_set_route("max-age=10")
    uri = host.url("/jwks")
    fetcher.key_set(uri, None)
    clock.now += 10
    fetcher.key_set(uri, None)
    assert host.count("/jwks") == 2


def test_a_set_is_renewed_in_the_background_at_80_percent_of_its_lifetime(
    host: KeyHost, key_sets: RemoteKeySets, clock: ManualClock
) -> None:
    host.routes["/jwks"] = key_set_route("max-age=100", "a")
    uri = host.url("/jwks")
    old = key_sets.key_set(uri, None)
    clock.now += 79
    assert key_sets.key_set(uri, None) is old
    assert host.count("/jwks") == 1
    host.routes["/jwks"] = held(key_set_route("max-age=100", "a", "b"))
    clock.now += 1
    with on_the_event_loop():  # the renewal makes nobody wait, not even on the event loop
        assert key_sets.key_set(uri, "a") is old
        wait_until(lambda: host.count("/jwks") == 2, PROMPT_SECONDS, "the renewal is asked for")
        assert key_sets.key_set(uri, "a") is old
    host.gate.set()
    renewed = wait_until(
        lambda: (found := key_sets.key_set(uri, None)) is not old and found,
        PROMPT_SECONDS,
        "the renewed set is swapped in",
    )
    assert kids_of(renewed) == ["a", "b"]
    clock.now += 99  # the renewed set counts from its own fetch: fresh until 180
    assert key_sets.key_set(uri, None) is renewed
    assert host.count("/jwks") == 2


def test_an_unknown_kid_fetches_again_at_most_once_per_interval(
    host: KeyHost, key_sets: RemoteKeySets, clock: ManualClock
) -> None:
    host.routes["/jwks"] = key_set_route("max-age=3600", "a")
    uri = host.url("/jwks")
    key_sets.key_set(uri, "a")
    host.routes["/jwks"] = key_set_route("max-age=3600", "a", "b")
    clock.now += 10
    assert kids_of(key_sets.key_set(uri, "b")) == ["a"], "asked 10 s ago: the cached set"
    clock.now += 19.9
    assert kids_of(key_sets.key_set(uri, "b")) == ["a"]
    assert host.count("/jwks") == 1
    clock.now += 0.1  # 30 s after the last fetch
    assert kids_of(key_sets.key_set(uri, "b")) == ["a", "b"]
    assert host.count("/jwks") == 2
    for _ in range(20):  # made-up kids: one fetch per interval at most
        clock.now += 1
        assert kids_of(key_sets.key_set(uri, "c")) == ["a", "b"]
    assert host.count("/jwks") == 2
    clock.now += 10  # 30 s after the second fetch
    key_sets.key_set(uri, "c")
    assert host.count("/jwks") == 3


def test_a_failed_fetch_is_remembered_for_the_interval(
    host: KeyHost, key_sets: RemoteKeySets, clock: ManualClock
) -> None:
    host.routes["/jwks"] = status_route(500)
    uri = host.url("/jwks")
    with pytest.raises(KeySetUnavailable, match="answered 500") as first:
        key_sets.key_set(uri, None)
    clock.now += 29.9
    started = time.monotonic()
    for _ in range(20):
        with pytest.raises(KeySetUnavailable) as again:
            key_sets.key_set(uri, None)
        assert str(again.value) == str(first.value)
    assert time.monotonic() - started < PROMPT_SECONDS
    assert host.count("/jwks") == 1, "a dead host is not asked again within the interval"
    host.routes["/jwks"] = key_set_route()
    clock.now += 0.1
    assert kids_of(key_sets.key_set(uri, None)) == ["a"]
    assert host.count("/jwks") == 2


def test_an_expired_set_is_not_used_when_its_renewal_fails(
    host: KeyHost, key_sets: RemoteKeySets, clock: ManualClock
) -> None:
    host.routes["/jwks"] = key_set_route("max-age=60", "a")
    uri = host.url("/jwks")
    key_sets.key_set(uri, "a")
    host.routes["/jwks"] = status_route(503)
    clock.now += 60
    with pytest.raises(KeySetUnavailable, match="answered 503"):
        key_sets.key_set(uri, "a")
    clock.now += 1
    with pytest.raises(KeySetUnavailable, match="answered 503"):
        key_sets.key_set(uri, "a")
    assert host.count("/jwks") == 2


def test_a_fresh_set_survives_a_failed_renewal_until_it_expires(
    host: KeyHost, key_sets: RemoteKeySets, clock: ManualClock
) -> None:
    host.routes["/jwks"] = key_set_route("max-age=100", "a")
    uri = host.url("/jwks")
    fresh = key_sets.key_set(uri, "a")
    host.routes["/jwks"] = status_route(500)
    clock.now += 80
    assert key_sets.key_set(uri, "a") is fresh
    wait_until(lambda: host.count("/jwks") == 2, PROMPT_SECONDS, "the renewal is asked for")
    clock.now += 19.9
    assert key_sets.key_set(uri, "a") is fresh, "no renewal again within the interval"
    assert host.count("/jwks") == 2
    clock.now += 0.1
    with pytest.raises(KeySetUnavailable):
        key_sets.key_set(uri, "a")


# -- who waits, and for what --------------------------------------------------------------------


def test_twenty_threads_share_one_fetch(host: KeyHost, key_sets: RemoteKeySets) -> None:
    host.routes["/jwks"] = held(key_set_route())
    uri = host.url("/jwks")
    start = threading.Barrier(20)
    results: list[KeySet] = []

    def ask() -> None:
        start.wait()
        results.append(key_sets.key_set(uri, "a"))

    threads = [threading.Thread(target=ask) for _ in range(20)]
    for thread in threads:
        thread.start()
    wait_until(lambda: host.count("/jwks") == 1, PROMPT_SECONDS, "the fetch is asked for")
    holds_throughout(lambda: host.count("/jwks") == 1, 0.3, "one request while all 20 wait")
    host.gate.set()
    for thread in threads:
        thread.join(PROMPT_SECONDS)
    assert len(results) == 20
    assert all(result is results[0] for result in results)
    assert host.count("/jwks") == 1


def test_on_the_event_loop_the_fetch_runs_elsewhere_and_the_caller_gets_its_future(
    host: KeyHost, key_sets: RemoteKeySets
) -> None:
    host.routes["/jwks"] = held(key_set_route())
    uri = host.url("/jwks")
    started = time.monotonic()
    future = pending_future(key_sets, uri)
    assert time.monotonic() - started < 0.5, "the caller did not wait for the host"
    assert pending_future(key_sets, uri) is future, "one fetch for everyone"
    assert not future.done()
    # asyncio.wrap_future cancels what it wraps when its waiter gives up: a fetch shared by
    # many requests must not end for all of them when one stops waiting.
    assert not future.cancel()
    wait_until(lambda: host.count("/jwks") == 1, PROMPT_SECONDS, "the fetch is asked for")
    host.gate.set()
    assert kids_of(future.result(timeout=PROMPT_SECONDS)) == ["a"]
    with on_the_event_loop():  # what the gateway's second run finds: the set, with no I/O
        assert kids_of(key_sets.key_set(uri, "a")) == ["a"]
    assert host.count("/jwks") == 1


def test_on_the_event_loop_a_failed_fetch_is_found_remembered_by_the_second_run(
    host: KeyHost, key_sets: RemoteKeySets
) -> None:
    host.routes["/jwks"] = status_route(500)
    uri = host.url("/jwks")
    future = pending_future(key_sets, uri)
    assert isinstance(future.exception(timeout=PROMPT_SECONDS), KeySetUnavailable)
    with on_the_event_loop(), pytest.raises(KeySetUnavailable, match="answered 500"):
        key_sets.key_set(uri, None)
    assert host.count("/jwks") == 1


def test_an_unknown_kid_on_the_event_loop_waits_for_the_refetch_not_on_the_loop(
    host: KeyHost, key_sets: RemoteKeySets, clock: ManualClock
) -> None:
    host.routes["/jwks"] = key_set_route("max-age=3600", "a")
    uri = host.url("/jwks")
    key_sets.key_set(uri, "a")
    host.routes["/jwks"] = key_set_route("max-age=3600", "a", "b")
    clock.now += 30
    future = pending_future(key_sets, uri, "b")
    future.result(timeout=PROMPT_SECONDS)
    with on_the_event_loop():
        assert has_kid(key_sets.key_set(uri, "b"), "b")
    assert host.count("/jwks") == 2


def test_fetches_run_on_at_most_max_concurrent_fetches_daemon_threads(
    host: KeyHost,
    clock: ManualClock,
    make_fetcher: Callable[..., RemoteKeySets],
) -> None:
    fetcher = make_fetcher(timeout=HOLD_SECONDS, clock=clock, max_concurrent_fetches=2)
    host.routes["/jwks"] = held(key_set_route())
    futures = [pending_future(fetcher, host.url(f"/jwks?n={n}")) for n in range(5)]
    wait_until(lambda: host.active == 2, PROMPT_SECONDS, "two fetches reach the host")
    holds_throughout(lambda: len(host.requests) == 2, 0.3, "the others wait their turn")
    threads = fetch_threads(fetcher)
    assert len(threads) == 2
    assert all(thread.daemon for thread in threads)
    host.gate.set()
    for future in futures:
        assert kids_of(future.result(timeout=PROMPT_SECONDS)) == ["a"]
    assert host.most_active == 2
    assert len(host.requests) == 5


def test_close_fails_the_fetches_in_flight_and_stops_the_threads(
    host: KeyHost, clock: ManualClock
) -> None:
    fetcher = RemoteKeySets(timeout=HOLD_SECONDS, clock=clock)
    host.routes["/jwks"] = stall_before_headers
    future = pending_future(fetcher, host.url("/jwks"))
    wait_until(lambda: host.active == 1, PROMPT_SECONDS, "the fetch reaches the host")
    started = time.monotonic()
    fetcher.close()
    assert time.monotonic() - started < PROMPT_SECONDS
    assert isinstance(future.exception(timeout=0), KeySetUnavailable)
    wait_until(lambda: not fetch_threads(fetcher), PROMPT_SECONDS, "the fetch threads end")
    with pytest.raises(KeySetUnavailable, match="closed"):
        fetcher.key_set(host.url("/jwks"), None)


# -- what a host may not do ---------------------------------------------------------------------


def test_a_host_that_never_answers_fails_at_the_deadline(
    host: KeyHost, key_sets: RemoteKeySets
) -> None:
    host.routes["/jwks"] = stall_before_headers
    started = time.monotonic()
    with pytest.raises(KeySetUnavailable, match="within 1 s"):
        key_sets.key_set(host.url("/jwks"), None)
    assert 0.9 < time.monotonic() - started < 1.5


def test_a_dribbling_host_is_cut_off_at_the_total_deadline(
    host: KeyHost,
    clock: ManualClock,
    make_fetcher: Callable[..., RemoteKeySets],
) -> None:
    """Each byte comes within the per-read timeout, so only a deadline on the whole answer
    ends it; and the connection is shut then, not at the next byte (1.1 s), freeing the
    thread for the next fetch."""
    fetcher = make_fetcher(timeout=0.6, clock=clock, max_concurrent_fetches=1)
    host.routes["/jwks"] = dribble(0.55)
    started = time.monotonic()
    with pytest.raises(KeySetUnavailable, match="within 0.6 s"):
        fetcher.key_set(host.url("/jwks"), None)
    assert time.monotonic() - started < 0.9
    wait_until(lambda: host.disconnected_after, PROMPT_SECONDS, "the host sees the cut")
    assert host.disconnected_after[0] < 0.9
    host.routes["/good"] = key_set_route()
    assert kids_of(fetcher.key_set(host.url("/good"), None)) == ["a"]


class WithoutTrace(httpx.BaseTransport):
    """httpx's own transport, minus the trace hook that reports sockets (as a transport of
    another kind might be): the deadline must still hold while streaming."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.extensions.pop("trace", None)
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


def test_the_total_deadline_holds_while_streaming_without_a_socket_to_cut(
    host: KeyHost,
    clock: ManualClock,
    make_fetcher: Callable[..., RemoteKeySets],
) -> None:
    fetcher = make_fetcher(timeout=0.6, clock=clock, transport=WithoutTrace())
    host.routes["/jwks"] = dribble(0.25)
    started = time.monotonic()
    with pytest.raises(KeySetUnavailable, match="within 0.6 s"):
        fetcher.key_set(host.url("/jwks"), None)
    assert time.monotonic() - started < 0.9
    wait_until(lambda: host.disconnected_after, 2 * PROMPT_SECONDS, "the fetch hangs up")
    assert host.disconnected_after[0] < 1.2, "at the first byte past the deadline"


def test_a_content_length_over_the_limit_is_refused_before_reading(
    host: KeyHost,
    clock: ManualClock,
    make_fetcher: Callable[..., RemoteKeySets],
) -> None:
    fetcher = make_fetcher(timeout=HOLD_SECONDS, clock=clock, max_bytes=1000)
    host.routes["/jwks"] = announce_then_stall(1001)
    started = time.monotonic()
    with pytest.raises(KeySetUnavailable, match="over 1000 bytes"):
        fetcher.key_set(host.url("/jwks"), None)
    assert time.monotonic() - started < PROMPT_SECONDS, "refused on the header alone"


def test_a_body_without_content_length_is_refused_as_soon_as_it_passes_the_limit(
    host: KeyHost,
    clock: ManualClock,
    make_fetcher: Callable[..., RemoteKeySets],
) -> None:
    fetcher = make_fetcher(timeout=HOLD_SECONDS, clock=clock, max_bytes=1000)
    host.routes["/jwks"] = stream_then_stall(1200)
    started = time.monotonic()
    with pytest.raises(KeySetUnavailable, match="over 1000 bytes"):
        fetcher.key_set(host.url("/jwks"), None)
    assert time.monotonic() - started < PROMPT_SECONDS, "refused while streaming"


def test_a_set_just_under_the_limit_is_read(
    host: KeyHost, clock: ManualClock, make_fetcher: Callable[..., RemoteKeySets]
) -> None:
    body = json.dumps(document("a", "b")).encode()
    fetcher = make_fetcher(timeout=1.0, clock=clock, max_bytes=len(body))
    host.routes["/jwks"] = lambda handler: respond(handler, 200, body)
    assert kids_of(fetcher.key_set(host.url("/jwks"), None)) == ["a", "b"]


def test_a_redirect_is_not_followed(host: KeyHost, key_sets: RemoteKeySets) -> None:
    host.routes["/jwks"] = key_set_route()
    host.routes["/moved"] = status_route(302, b"", ("Location", host.url("/jwks")))
    with pytest.raises(KeySetUnavailable, match="answered 302 .a redirect: not followed"):
        key_sets.key_set(host.url("/moved"), None)
    assert host.count("/jwks") == 0


PRIVATE_DOCUMENT = {"keys": [KEYS["a"].as_dict(private=True)]}


@pytest.mark.parametrize(
    ("route", "reason"),
    [
        (status_route(500, b'{"keys": []}'), "answered 500, not 200"),
        (status_route(404), "answered 404"),
        (status_route(200, b"<html>keys</html>"), "not JSON"),
        (status_route(200, b"[" * 100_000), "not JSON"),
        (status_route(200, b'{"keys": "a"}'), 'a JSON object with a "keys" list'),
        (status_route(200, b'{"keys": []}'), "1 to 16 keys"),
        (status_route(200, json.dumps(PRIVATE_DOCUMENT).encode()), "private member"),
        (
            status_route(200, json.dumps(document("a")).encode(), ("Content-Encoding", "gzip")),
            "compressed",
        ),
    ],
)
def test_a_bad_answer_is_a_failure_that_says_why(
    host: KeyHost, key_sets: RemoteKeySets, route: Route, reason: str
) -> None:
    host.routes["/jwks"] = route
    with pytest.raises(KeySetUnavailable) as refused:
        key_sets.key_set(host.url("/jwks"), None)
    assert reason in str(refused.value)
    assert "\n" not in str(refused.value)


def test_failures_name_no_query_and_no_document(
    host: KeyHost, key_sets: RemoteKeySets, caplog: pytest.LogCaptureFixture
) -> None:
    """A query may carry a signature; a document is the host's to publish, not our log's."""
    host.routes["/jwks"] = status_route(200, json.dumps(PRIVATE_DOCUMENT).encode())
    private_d = PRIVATE_DOCUMENT["keys"][0]["d"]
    with caplog.at_level(logging.WARNING), pytest.raises(KeySetUnavailable) as refused:
        key_sets.key_set(host.url("/jwks?signature=s3cr3t"), None)
    logged = caplog.text
    for text in (str(refused.value), logged):
        assert "/jwks" in text
        assert "s3cr3t" not in text
        assert private_d not in text
        assert PRIVATE_DOCUMENT["keys"][0]["x"] not in text


def test_a_refused_connection_is_a_failure(key_sets: RemoteKeySets) -> None:
    with pytest.raises(KeySetUnavailable, match="ConnectError"):
        key_sets.key_set(f"http://127.0.0.1:{free_port()}/jwks", None)


def test_the_least_recently_used_uris_are_forgotten_past_the_bound(
    host: KeyHost, key_sets: RemoteKeySets
) -> None:
    key_sets.max_uris = 3
    host.routes["/jwks"] = key_set_route()
    uris = {n: host.url(f"/jwks?n={n}") for n in range(1, 5)}
    for n in (1, 2, 3, 1, 4):  # 1 is used again before 4 arrives: 2 is the oldest
        key_sets.key_set(uris[n], None)
    for n in (1, 3, 4):
        key_sets.key_set(uris[n], None)
        assert host.count(f"/jwks?n={n}") == 1, f"uri {n} is still cached"
    key_sets.key_set(uris[2], None)
    assert host.count("/jwks?n=2") == 2, "uri 2 was forgotten"


def test_a_uri_being_fetched_is_not_forgotten_for_a_new_one(
    host: KeyHost, key_sets: RemoteKeySets
) -> None:
    """The requests waiting for a fetch run again expecting to find its outcome cached."""
    key_sets.max_uris = 1
    host.routes["/jwks"] = held(key_set_route())
    uris = [host.url(f"/jwks?n={n}") for n in (1, 2)]
    futures = [pending_future(key_sets, uri) for uri in uris]
    host.gate.set()
    for future in futures:
        future.result(timeout=PROMPT_SECONDS)
    with on_the_event_loop():
        for uri in uris:
            assert kids_of(key_sets.key_set(uri, None)) == ["a"]
    assert len(host.requests) == 2
