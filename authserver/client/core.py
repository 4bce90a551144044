"""The rules of a token source, written once for ``ClientCredentials`` and its async twin.

Nothing here sends or awaits anything: a fetch is a generator that yields the ``Request`` it
needs sent (RFC 8414 metadata, then the token request) and is handed back the ``Answer``, as
in h11 or httpx's auth flows. Discovery, checking responses, caching, refresh timing and the
single-flight bookkeeping live here; the drivers in ``sources`` only move bytes (blocking or
awaited) and hold the lock (a ``threading.Lock`` or an ``asyncio.Lock``) while they do.
"""

from __future__ import annotations

import base64
import json
import math
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, Self, TypedDict, TypeVar, Unpack
from urllib.parse import quote

import httpx
from joserfc.errors import JoseError
from joserfc.jws import extract_compact

from authserver.client.assertion import AssertionSigner, PrivateKey
from authserver.client.errors import TokenError, json_object, unexpected_answer
from authserver.client.platform_token import PlatformToken, TokenFile
from authserver.wellknown import (
    MAX_DOCUMENT_BYTES,
    METADATA_PATH,
    CappedBody,
    DocumentTooLarge,
    same_origin,
)

#: Seconds before expiry at which a cached token is replaced: long enough for a request that
#: starts with the token to reach the API (and be verified) before the token expires.
DEFAULT_REFRESH_MARGIN = 180.0
#: Used for the httpx client a source creates: a token request is small and quick, and a
#: hung authorization server must not hang every caller waiting for a token.
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
#: The longest a token is cached, whatever ``expires_in`` says: a server (or a proxy) that
#: claims a year must not pin one token, revoked or not, in a service for that long.
MAX_TOKEN_LIFETIME = 86_400.0

#: The httpx client a driver sends with: ``httpx.Client`` or ``httpx.AsyncClient``.
HTTPClient = TypeVar("HTTPClient", httpx.Client, httpx.AsyncClient)


class FederatedOptions(TypedDict, Generic[HTTPClient], total=False):
    """The keyword options of a platform-token source (``from_token_file``,
    ``from_platform_token``): the constructor's, less those of the secret and the private
    key, with ``client_id`` optional."""

    issuer: str | None
    token_url: str | None
    client_id: str | None
    scope: str | Sequence[str] | None
    audience: str | None
    refresh_margin: float
    http_client: HTTPClient | None
    timeout: httpx.Timeout | float
    clock: Callable[[], float]


@dataclass(frozen=True)
class _Token:
    value: str
    #: The ``clock()`` reading from which the token is replaced; None when the server did not
    #: say when it expires (the token is then used by the callers that shared its fetch and
    #: never reused).
    refresh_at: float | None

    def __repr__(self) -> str:
        return f"_Token(value='***', refresh_at={self.refresh_at!r})"


@dataclass(frozen=True)
class Request:
    """A request the core needs sent. ``what`` names the endpoint in errors; ``form`` is the
    url-encoded body of a POST."""

    method: str
    url: str
    what: str
    headers: dict[str, str] = field(default_factory=lambda: {"Accept": "application/json"})
    form: dict[str, str] | None = None


class Answer:
    """The answer to a ``Request``: the response's status, and its body as the driver streams
    it in.

    The body is held to ``MAX_DOCUMENT_BYTES``: a response that declares more is refused
    before a byte is read, and one that sends more is refused as soon as it passes the limit
    (a bigger one is an attack on the memory of the service). Both are a ``TokenError``
    raised inside the driver's read, so the connection is dropped unread.
    """

    def __init__(self, request: Request, response: httpx.Response) -> None:
        self.status = response.status_code
        self._what = request.what
        try:
            self._body = CappedBody(response.headers.get("Content-Length"))
        except DocumentTooLarge:
            raise self._too_large() from None

    def add(self, chunk: bytes) -> None:
        try:
            self._body.add(chunk)
        except DocumentTooLarge:
            raise self._too_large() from None

    @property
    def content(self) -> bytearray:
        return self._body.content

    def _too_large(self) -> TokenError:
        return TokenError(
            "server_error",
            f"{self._what} answered with more than {MAX_DOCUMENT_BYTES} bytes",
            self.status,
        )


#: A fetch as the core runs it: yields the requests to send, is sent their answers, and
#: returns the token.
_Steps = Generator[Request, Answer, _Token]


def _jwt_exp(token: str) -> int | float | None:
    """The ``exp`` claim of a JWT access token, read WITHOUT verifying it: only to avoid
    caching the token past its own expiry. None when the token is opaque (RFC 6749 does not
    make access tokens JWTs) or carries no usable ``exp``."""
    try:
        claims = json.loads(extract_compact(token.encode()).payload)
    except (JoseError, ValueError, RecursionError, UnicodeError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, bool) or not isinstance(exp, int | float) or not math.isfinite(exp):
        return None
    return exp


def _expires_in(value: Any) -> int | float | None:
    """``expires_in`` as a number of seconds (RFC 6749 §5.1; some servers send a string of
    digits); None when absent; ``TokenError`` for anything that is not a duration."""
    if value is None:
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 <= value < math.inf  # JSON allows Infinity and NaN
    ):
        shown = value if isinstance(value, int | float) else type(value).__name__
        raise TokenError("server_error", f"expires_in {shown!r:.40} is not a duration", 200)
    return value


def _lifetime(expires_in: int | float | None, exp: int | float | None) -> float | None:
    """Seconds to keep the token: the least of ``expires_in``, what its own ``exp`` leaves,
    and ``MAX_TOKEN_LIFETIME``; None when the server said neither."""
    if expires_in is None and exp is None:
        return None
    bounds = [MAX_TOKEN_LIFETIME]  # compared before any arithmetic: 1e400 stays harmless
    if expires_in is not None:
        bounds.append(min(expires_in, MAX_TOKEN_LIFETIME))
    if exp is not None:
        now = time.time()
        bounds.append(min(exp, now + MAX_TOKEN_LIFETIME) - now)
    return min(bounds)


class TokenSource(ABC, Generic[HTTPClient]):
    """Configuration, cache and fetch rules of a token source; the subclass is the driver
    that sends the requests (with ``HTTPClient``) and makes concurrent callers wait."""

    def __init__(
        self,
        client_id: str | None = None,
        client_secret: str | None = None,
        *,
        private_key: PrivateKey | None = None,
        platform_token: Callable[[], str] | None = None,
        key_id: str | None = None,
        algorithm: str = "RS256",
        token_url: str | None = None,
        issuer: str | None = None,
        scope: str | Sequence[str] | None = None,
        audience: str | None = None,
        refresh_margin: float = DEFAULT_REFRESH_MARGIN,
        http_client: HTTPClient | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if (token_url is None) == (issuer is None):
            raise ValueError("give exactly one of token_url or issuer")
        credentials = (client_secret, private_key, platform_token)
        if sum(credential is not None for credential in credentials) != 1:
            raise ValueError(
                "give exactly one of client_secret (client_secret_basic), private_key "
                "(private_key_jwt) or platform_token (a trusted platform's JWT)"
            )
        if client_secret is not None and (not client_id or not client_secret):
            raise ValueError("client_id and client_secret must not be empty")
        if not client_id and (platform_token is None or client_id is not None):
            raise ValueError("client_id must not be empty")
        if private_key is None and key_id is not None:
            raise ValueError("key_id names the private_key's kid: it needs private_key")
        if refresh_margin < 0:
            raise ValueError("refresh_margin must be >= 0")
        #: None only for a platform-token source that leaves the client to the server's trust.
        self.client_id = client_id
        #: What authenticates each token request: with a secret, the Basic header; with a
        #: private key, the signer of a new assertion per request; with a platform token,
        #: what reads it anew per request.
        self._credential: str | AssertionSigner | PlatformToken
        if platform_token is not None:
            self._credential = PlatformToken(platform_token)
        elif private_key is not None:
            self._credential = AssertionSigner(
                client_id or "",
                private_key,
                key_id=key_id,
                algorithm=algorithm,
                wall_clock=wall_clock,
            )
        else:
            # RFC 6749 §2.3.1: id and secret are form-urlencoded before they go into Basic;
            # the server form-urldecodes them, so ':', '%', '+' or spaces survive.
            basic = f"{quote(client_id or '', safe='')}:{quote(client_secret or '', safe='')}"
            self._credential = "Basic " + base64.b64encode(basic.encode()).decode("ascii")
        #: The issuer as the server publishes it: the contract strips a trailing slash.
        self.issuer = issuer.rstrip("/") if issuer is not None else None
        #: The token endpoint; with ``issuer``, None until discovered on the first fetch.
        self.token_url = token_url
        self.scope = scope if scope is None or isinstance(scope, str) else " ".join(scope)
        self.audience = audience
        self.refresh_margin = float(refresh_margin)
        self._clock = clock
        self._token: _Token | None = None
        # Single-flight bookkeeping: a caller that waited while another fetched uses that
        # fetch's outcome (``_last``) instead of starting its own.
        self._generation = 0
        self._last: _Token | TokenError | None = None
        #: Only a client the source made itself is closed with it.
        self._owns_http = http_client is None
        self._open(http_client, timeout)

    @abstractmethod
    def _open(self, http_client: HTTPClient | None, timeout: httpx.Timeout | float) -> None:
        """The driver's part of construction: ``_http``, the given client or its own with
        ``timeout``, and ``_lock``, which a caller holds through its ``_flight``."""

    @classmethod
    def from_token_file(
        cls, path: str | os.PathLike[str], **options: Unpack[FederatedOptions[HTTPClient]]
    ) -> Self:
        """A source that authenticates with the platform token in the file at ``path``
        (workload identity federation: the server holds a trust for the platform's issuer,
        and no secret or key exists for this client at all).

        The file is read at each token fetch, never cached: Kubernetes rewrites a projected
        service-account token (``/var/run/secrets/tokens/...``) long before it expires, and
        the next fetch simply sends the new one. A file that is missing, empty, unreadable or
        holds no JWT fails that fetch with ``PlatformTokenError`` (a ``TokenError``) naming
        the path, not at construction: a pod may start before its volume is projected.

        ``client_id`` is optional (the trust names the client; when given, the server checks
        it is that one). ``audience`` and ``scope`` are the access token's, as for any source;
        the platform token's own audience is set where the platform issues it (the projected
        volume's ``audience``) and must be the trust's. The other options are the
        constructor's: ``issuer`` or ``token_url`` (exactly one), ``refresh_margin``,
        ``http_client``, ``timeout``, ``clock``. The async source reads the file on the
        event loop: it is a local file of a few KiB, read once per access token.
        """
        return cls.from_platform_token(TokenFile(path), **options)

    @classmethod
    def from_platform_token(
        cls, get_token: Callable[[], str], **options: Unpack[FederatedOptions[HTTPClient]]
    ) -> Self:
        """``from_token_file`` for a platform token that is not in a file: ``get_token()``
        is called at each token fetch and returns the platform's JWT (a GitHub Actions job
        asks ``ACTIONS_ID_TOKEN_REQUEST_URL`` for one). The keyword options are
        ``from_token_file``'s. An exception it raises becomes a ``PlatformTokenError``
        naming its type and message (a ``TokenError`` passes as it is), so the callable must
        not put the token in its own errors. With the async source it runs on the event
        loop: keep it quick, or fetch ahead in a thread."""
        return cls(platform_token=get_token, **options)

    def __repr__(self) -> str:
        where = f"issuer={self.issuer!r}" if self.issuer else f"token_url={self.token_url!r}"
        signer = self._credential
        if isinstance(signer, AssertionSigner):
            credential = (
                f"private_key='***', key_id={signer.key_id!r}, algorithm={signer.algorithm!r}"
            )
        elif isinstance(signer, PlatformToken):
            credential = f"platform_token={signer.get_token!r}"
        else:
            credential = "client_secret='***'"
        return (
            f"{type(self).__name__}(client_id={self.client_id!r}, {credential}, "
            f"{where}, scope={self.scope!r}, audience={self.audience!r})"
        )

    def invalidate(self, token: str | None = None) -> None:
        """Drop the cached token so that the next ``token()`` fetches a new one.

        With ``token``, drop it only if it is still the cached one: when several requests
        fail with the same rejected token, the first one's refresh is then not thrown away
        by the others.
        """
        current = self._token
        if current is not None and (token is None or current.value == token):
            self._token = None

    # -- single flight: what token() does before and around the lock ----------------------

    def _cached(self) -> tuple[int, str | None]:
        """The generation seen before the cache (so that a fetch finishing in between is
        noticed as shared), and the cached token if it is fresh enough."""
        generation = self._generation
        token = self._token
        if token is None or token.refresh_at is None:
            return generation, None
        if self._clock() >= token.refresh_at:
            return generation, None
        return generation, token.value

    @contextmanager
    def _flight(self, generation: int) -> Iterator[_Flight]:
        """A caller's turn once it holds the lock. A fetch's outcome is published for the
        callers still waiting: its token, or the ``TokenError`` it ended with, whether the
        rules raised it or the driver's I/O did. Any other exception (a cancelled task)
        publishes nothing, so the next waiter fetches for itself instead of inheriting it."""
        shared = self._shared(generation)
        try:
            # Inside the try: the first step may fail before any request (a platform token
            # that cannot be read), and its waiters share that outcome too.
            flight = _Flight(self._fetch(), shared)
            yield flight
        except TokenError as exc:
            self._finish(exc)
            raise
        if flight.fetched is not None:
            self._finish(flight.fetched)

    def _shared(self, generation: int) -> str | None:
        """Under the lock: the outcome of a fetch that finished while we waited, if any."""
        last = self._last
        if self._generation == generation or last is None:
            return None
        if isinstance(last, TokenError):
            raise last._copy()
        return last.value

    def _finish(self, outcome: _Token | TokenError) -> None:
        """Under the lock: publish a fetch's outcome. The generation moves last, so a caller
        that sees the new generation in ``_cached`` also sees the new token."""
        if isinstance(outcome, _Token) and outcome.refresh_at is not None:
            self._token = outcome
        else:
            self._token = None
        self._last = outcome
        self._generation += 1

    # -- one fetch, as requests to send and answers to check ------------------------------

    def _fetch(self) -> _Steps:
        token_url = self.token_url
        if token_url is None:
            metadata = yield Request("GET", self._metadata_url(), "the metadata endpoint")
            token_url = self._discovered(metadata)
        request = self._token_request(token_url)
        # Read before the request goes out: the server's clock started no earlier.
        sent_at = self._clock()
        return self._parsed((yield request), sent_at)

    def _metadata_url(self) -> str:
        return f"{self.issuer}{METADATA_PATH}"

    def _token_request(self, token_url: str) -> Request:
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        if self.audience:
            form["audience"] = self.audience
        if isinstance(self._credential, AssertionSigner):
            # A new assertion per request (RFC 7523 §3: the server accepts each jti once),
            # addressed to the issuer when we know it, else to the token endpoint we were
            # given. The key never leaves the process: no Authorization header.
            form.update(self._credential.form(self.issuer or token_url))
            headers = {"Accept": "application/json"}
        elif isinstance(self._credential, PlatformToken):
            # The platform's JWT, read now and sent as it is: the server's trust maps its
            # issuer and subject to a client. client_id only when the caller named one (the
            # server then checks it is the trust's client).
            form.update(self._credential.form())
            if self.client_id:
                form["client_id"] = self.client_id
            headers = {"Accept": "application/json"}
        else:
            headers = {"Authorization": self._credential, "Accept": "application/json"}
        return Request("POST", token_url, "the token endpoint", headers, form)

    def _discovered(self, answer: Answer) -> str:
        """The token endpoint from RFC 8414 metadata, after checking it is our issuer's and
        on our issuer's origin: the secret goes only where the caller pointed."""
        body = json_object(answer.content)
        status = answer.status
        if status != 200 or body is None:
            raise unexpected_answer(status, answer.content, "the metadata endpoint")
        if body.get("issuer") != self.issuer:
            # RFC 8414 §3.3: metadata naming another issuer must not be used (it could send
            # our secret to an endpoint that an attacker controls).
            named = body.get("issuer")
            raise TokenError(
                "server_error",
                f"metadata at {self._metadata_url()} names issuer "
                f"{named if isinstance(named, str) else type(named).__name__!r:.100}, "
                f"not {self.issuer!r} (RFC 8414 §3.3)",
                status,
            )
        endpoint = body.get("token_endpoint")
        if not isinstance(endpoint, str) or not endpoint.startswith(("https://", "http://")):
            raise TokenError(
                "server_error",
                f"metadata at {self._metadata_url()} has no usable token_endpoint",
                status,
            )
        if self.issuer is None or not same_origin(endpoint, self.issuer):
            raise TokenError(
                "server_error",
                f"the metadata's token_endpoint {endpoint!r:.100} is not on the issuer's "
                "origin; pass token_url= instead of issuer= to use it",
                status,
            )
        self.token_url = endpoint
        return endpoint

    def _parsed(self, answer: Answer, sent_at: float) -> _Token:
        """The token from a token response, or the OAuth error it carries."""
        body = json_object(answer.content)
        if answer.status != 200 or body is None:
            raise unexpected_answer(answer.status, answer.content, "the token endpoint")
        access_token = body.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            raise TokenError("server_error", "token response without access_token", 200)
        token_type = body.get("token_type")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            # RFC 6749 §7.1: a client must not use a token whose type it does not understand.
            shown = token_type if isinstance(token_type, str) else type(token_type).__name__
            raise TokenError("server_error", f"token_type {shown!r:.40} is not Bearer", 200)
        lifetime = _lifetime(_expires_in(body.get("expires_in")), _jwt_exp(access_token))
        if lifetime is None or lifetime <= 0:
            return _Token(access_token, None)
        # Measured from when the request was sent. A margin is never more than half the
        # lifetime, so short-lived tokens are still reused.
        return _Token(access_token, sent_at + lifetime - min(self.refresh_margin, lifetime / 2))


class _Flight:
    """A caller's turn under the lock, run by a driver: while ``request`` is not None the
    driver sends it and hands its ``Answer`` to ``answer()``. ``token`` is then the result:
    fetched now, or shared from the fetch that finished while the caller waited (no request
    at all)."""

    def __init__(self, steps: _Steps, shared: str | None) -> None:
        self._steps = steps
        #: The token this turn fetched, for the source to publish; None when shared.
        self.fetched: _Token | None = None
        self.token = shared if shared is not None else ""
        self.request = next(steps) if shared is None else None

    def answer(self, answer: Answer) -> None:
        try:
            self.request = self._steps.send(answer)
        except StopIteration as done:
            self.request = None
            self.fetched = done.value
            self.token = done.value.value
