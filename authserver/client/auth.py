"""Bearer authentication for requests and httpx, with one retry on a 401."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Generator
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from authserver.client.sources import AsyncClientCredentials, ClientCredentials

if TYPE_CHECKING:
    # requests ships no type information; seen as ``object`` it keeps mypy --strict content.
    _RequestsAuthBase = object
    _HAVE_REQUESTS = True
else:
    try:
        from requests.auth import AuthBase as _RequestsAuthBase

        _HAVE_REQUESTS = True
    except ImportError:  # requests is optional: only BearerAuth needs it.
        _RequestsAuthBase = object
        _HAVE_REQUESTS = False


#: The source kind an httpx client's auth flow needs.
_Source = TypeVar("_Source", ClientCredentials, AsyncClientCredentials)


def _bearer(token: str) -> str:
    return f"Bearer {token}"


class HTTPXBearerAuth(httpx.Auth):
    """``auth=`` for httpx: a bearer token from ``source`` on every request.

    A 401 from the API means the token was not accepted after all (revoked, signed by a key
    the API no longer trusts, or expired early): the token is invalidated and the request is
    sent once more with a fresh one. A second 401 is the caller's answer; there is no loop.
    The request body is read into memory first so that it can be sent twice.
    Use a ``ClientCredentials`` with ``httpx.Client`` and an ``AsyncClientCredentials`` with
    ``httpx.AsyncClient``.
    """

    def __init__(self, source: ClientCredentials | AsyncClientCredentials) -> None:
        self.source = source

    def __repr__(self) -> str:
        return f"HTTPXBearerAuth({self.source!r})"

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        source = self._source_as(ClientCredentials, "httpx.Client", "a ClientCredentials")
        request.read()
        token = source.token()
        response = yield _authorized(request, token)
        if _rejected(response, source, token):
            yield _authorized(request, source.token())

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        source = self._source_as(
            AsyncClientCredentials, "httpx.AsyncClient", "an AsyncClientCredentials"
        )
        await request.aread()
        token = await source.token()
        response = yield _authorized(request, token)
        if _rejected(response, source, token):
            yield _authorized(request, await source.token())

    def _source_as(self, kind: type[_Source], client: str, needed: str) -> _Source:
        """The source, if it is the kind the calling httpx client can use: a sync source
        would block an ``AsyncClient``'s event loop, an async one cannot be awaited in a
        ``Client``. Checked here: httpx picks the flow by its client, which the auth object
        does not know when it is made."""
        source = self.source
        if not isinstance(source, kind):
            raise TypeError(
                f"HTTPXBearerAuth with {client} needs {needed}, not {type(source).__name__}"
            )
        return source


def _authorized(request: httpx.Request, token: str) -> httpx.Request:
    request.headers["Authorization"] = _bearer(token)
    return request


def _rejected(
    response: httpx.Response, source: ClientCredentials | AsyncClientCredentials, token: str
) -> bool:
    """Whether the API refused ``token`` with a 401 (revoked, signed by a key it no longer
    trusts, or expired early); it is then dropped from the cache so that the one retry
    carries a fresh token."""
    if response.status_code != 401:
        return False
    source.invalidate(token)
    return True


#: ``_body_position`` for a body that cannot be sent a second time (a generator).
_NOT_REPLAYABLE = -1


class BearerAuth(_RequestsAuthBase):
    """``auth=`` for requests: a bearer token from a ``ClientCredentials`` on every request.

    On a 401 the token is invalidated and the request re-sent once with a fresh one, from a
    response hook as requests' own ``HTTPDigestAuth`` does; a second 401 is returned. Only the
    response to the request this auth signed is retried: after a redirect to another host,
    which requests sends without our ``Authorization``, a 401 is left alone, so the token
    never goes where the caller did not send it. Needs ``requests`` installed.
    """

    def __init__(self, source: ClientCredentials) -> None:
        if not _HAVE_REQUESTS:
            raise ImportError("BearerAuth needs requests: pip install requests")
        self.source = source

    def __repr__(self) -> str:
        return f"BearerAuth({self.source!r})"

    def __call__(self, request: Any) -> Any:
        token = self.source.token()
        request.headers["Authorization"] = _bearer(token)
        position = _body_position(request.body)

        def retry_once(response: Any, **send_kwargs: Any) -> Any:
            return self._retry(response, token, position, send_kwargs)

        request.register_hook("response", retry_once)
        return request

    def _retry(
        self, response: Any, token: str, position: int | None, send_kwargs: dict[str, Any]
    ) -> Any:
        request = response.request
        if response.status_code != 401 or request.headers.get("Authorization") != _bearer(token):
            return response
        if position == _NOT_REPLAYABLE:
            return response
        if position is not None:
            request.body.seek(position)
        from requests.cookies import extract_cookies_to_jar

        # Drain and release the 401 so that its connection can carry the retry.
        _ = response.content
        response.close()
        retry = request.copy()
        extract_cookies_to_jar(retry._cookies, request, response.raw)
        retry.prepare_cookies(retry._cookies)
        self.source.invalidate(token)
        retry.headers["Authorization"] = _bearer(self.source.token())
        # Sent by the adapter directly, so no response hook runs on it: at most one retry.
        retried = response.connection.send(retry, **send_kwargs)
        retried.history.append(response)
        retried.request = retry
        return retried


def _body_position(body: Any) -> int | None:
    """Where a file-like body starts (to rewind it for the retry); None for bodies that need
    no rewinding (bytes, str, none); ``_NOT_REPLAYABLE`` for iterators."""
    if body is None or isinstance(body, str | bytes | bytearray):
        return None
    tell: Callable[[], int] | None = getattr(body, "tell", None)
    if tell is None:
        return _NOT_REPLAYABLE
    try:
        return tell()
    except OSError:
        return _NOT_REPLAYABLE
