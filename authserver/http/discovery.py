"""Public discovery documents: the JWK Set (RFC 7517) and server metadata (RFC 8414).

Both are rendered once (the JWKS whenever the keys change) and served as ready bytes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache

from flask import Blueprint, Response, request

from authserver.config import Settings
from authserver.http.runtime import Runtime
from authserver.oauth.clients import AUTH_METHODS, GRANT_TYPE
from authserver.wellknown import JWKS_PATH, METADATA_PATH

blueprint = Blueprint("discovery", __name__)


@blueprint.route(JWKS_PATH, methods=["GET"])
@blueprint.route("/oauth2/jwks", methods=["GET"])
def jwks() -> Response:
    runtime = Runtime.current()
    document = runtime.keys.current().jwks(datetime.now(UTC), runtime.retention.current())
    response = Response(document.body, mimetype="application/json")
    response.headers["Cache-Control"] = f"public, max-age={runtime.settings.jwks_max_age}"
    response.set_etag(document.etag)
    if request.if_none_match.contains_weak(document.etag):
        response.status_code = 304
        response.set_data(b"")
    return response


@blueprint.route(METADATA_PATH, methods=["GET"])
def metadata() -> Response:
    response = Response(_metadata_body(Runtime.current().settings), mimetype="application/json")
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


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
