"""The one path dispatch in front of Flask: the routes the server answers without Flask's
request machinery (the OAuth endpoints and the discovery documents, see
``docs/performance.md``), looked up in the route table."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from authserver.http.errors import method_not_allowed
from authserver.http.routes import ROUTES, Route

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


class Router:
    """Answers each route whose handler is in ``handlers``; other paths go to ``fallback``."""

    def __init__(self, handlers: Mapping[str, WSGIApplication], fallback: WSGIApplication) -> None:
        self._routes: dict[str, tuple[Route, WSGIApplication]] = {
            route.path: (route, handlers[route.handler])
            for route in ROUTES
            if route.handler in handlers
        }
        self._fallback = fallback

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        found = self._routes.get(environ.get("PATH_INFO", ""))
        if found is None:
            return self._fallback(environ, start_response)
        route, handler = found
        if environ.get("REQUEST_METHOD", "") not in route.methods:
            return method_not_allowed(", ".join(route.methods))(environ, start_response)
        return handler(environ, start_response)
