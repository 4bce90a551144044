"""Public discovery documents: the JWK Set (RFC 7517) and server metadata (RFC 8414).

Both are rendered once (the JWKS whenever the keys change) and served as ready bytes by a
plain WSGI app in front of Flask, like the OAuth endpoints: resource servers fetch the JWKS
whenever their cache expires or they meet a new ``kid``, and Flask's request machinery cost
more than everything else such a request does (docs/performance.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING

from flask import Flask
from werkzeug.http import parse_etags, quote_etag

from authserver.config import Settings
from authserver.http.errors import method_not_allowed, unexpected_error
from authserver.http.responses import json_headers, status_line
from authserver.http.runtime import Runtime
from authserver.oauth.clients import AUTH_METHODS, GRANT_TYPE
from authserver.wellknown import JWKS_PATH, METADATA_PATH

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

JWKS_PATHS = frozenset({JWKS_PATH, "/oauth2/jwks"})
READ_METHODS = frozenset({"GET", "HEAD"})
METADATA_MAX_AGE_SECONDS = 3600

Headers = list[tuple[str, str]]


class DiscoveryDocuments:
    """Answers GET and HEAD for the discovery paths; other paths go to ``fallback`` (Flask)."""

    def __init__(self, app: Flask, runtime: Runtime, fallback: WSGIApplication) -> None:
        self._app = app
        self._runtime = runtime
        self._fallback = fallback

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path not in JWKS_PATHS and path != METADATA_PATH:
            return self._fallback(environ, start_response)
        method = environ.get("REQUEST_METHOD", "")
        if method not in READ_METHODS:
            return method_not_allowed("GET, HEAD")(environ, start_response)
        try:
            if path == METADATA_PATH:
                status, headers, body = self._metadata()
            else:
                status, headers, body = self._jwks(environ.get("HTTP_IF_NONE_MATCH"))
        except Exception as exc:  # noqa: BLE001 (any failure must still be a JSON answer)
            return unexpected_error(exc)(environ, start_response)
        start_response(status, headers)
        return [b"" if method == "HEAD" else body]

    def _jwks(self, if_none_match: str | None) -> tuple[str, Headers, bytes]:
        runtime = self._runtime
        with self._app.app_context():  # the retention refresh reads the database now and then
            retention = runtime.retention.current()
        document = runtime.keys.current().jwks(datetime.now(UTC), retention)
        cache_headers = [
            ("Cache-Control", f"public, max-age={runtime.settings.jwks_max_age}"),
            ("ETag", quote_etag(document.etag)),
        ]
        if parse_etags(if_none_match).contains_weak(document.etag):
            # RFC 9110 §15.4.5: a 304 carries the ETag and Cache-Control a 200 would have.
            return status_line(304), cache_headers, b""
        return status_line(200), [*json_headers(document.body), *cache_headers], document.body

    def _metadata(self) -> tuple[str, Headers, bytes]:
        body = _metadata_body(self._runtime.settings)
        cache_control = ("Cache-Control", f"public, max-age={METADATA_MAX_AGE_SECONDS}")
        return status_line(200), [*json_headers(body), cache_control], body


@cache
def _metadata_body(settings: Settings) -> bytes:
    document = {
        "issuer": settings.issuer,
        "token_endpoint": settings.token_endpoint,
        "jwks_uri": settings.jwks_uri,
        "introspection_endpoint": settings.introspection_endpoint,
        "revocation_endpoint": settings.revocation_endpoint,
        "grant_types_supported": [GRANT_TYPE],
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "introspection_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "revocation_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "response_types_supported": [],
    }
    return json.dumps(document, separators=(",", ":")).encode()
