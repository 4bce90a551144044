"""Token sources: client_credentials tokens fetched, cached until close to expiry, and shared
by concurrent callers (threads for ``ClientCredentials``, asyncio tasks for the async one)."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx
from joserfc.errors import JoseError
from joserfc.jws import extract_compact

from authserver.client.errors import TokenError, json_object, network_errors, unexpected_answer
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
#: Used for the httpx client this module creates: a token request is small and quick, and a
#: hung authorization server must not hang every caller waiting for a token.
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
#: The longest a token is cached, whatever ``expires_in`` says: a server (or a proxy) that
#: claims a year must not pin one token, revoked or not, in a service for that long.
MAX_TOKEN_LIFETIME = 86_400.0


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
class _Answer:
    """A response's status and its body (read under ``MAX_DOCUMENT_BYTES``)."""

    status: int
    content: bytes


def _too_large(what: str, status: int) -> TokenError:
    return TokenError(
        "server_error", f"{what} answered with more than {MAX_DOCUMENT_BYTES} bytes", status
    )


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


class _ClientCredentialsBase:
    """Configuration, request building and response checking shared by the sync and async
    sources, which differ only in how they do I/O and how callers wait for each other."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        token_url: str | None = None,
        issuer: str | None = None,
        scope: str | Sequence[str] | None = None,
        audience: str | None = None,
        refresh_margin: float = DEFAULT_REFRESH_MARGIN,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if (token_url is None) == (issuer is None):
            raise ValueError("give exactly one of token_url or issuer")
        if not client_id or not client_secret:
            raise ValueError("client_id and client_secret must not be empty")
        if refresh_margin < 0:
            raise ValueError("refresh_margin must be >= 0")
        self.client_id = client_id
        # RFC 6749 §2.3.1: id and secret are form-urlencoded before they go into Basic; the
        # server form-urldecodes them, so ids or secrets with ':', '%', '+' or spaces survive.
        credentials = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}"
        self._authorization = "Basic " + base64.b64encode(credentials.encode()).decode("ascii")
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

    def __repr__(self) -> str:
        where = f"issuer={self.issuer!r}" if self.issuer else f"token_url={self.token_url!r}"
        return (
            f"{type(self).__name__}(client_id={self.client_id!r}, client_secret='***', "
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

    # -- the parts of token() that do no I/O ------------------------------------------

    def _start(self) -> tuple[int, str | None]:
        """The generation seen before the cache (so that a fetch finishing in between is
        noticed as shared), and the cached token if it is fresh enough."""
        generation = self._generation
        token = self._token
        if token is None or token.refresh_at is None:
            return generation, None
        if self._clock() >= token.refresh_at:
            return generation, None
        return generation, token.value

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
        that sees the new generation in ``_start`` also sees the new token."""
        if isinstance(outcome, _Token) and outcome.refresh_at is not None:
            self._token = outcome
        else:
            self._token = None
        self._last = outcome
        self._generation += 1

    def _metadata_url(self) -> str:
        return f"{self.issuer}{METADATA_PATH}"

    def _token_request(self) -> tuple[dict[str, str], dict[str, str]]:
        """Headers and form body of the token request."""
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        if self.audience:
            form["audience"] = self.audience
        headers = {"Authorization": self._authorization, "Accept": "application/json"}
        return headers, form

    def _discovered(self, answer: _Answer) -> str:
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

    def _parsed(self, answer: _Answer, sent_at: float) -> _Token:
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
        lifetime = self._lifetime(_expires_in(body.get("expires_in")), _jwt_exp(access_token))
        if lifetime is None or lifetime <= 0:
            return _Token(access_token, None)
        # Measured from when the request was sent: the server's clock started no earlier. A
        # margin is never more than half the lifetime, so short-lived tokens are still reused.
        return _Token(access_token, sent_at + lifetime - min(self.refresh_margin, lifetime / 2))

    @staticmethod
    def _lifetime(expires_in: int | float | None, exp: int | float | None) -> float | None:
        """Seconds to keep the token: the least of ``expires_in``, what its own ``exp``
        leaves, and ``MAX_TOKEN_LIFETIME``; None when the server said neither."""
        if expires_in is None and exp is None:
            return None
        bounds = [MAX_TOKEN_LIFETIME]  # compared before any arithmetic: 1e400 stays harmless
        if expires_in is not None:
            bounds.append(min(expires_in, MAX_TOKEN_LIFETIME))
        if exp is not None:
            now = time.time()
            bounds.append(min(exp, now + MAX_TOKEN_LIFETIME) - now)
        return min(bounds)


class ClientCredentials(_ClientCredentialsBase):
    """Client-credentials access tokens for threaded (or single-threaded) code.

    Give exactly one of ``token_url`` or ``issuer``; with ``issuer`` the token endpoint is
    read once from ``{issuer}/.well-known/oauth-authorization-server`` (RFC 8414), whose
    ``issuer`` must be the configured one and whose ``token_endpoint`` must be on the
    issuer's origin (scheme, host and port): the secret is never sent to a host the caller
    did not name. A token endpoint elsewhere is used by passing it as ``token_url``.
    ``scope`` (a string or a list) and ``audience`` are sent when given; otherwise the
    server grants the client's registered ones.

    ``token()`` returns the cached token while at least ``refresh_margin`` seconds of its
    lifetime remain (measured with ``clock``, ``time.monotonic`` unless a test injects
    another, from when its request was sent), and fetches a new one otherwise; threads that
    find the cache empty together share one fetch. The lifetime is the server's
    ``expires_in``, but never past the token's own ``exp`` (read, not verified, when the
    token is a JWT) nor ``MAX_TOKEN_LIFETIME`` (a day); a token with neither is not reused.
    The margin is capped at half the lifetime, so a client whose tokens live 180 s or less
    still reuses each token for half its life instead of fetching per call.

    Responses over ``MAX_DOCUMENT_BYTES`` (1 MiB) are refused without being read whole,
    and the server's ``error``/``error_description`` reach ``TokenError`` made printable
    and cut to 300 characters.

    The source makes its own ``httpx.Client`` (10 s timeouts) unless ``http_client`` is given
    (for proxies, custom CA bundles, ...); only its own client is closed by ``close()``.
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        token_url: str | None = None,
        issuer: str | None = None,
        scope: str | Sequence[str] | None = None,
        audience: str | None = None,
        refresh_margin: float = DEFAULT_REFRESH_MARGIN,
        http_client: httpx.Client | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            client_id,
            client_secret,
            token_url=token_url,
            issuer=issuer,
            scope=scope,
            audience=audience,
            refresh_margin=refresh_margin,
            clock=clock,
        )
        self._owns_http = http_client is None
        self._http = http_client if http_client is not None else httpx.Client(timeout=timeout)
        self._lock = threading.Lock()

    def token(self) -> str:
        """The access token to send as ``Authorization: Bearer``; raises ``TokenError``."""
        generation, cached = self._start()
        if cached is not None:
            return cached
        # Holding the lock through the fetch is the point: the others wait for its outcome
        # instead of each sending the same request.
        with self._lock:
            shared = self._shared(generation)
            if shared is not None:
                return shared
            try:
                token = self._fetch()
            except TokenError as exc:
                self._finish(exc)
                raise
            self._finish(token)
            return token.value

    def _fetch(self) -> _Token:
        token_url = self.token_url
        if token_url is None:
            metadata = self._send("GET", self._metadata_url(), "the metadata endpoint")
            token_url = self._discovered(metadata)
        headers, form = self._token_request()
        sent_at = self._clock()
        answer = self._send("POST", token_url, "the token endpoint", data=form, headers=headers)
        return self._parsed(answer, sent_at)

    def _send(self, method: str, url: str, what: str, **kwargs: Any) -> _Answer:
        kwargs.setdefault("headers", {"Accept": "application/json"})
        with (
            network_errors(f"cannot reach {url}"),
            self._http.stream(method, url, **kwargs) as response,
        ):
            try:
                body = CappedBody(response.headers.get("Content-Length"))
                for chunk in response.iter_bytes():
                    body.add(chunk)
            except DocumentTooLarge:
                raise _too_large(what, response.status_code) from None
        return _Answer(response.status_code, bytes(body.content))

    def close(self) -> None:
        """Close the httpx client this source created (not one that was passed in)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClientCredentials(_ClientCredentialsBase):
    """``ClientCredentials`` for asyncio: ``await source.token()``; tasks that find the cache
    empty together share one fetch. ``http_client`` is an ``httpx.AsyncClient``; use the
    source from one event loop (its connections belong to it), and ``await aclose()``."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        token_url: str | None = None,
        issuer: str | None = None,
        scope: str | Sequence[str] | None = None,
        audience: str | None = None,
        refresh_margin: float = DEFAULT_REFRESH_MARGIN,
        http_client: httpx.AsyncClient | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            client_id,
            client_secret,
            token_url=token_url,
            issuer=issuer,
            scope=scope,
            audience=audience,
            refresh_margin=refresh_margin,
            clock=clock,
        )
        self._owns_http = http_client is None
        self._http = http_client if http_client is not None else httpx.AsyncClient(timeout=timeout)
        # A lock rather than a shared future: a fetch cancelled with its task releases it,
        # and the next waiter simply fetches instead of inheriting the cancellation.
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        """The access token to send as ``Authorization: Bearer``; raises ``TokenError``."""
        generation, cached = self._start()
        if cached is not None:
            return cached
        async with self._lock:
            shared = self._shared(generation)
            if shared is not None:
                return shared
            try:
                token = await self._fetch()
            except TokenError as exc:
                self._finish(exc)
                raise
            self._finish(token)
            return token.value

    async def _fetch(self) -> _Token:
        token_url = self.token_url
        if token_url is None:
            metadata = await self._send("GET", self._metadata_url(), "the metadata endpoint")
            token_url = self._discovered(metadata)
        headers, form = self._token_request()
        sent_at = self._clock()
        answer = await self._send(
            "POST", token_url, "the token endpoint", data=form, headers=headers
        )
        return self._parsed(answer, sent_at)

    async def _send(self, method: str, url: str, what: str, **kwargs: Any) -> _Answer:
        kwargs.setdefault("headers", {"Accept": "application/json"})
        with network_errors(f"cannot reach {url}"):
            async with self._http.stream(method, url, **kwargs) as response:
                try:
                    body = CappedBody(response.headers.get("Content-Length"))
                    async for chunk in response.aiter_bytes():
                        body.add(chunk)
                except DocumentTooLarge:
                    raise _too_large(what, response.status_code) from None
        return _Answer(response.status_code, bytes(body.content))

    async def aclose(self) -> None:
        """Close the httpx client this source created (not one that was passed in)."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
