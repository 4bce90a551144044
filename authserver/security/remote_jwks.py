"""Documents fetched from other hosts for client authentication: the JWK Sets that
``private_key_jwt`` clients publish at their ``jwks_uri`` (RFC 7523 §2.2, RFC 7591 §2), and
the keys and OpenID discovery documents of trusted workload issuers (see ``issuer_keys``):
fetched, checked and cached, once per worker process.

A ``jwks_uri`` makes each of the client's token requests depend on a host the client runs, and
the rules here keep that host from costing anyone but its own client:

- A fetch runs on one of a few daemon threads, never on the thread that asks when that
  thread must not block: the server runs requests on granian's event loop, where waiting
  seconds for a host would stall every other client of the worker. There the caller gets
  :class:`~authserver.security.pending.ResultPending` and the gateway runs the request again
  once the fetch has ended.
- One fetch of a uri at a time in the process (single flight); everyone who needs it shares it.
- A fetch has ``timeout`` seconds in all (connect, headers and the whole body), however
  slowly the bytes come, and reads at most ``max_bytes``; it follows no redirect, and the
  body must be a JWK Set of public signing keys (``client_keys.public_key_set``).
- A set is kept as its ``Cache-Control`` says, within ``min_max_age`` and ``max_max_age``
  (RFC 9111 §5.2.2), counted from when it was asked for (RFC 9111 §4.2.3). At 80 % of that
  time a background fetch renews it while the current set keeps serving, so a busy client
  never waits for its keys. An expired set is never used, even when its renewal fails:
  a key the client removed must stop counting when the cache time says so.
- An unknown ``kid`` (the client rotated its key) fetches again at most once per
  ``refetch_interval``, so assertions with made-up key ids cannot make us hammer the host. A
  failed fetch is remembered for ``refetch_interval`` too: a dead host costs its client a
  quick 401 instead of a wait per request.

The errors name the uri without its query string, and never hold the fetched document.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import logging
import math
import queue
import re
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

import httpx
from joserfc.jwk import KeySet

from authserver.security.client_keys import has_kid, public_key_set
from authserver.security.pending import ResultPending
from authserver.security.secrets import SLOW_CHECKS_ALLOWED
from authserver.wellknown import CappedBody, DocumentTooLarge, FetchConnections

log = logging.getLogger(__name__)

T = TypeVar("T")
_FETCHER_NUMBERS = itertools.count(1)

#: RFC 7517 §8.5.1's media type first; most hosts serve plain JSON.
ACCEPT = "application/jwk-set+json, application/json"
MAX_URI_LENGTH = 2000
#: URIs cached at once (least recently used go first): one per key client, so this bounds
#: memory even with many clients (a set holds at most 16 keys).
MAX_CACHED_URIS = 10_000
#: The share of a set's cache lifetime after which it is renewed in the background.
REFRESH_AT = 0.8
#: A blocking caller waits this much longer than a fetch may take, for the fetch's thread to
#: report its end.
WAIT_MARGIN_SECONDS = 1.0
#: RFC 3986's characters (unreserved, reserved and ``%``): no spaces, line breaks, quotes,
#: backslashes or non-ASCII, which URL parsers disagree about.
_URI_CHARACTERS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
#: Identity only: a compressed body would be inflated past the size limit before it is checked.
_HEADERS = {"Accept": ACCEPT, "Accept-Encoding": "identity", "Connection": "close"}


class KeySetUnavailable(Exception):  # noqa: N818 (the name says what the caller must handle)
    """The keys (or the document naming them) cannot be had now; ``str()`` is one line for
    the server log (never shown to the client), which says why."""


def uri_problem(uri: str) -> str | None:
    """Why ``uri`` may not be a jwks_uri (one line), or None: an absolute https URL with a
    host, or http only for a loopback host (localhost, 127.0.0.0/8, ::1); no userinfo, no
    fragment; at most 2000 characters.

    http to a loopback host serves development and a sidecar on the same machine; anywhere
    else the keys must come over TLS, or anyone on the path could substitute their own.
    """
    if len(uri) > MAX_URI_LENGTH:
        return f"longer than {MAX_URI_LENGTH} characters"
    if not _URI_CHARACTERS.fullmatch(uri):
        return "empty, or holds characters a URL may not (spaces, line breaks, non-ASCII...)"
    if "#" in uri:
        return "has a fragment (#...)"
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number in range)
    except ValueError:
        return "is not a valid URL"
    if "@" in parts.netloc:
        return "has user information (user@ or user:password@)"
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        return "is not an absolute https URL"
    if not parts.hostname:
        return "has no host"
    if scheme == "http" and not _is_loopback(parts.hostname):
        return "uses http for a host that is not loopback: use https"
    return None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _where(uri: str) -> str:
    """The uri for a log line: its query may carry a signature or a token."""
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


class RemoteDocuments(ABC, Generic[T]):
    """JSON documents fetched by the rules above and kept as what ``_read`` makes of them;
    thread-safe, one per kind per worker process.

    ``clock`` (seconds, monotonic) times the cache, the refetch interval and the memory of a
    failure; tests move it by hand. The fetch deadline is always real time: it bounds real
    waiting. ``transport`` replaces httpx's (an egress proxy, custom TLS).
    """

    #: What is fetched, for the log.
    what = "a document"

    #: Instances may lower it (tests do, to see the eviction without 10,000 fetches).
    max_uris = MAX_CACHED_URIS

    def __init__(
        self,
        *,
        timeout: float = 5.0,
        max_bytes: int = 256 * 1024,
        min_max_age: float = 60.0,
        max_max_age: float = 86_400.0,
        refetch_interval: float = 30.0,
        max_concurrent_fetches: int = 8,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not 0 < timeout < math.inf:
            raise ValueError("timeout must be a positive number of seconds")
        if not 0 <= min_max_age <= max_max_age:
            raise ValueError("min_max_age must be between 0 and max_max_age")
        if max_concurrent_fetches < 1:
            raise ValueError("max_concurrent_fetches must be at least 1")
        self._timeout = float(timeout)
        self._max_bytes = max_bytes
        self._min_max_age = min_max_age
        self._max_max_age = max_max_age
        self._refetch_interval = refetch_interval
        self._max_threads = max_concurrent_fetches
        self._clock = clock
        self._transport = transport
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _Entry[T]] = OrderedDict()
        self._jobs: queue.SimpleQueue[_Flight | None] = queue.SimpleQueue()
        #: Started on demand, so that nothing runs before a worker process forks.
        self._threads: list[threading.Thread] = []
        self._idle_threads = 0
        self._closed = False
        #: Its fetch threads' names start with this (one fetcher per kind per worker; a thread
        #: dump tells them apart).
        self.thread_name = f"fetch-{type(self).__name__}-{next(_FETCHER_NUMBERS)}"

    @abstractmethod
    def _read(self, document: Any, key: str) -> T:
        """What the fetched JSON ``document`` for ``key`` holds for us; raises
        :class:`ValueError` with one line saying why it is not acceptable."""

    def _location(self, key: str) -> str:
        """Where the document for ``key`` is fetched from (the key itself by default)."""
        return key

    def _holds(self, value: T, kid: str) -> bool:
        """Whether ``value`` has what a caller asking for ``kid`` needs; if not, the document
        is fetched again (at most once per ``refetch_interval``)."""
        return True

    def _get(self, uri: str, kid: str | None) -> T:
        """The document for ``uri``, fresh per its Cache-Control; fetched again when it does
        not hold ``kid`` (at most once per ``refetch_interval`` per uri). Raises
        :class:`KeySetUnavailable`, or :class:`~authserver.security.pending.ResultPending`
        when a fetch is in flight and this thread must not block (``SLOW_CHECKS_ALLOWED``
        is False); otherwise waits for the fetch.

        An unknown ``kid`` within the interval gets the cached document back: the caller
        then fails on the kid. Call it before recording anything for the request (a failed
        authentication, a used ``jti``): after ``ResultPending`` the request runs again.
        """
        with self._lock:
            found = self._cached_or_fetched(uri, kid)
        if not isinstance(found, _Flight):
            return found
        if not SLOW_CHECKS_ALLOWED.get():
            raise ResultPending(found.future)
        try:
            result: T = found.future.result(timeout=self._timeout + WAIT_MARGIN_SECONDS)
            return result
        except TimeoutError:
            # Queued behind other fetches: the fetch goes on, and its outcome is cached.
            raise KeySetUnavailable(
                f"{_where(self._location(uri))}: nothing within "
                f"{self._timeout + WAIT_MARGIN_SECONDS:g} s"
            ) from None
        except KeySetUnavailable as error:
            # A new exception per waiter: one shared object would collect every waiter's traceback.
            raise KeySetUnavailable(str(error)) from None

    def close(self) -> None:
        """Stop the fetch threads: fetches in flight fail, and later calls raise
        :class:`KeySetUnavailable`."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            threads = list(self._threads)
            flights = [entry.flight for entry in self._entries.values() if entry.flight]
        for flight in flights:
            self._settle(flight, KeySetUnavailable("the key set fetcher was closed"))
            flight.connections.cut()
        for _ in threads:
            self._jobs.put(None)
        for thread in threads:
            thread.join(self._timeout + WAIT_MARGIN_SECONDS)
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def _http(self) -> httpx.Client:
        """The HTTP client, made at the first fetch: making one loads the CA bundle (~35 ms),
        which a worker whose clients and trusts never name a key URL should not pay at start."""
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(
                    transport=self._transport, timeout=self._timeout, follow_redirects=False
                )
            return self._client

    # -- the cache (every method below that names the lock's state runs under it) -------------

    def _cached_or_fetched(self, uri: str, kid: str | None) -> T | _Flight:
        """Under the lock: the set to answer with, or the fetch to wait for."""
        if self._closed:
            raise KeySetUnavailable("the key set fetcher is closed")
        now = self._clock()
        entry = self._entries.get(uri)
        if entry is None:
            entry = self._entries[uri] = _Entry[T]()
            self._evict(uri)
        else:
            self._entries.move_to_end(uri)
        value = entry.value
        if value is not None and now < entry.expires_at:
            if kid is None or self._holds(value, kid):
                if entry.flight is None and now >= max(entry.refresh_at, entry.failed_until):
                    self._start(uri, entry, now)  # renewal in the background: nobody waits
                return value
            recently = max(entry.attempted_at + self._refetch_interval, entry.failed_until)
            if entry.flight is None and now < recently:
                return value  # an unknown kid, and the uri was asked a moment ago
        elif entry.flight is None and now < entry.failed_until:
            raise KeySetUnavailable(entry.failure)
        return entry.flight or self._start(uri, entry, now)

    def _evict(self, new: str) -> None:
        """Under the lock: forget the least recently used uris past ``max_uris``, but neither
        the ``new`` one nor one being fetched (its waiters expect to find the outcome)."""
        while len(self._entries) > self.max_uris:
            idle = (u for u, entry in self._entries.items() if entry.flight is None and u != new)
            oldest = next(idle, None)
            if oldest is None:
                return
            del self._entries[oldest]

    def _start(self, uri: str, entry: _Entry[T], now: float) -> _Flight:
        """Under the lock: queue a fetch of ``uri``, starting a thread if none is free."""
        flight = entry.flight = _Flight(uri, now)
        entry.attempted_at = now
        self._jobs.put(flight)
        if self._idle_threads:
            self._idle_threads -= 1  # that thread takes this fetch
        elif len(self._threads) < self._max_threads:
            thread = threading.Thread(
                target=self._work,
                name=f"{self.thread_name}-{len(self._threads) + 1}",
                daemon=True,
            )
            self._threads.append(thread)
            thread.start()
        return flight

    def _settle(self, flight: _Flight, outcome: _Fetched[T] | KeySetUnavailable) -> None:
        """Record a fetch's outcome, then complete its future: whoever the future wakes finds
        the cache already updated. Once per fetch: its end or its deadline, whichever is first."""
        with self._lock:
            if flight.settled:
                return
            flight.settled = True
            entry = self._entries.get(flight.uri)
            if entry is not None and entry.flight is flight:
                entry.flight = None
                now = self._clock()
                if isinstance(outcome, _Fetched):
                    entry.value = outcome.value
                    entry.expires_at = flight.asked_at + outcome.lifetime
                    entry.refresh_at = flight.asked_at + REFRESH_AT * outcome.lifetime
                    entry.failed_until = -math.inf
                    entry.failure = ""
                else:
                    entry.failure = str(outcome)
                    entry.failed_until = now + self._refetch_interval
                    if now >= entry.expires_at:
                        entry.value = None
        if isinstance(outcome, _Fetched):
            flight.future.set_result(outcome.value)
        else:
            log.warning("fetching %s failed: %s", self.what, outcome)
            flight.future.set_exception(outcome)

    # -- the fetch threads ---------------------------------------------------------------------

    def _work(self) -> None:
        while (flight := self._jobs.get()) is not None:
            self._run(flight)
            with self._lock:
                self._idle_threads += 1

    def _run(self, flight: _Flight) -> None:
        if flight.settled:  # failed by close() while queued
            return
        deadline = threading.Timer(self._timeout, self._overdue, (flight,))
        deadline.daemon = True
        deadline.start()
        outcome: _Fetched[T] | KeySetUnavailable
        try:
            outcome = self._fetch(flight)
        except KeySetUnavailable as error:
            outcome = error
        except Exception as error:  # noqa: BLE001 (a thread's exception would be lost)
            log.exception("fetching %s failed unexpectedly", self.what)
            where = _where(self._location(flight.uri))
            outcome = KeySetUnavailable(f"{where}: {type(error).__name__}")
        finally:
            deadline.cancel()
        self._settle(flight, outcome)

    def _overdue(self, flight: _Flight) -> None:
        """The fetch's time is up: its waiters get the failure now, and its connection is shut
        so that the thread is free for the next fetch."""
        late = KeySetUnavailable(
            f"{_where(self._location(flight.uri))}: no complete answer within {self._timeout:g} s"
        )
        self._settle(flight, late)
        flight.connections.cut()

    def _fetch(self, flight: _Flight) -> _Fetched[T]:
        """GET the document; changes nothing but the flight's connections."""
        location = self._location(flight.uri)
        where = _where(location)
        # Registration checks the uri too; checked again before every request, as the last
        # word on where this process connects.
        problem = uri_problem(location)
        if problem is not None:
            raise KeySetUnavailable(f"refused to fetch {location[:200]!r}: {problem}")
        deadline = time.monotonic() + self._timeout
        extensions = {"trace": flight.connections.trace}
        try:
            with self._http().stream(
                "GET", location, headers=_HEADERS, extensions=extensions
            ) as response:
                if response.status_code != 200:
                    redirect = " (a redirect: not followed)" if response.is_redirect else ""
                    raise KeySetUnavailable(
                        f"{where} answered {response.status_code}{redirect}, not 200"
                    )
                encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
                if encoding != "identity":
                    raise KeySetUnavailable(f"{where} sent a compressed body ({encoding[:20]})")
                body = CappedBody(response.headers.get("Content-Length"), self._max_bytes)
                for chunk in response.iter_raw():
                    body.add(chunk)
                    if time.monotonic() > deadline:
                        raise KeySetUnavailable(
                            f"{where}: no complete answer within {self._timeout:g} s"
                        )
                cache_control = response.headers.get("Cache-Control")
        except DocumentTooLarge:
            raise KeySetUnavailable(f"{where}: the body is over {self._max_bytes} bytes") from None
        except httpx.HTTPError as error:
            # httpx's own timeouts (per phase, each the whole budget) and our cut are one story.
            if flight.connections.was_cut or isinstance(error, httpx.TimeoutException):
                raise KeySetUnavailable(
                    f"{where}: no complete answer within {self._timeout:g} s"
                ) from None
            detail = " ".join(str(error).split())[:200]
            raise KeySetUnavailable(
                f"{where}: {type(error).__name__}{': ' if detail else ''}{detail}"
            ) from None
        try:
            document = json.loads(bytes(body.content))
        except (ValueError, RecursionError):  # RecursionError: nested too deep to parse
            raise KeySetUnavailable(f"{where}: the body is not JSON") from None
        try:
            value = self._read(document, flight.uri)
        except ValueError as error:
            raise KeySetUnavailable(f"{where}: not {self.what} we accept: {error}") from None
        return _Fetched(value, self._lifetime(cache_control))

    def _lifetime(self, cache_control: str | None) -> float:
        """Seconds the set may be used: ``max-age`` within the bounds; ``no-store``,
        ``no-cache`` or no ``max-age`` get the least."""
        from werkzeug.datastructures import ResponseCacheControl  # only once a set is fetched
        from werkzeug.http import parse_cache_control_header

        # Directive names are case-insensitive (RFC 9111 §5.2); werkzeug matches them as written.
        directives = parse_cache_control_header(
            cache_control.lower() if cache_control else None, cls=ResponseCacheControl
        )
        max_age = directives.max_age
        if directives.no_store or directives.no_cache or max_age is None:
            return self._min_max_age
        # Compared as an int first: a max-age of 400 digits is too big for a float.
        return float(min(max(max_age, self._min_max_age), self._max_max_age))


class RemoteKeySets(RemoteDocuments[KeySet]):
    """The JWK Sets served at ``jwks_uri``s, each checked by ``read`` (by default the rules
    for a client's own keys, ``client_keys.public_key_set``)."""

    what = "a JWK Set"

    def __init__(self, *, read: Callable[[Any], KeySet] = public_key_set, **options: Any) -> None:
        super().__init__(**options)
        self._read_key_set = read

    def key_set(self, uri: str, kid: str | None) -> KeySet:
        """The key set served at ``uri``, fetched again when ``kid`` is not in it (see
        :meth:`RemoteDocuments._get`)."""
        return self._get(uri, kid)

    def _read(self, document: Any, key: str) -> KeySet:
        return self._read_key_set(document)

    def _holds(self, value: KeySet, kid: str) -> bool:
        return has_kid(value, kid)


@dataclass(eq=False)
class _Entry(Generic[T]):
    """What is known of one uri. Times are by the injected clock."""

    value: T | None = None
    expires_at: float = -math.inf
    refresh_at: float = math.inf
    #: When the last fetch was asked for: an unknown kid fetches again only after the interval.
    attempted_at: float = -math.inf
    #: Until when the last failure is answered without asking the host again.
    failed_until: float = -math.inf
    failure: str = ""
    flight: _Flight | None = None


@dataclass(frozen=True)
class _Fetched(Generic[T]):
    value: T
    lifetime: float


class _Flight:
    """One fetch of a uri, queued or running, until its outcome or its deadline settles it."""

    def __init__(self, uri: str, asked_at: float) -> None:
        self.uri = uri
        self.asked_at = asked_at
        self.future: Future[Any] = Future()
        # Shared by every waiter, so none may cancel it (asyncio.wrap_future cancels the
        # future it wraps when its own waiter is cancelled): a running future cannot be.
        self.future.set_running_or_notify_cancel()
        self.settled = False
        self.connections = FetchConnections()
