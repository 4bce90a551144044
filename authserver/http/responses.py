"""JSON responses in the shapes the contract fixes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from flask import Response
from werkzeug.http import HTTP_STATUS_CODES

from authserver.compact_json import compact_json

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

JSON_MIMETYPE = "application/json"

#: RFC 6749 §5.1/§5.2: token and error responses must never be cached.
NO_STORE = (("Cache-Control", "no-store"), ("Pragma", "no-cache"))


class JSONAnswer:
    """A JSON response as a bare WSGI application.

    The OAuth endpoints answer with this rather than a werkzeug ``Response``: skipping
    werkzeug's header and body-iterator machinery, and handing the server one body chunk,
    saved about 6 % of the server's CPU per token request (docs/performance.md). It holds
    exactly what the response sends, so ``json_response`` builds Flask's ``Response`` from it.
    """

    __slots__ = ("status", "body", "headers")

    def __init__(
        self, status: int, body: dict[str, Any], headers: Iterable[tuple[str, str]] = ()
    ) -> None:
        self.status = status
        self.body = compact_json(body).encode()
        self.headers = [
            *json_headers(self.body),
            *((name, value) for name, value in headers if name.lower() != "content-type"),
        ]

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        start_response(status_line(self.status), self.headers)
        return [self.body]


def json_headers(body: bytes) -> list[tuple[str, str]]:
    """The entity headers of a JSON body sent as ready bytes."""
    return [("Content-Type", JSON_MIMETYPE), ("Content-Length", str(len(body)))]


def status_line(status: int) -> str:
    """A WSGI status line, worded as werkzeug words it."""
    return f"{status} {HTTP_STATUS_CODES.get(status, 'Unknown').upper()}"


def json_response(
    status: int, body: dict[str, Any], headers: Iterable[tuple[str, str]] = ()
) -> Response:
    """The same answer for Flask routes and error handlers, which must return a ``Response``."""
    answer = JSONAnswer(status, body, headers)
    return Response(answer.body, status=status, headers=answer.headers)


def error_response(
    status: int, error: str, description: str, headers: Iterable[tuple[str, str]] = ()
) -> Response:
    """An RFC 6749 §5.2 error body; uncacheable like every OAuth error."""
    return json_response(
        status, {"error": error, "error_description": description}, (*NO_STORE, *headers)
    )
