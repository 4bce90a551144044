"""Token sources: client_credentials tokens fetched, cached until close to expiry, and shared
by concurrent callers (threads for ``ClientCredentials``, asyncio tasks for the async one).

Both are thin drivers of the rules in ``core``: they send the requests its fetch asks for,
stream the answers in, and hold the lock that makes concurrent callers share one fetch.
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import Self

import httpx

from authserver.client.core import (
    DEFAULT_REFRESH_MARGIN,
    DEFAULT_TIMEOUT,
    MAX_TOKEN_LIFETIME,
    Answer,
    Request,
    TokenSource,
)
from authserver.client.errors import network_errors

# The defaults and limits the sources document stay importable with them.
__all__ = [
    "DEFAULT_REFRESH_MARGIN",
    "DEFAULT_TIMEOUT",
    "MAX_TOKEN_LIFETIME",
    "AsyncClientCredentials",
    "ClientCredentials",
]


class ClientCredentials(TokenSource[httpx.Client]):
    """Client-credentials access tokens for threaded (or single-threaded) code.

    Give exactly one of ``token_url`` or ``issuer``; with ``issuer`` the token endpoint is
    read once from ``{issuer}/.well-known/oauth-authorization-server`` (RFC 8414), whose
    ``issuer`` must be the configured one and whose ``token_endpoint`` must be on the
    issuer's origin (scheme, host and port): the secret is never sent to a host the caller
    did not name. A token endpoint elsewhere is used by passing it as ``token_url``.
    ``scope`` (a string or a list) and ``audience`` are sent when given; otherwise the
    server grants the client's registered ones.

    The client authenticates with ``client_secret`` (sent as HTTP Basic, RFC 6749 §2.3.1) or
    with ``private_key`` (``private_key_jwt``, RFC 7523 §2.2), never both. A key client's
    server holds only its public key, so no stored or logged credential can impersonate it:
    each token request carries a new assertion signed with ``algorithm`` (``RS256``,
    ``PS256``, ``ES256`` or ``EdDSA``) whose ``iss`` and ``sub`` are the client id, ``aud``
    the issuer (the token endpoint when only ``token_url`` is given), ``exp`` 60 s after
    ``iat`` and ``jti`` random, so a captured one is refused once used and soon expired.
    ``private_key`` is the path of a PEM file (read once, here), PEM bytes, a joserfc key
    or a ``cryptography`` private key; ``key_id`` is sent as the JWS ``kid`` so the server
    picks the right key of the client's set. A key that does not fit ``algorithm`` (or a
    public key, or an unreadable file) is a ``ValueError`` here, not at the first fetch.
    The assertion's times come from ``wall_clock`` (``time.time``): the server compares them
    with its own clock.

    A workload that its platform already identifies authenticates with neither: made with
    ``ClientCredentials.from_token_file(path, issuer=...)`` (or ``from_platform_token(get_token,
    ...)``), the source sends the platform's JWT, read anew at each fetch, as its
    ``client_assertion``, and the server's trust for that platform's issuer decides which
    client it is (``client_id`` is then optional). ``platform_token=`` is the constructor's
    name for that callable.

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
    ``repr()`` shows neither the secret nor the key.
    """

    def _open(self, http_client: httpx.Client | None, timeout: httpx.Timeout | float) -> None:
        self._http = http_client if http_client is not None else httpx.Client(timeout=timeout)
        self._lock = threading.Lock()

    def token(self) -> str:
        """The access token to send as ``Authorization: Bearer``; raises ``TokenError``."""
        generation, cached = self._cached()
        if cached is not None:
            return cached
        # Holding the lock through the fetch is the point: the others wait for its outcome
        # instead of each sending the same request.
        with self._lock, self._flight(generation) as flight:
            while (request := flight.request) is not None:
                flight.answer(self._send(request))
            return flight.token

    def _send(self, request: Request) -> Answer:
        with (
            network_errors(f"cannot reach {request.url}"),
            self._http.stream(
                request.method, request.url, headers=request.headers, data=request.form
            ) as response,
        ):
            answer = Answer(request, response)
            for chunk in response.iter_bytes():
                answer.add(chunk)
        return answer

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


class AsyncClientCredentials(TokenSource[httpx.AsyncClient]):
    """``ClientCredentials`` for asyncio: ``await source.token()``; tasks that find the cache
    empty together share one fetch. ``http_client`` is an ``httpx.AsyncClient``; use the
    source from one event loop (its connections belong to it), and ``await aclose()``."""

    def _open(self, http_client: httpx.AsyncClient | None, timeout: httpx.Timeout | float) -> None:
        self._http = http_client if http_client is not None else httpx.AsyncClient(timeout=timeout)
        # A lock rather than a shared future: a fetch cancelled with its task releases it,
        # and the next waiter simply fetches instead of inheriting the cancellation.
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        """The access token to send as ``Authorization: Bearer``; raises ``TokenError``."""
        generation, cached = self._cached()
        if cached is not None:
            return cached
        async with self._lock:
            with self._flight(generation) as flight:
                while (request := flight.request) is not None:
                    flight.answer(await self._send(request))
                return flight.token

    async def _send(self, request: Request) -> Answer:
        with network_errors(f"cannot reach {request.url}"):
            async with self._http.stream(
                request.method, request.url, headers=request.headers, data=request.form
            ) as response:
                answer = Answer(request, response)
                async for chunk in response.aiter_bytes():
                    answer.add(chunk)
        return answer

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
