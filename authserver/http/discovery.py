"""Public discovery documents: the JWK Set (RFC 7517) and server metadata (RFC 8414).

Both are rendered once (the JWKS whenever the keys change) and served as ready bytes by
plain WSGI apps in front of Flask, like the OAuth endpoints: resource servers fetch the JWKS
whenever their cache expires or they meet a new ``kid``, and Flask's request machinery cost
more than everything else such a request does (docs/performance.md).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from flask import Flask
from werkzeug.http import parse_etags, quote_etag

from authserver.http.errors import unexpected_error
from authserver.http.responses import json_headers, status_line
from authserver.http.routes import ROUTES
from authserver.oauth.clients import AUTH_METHODS, GRANT_TYPE
from authserver.security.client_keys import ASSERTION_ALGORITHMS
from authserver.security.keyring import KeyRingLoader
from authserver.services.key_retention import RetentionCache

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

METADATA_MAX_AGE_SECONDS = 3600

Headers = list[tuple[str, str]]


class _ReadyDocument(ABC):
    """GET and HEAD of a document rendered ahead; the router has checked the method."""

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            status, headers, body = self.render(environ)
        except Exception as exc:  # noqa: BLE001 (any failure must still be a JSON answer)
            return unexpected_error(exc)(environ, start_response)
        start_response(status, headers)
        return [b"" if environ.get("REQUEST_METHOD") == "HEAD" else body]

    @abstractmethod
    def render(self, environ: WSGIEnvironment) -> tuple[str, Headers, bytes]:
        """Status line, headers and body (sent without the body to HEAD)."""


class JwksDocument(_ReadyDocument):
    """The JWK Set, with an ETag so resource servers can revalidate it for free."""

    def __init__(
        self, app: Flask, keys: KeyRingLoader, retention: RetentionCache, max_age: int
    ) -> None:
        self._app = app
        self._keys = keys
        self._retention = retention
        self._max_age = max_age

    def render(self, environ: WSGIEnvironment) -> tuple[str, Headers, bytes]:
        with self._app.app_context():  # the retention refresh reads the database now and then
            retention = self._retention.current()
        document = self._keys.current().jwks(datetime.now(UTC), retention)
        cache_headers = [
            ("Cache-Control", f"public, max-age={self._max_age}"),
            ("ETag", quote_etag(document.etag)),
        ]
        if parse_etags(environ.get("HTTP_IF_NONE_MATCH")).contains_weak(document.etag):
            # RFC 9110 §15.4.5: a 304 carries the ETag and Cache-Control a 200 would have.
            return status_line(304), cache_headers, b""
        return status_line(200), [*json_headers(document.body), *cache_headers], document.body


class MetadataDocument(_ReadyDocument):
    """RFC 8414 metadata; it depends on the settings only, so it is rendered once."""

    def __init__(self, issuer: str) -> None:
        body = _metadata_body(issuer)
        cache_control = ("Cache-Control", f"public, max-age={METADATA_MAX_AGE_SECONDS}")
        self._answer = status_line(200), [*json_headers(body), cache_control], body

    def render(self, environ: WSGIEnvironment) -> tuple[str, Headers, bytes]:
        return self._answer


def _metadata_body(issuer: str) -> bytes:
    document: dict[str, object] = {"issuer": issuer}
    document.update(
        (route.metadata_member, route.url(issuer)) for route in ROUTES if route.metadata_member
    )
    document.update(
        {
            "grant_types_supported": [GRANT_TYPE],
            "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
            "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
            "introspection_endpoint_auth_methods_supported": list(AUTH_METHODS),
            "introspection_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
            "revocation_endpoint_auth_methods_supported": list(AUTH_METHODS),
            "revocation_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
            "response_types_supported": [],
        }
    )
    return json.dumps(document, separators=(",", ":")).encode()
