"""The OAuth endpoints (token, introspection, revocation): parse the HTTP request, hand it to
the OAuth server, send its answer."""

from __future__ import annotations

import time

from authlib.oauth2.rfc6749.errors import OAuth2Error
from flask import Blueprint, Response, request

from authserver.http import metrics
from authserver.http.forms import parse_form
from authserver.http.responses import json_response
from authserver.http.runtime import Runtime
from authserver.oauth.errors import TooManyRequestsError
from authserver.oauth.requests import FormRequest
from authserver.oauth.server import (
    INTROSPECTION_ENDPOINT,
    REVOCATION_ENDPOINT,
    TOKEN_ENDPOINT,
)
from authserver.oauth.server import Response as OAuthResponse

blueprint = Blueprint("oauth", __name__)

ENDPOINT_PATHS = {
    "/oauth2/token": TOKEN_ENDPOINT,
    "/oauth2/introspect": INTROSPECTION_ENDPOINT,
    "/oauth2/revoke": REVOCATION_ENDPOINT,
}
#: Endpoints that only accept POST; the error handlers answer other methods with 405.
OAUTH_PATHS = frozenset(ENDPOINT_PATHS)


def _handle() -> Response:
    started = time.perf_counter()
    endpoint = ENDPOINT_PATHS[request.path]
    status, body, headers = _answer(Runtime.current(), endpoint)
    metrics.observe(endpoint, status, body, started)
    return json_response(status, body, headers)


def _answer(runtime: Runtime, endpoint: str) -> OAuthResponse:
    if runtime.failure_limiter is not None:
        retry_after = runtime.failure_limiter.address_retry_after(request.remote_addr or "unknown")
        if retry_after is not None:
            return runtime.oauth.handle_error_response(None, TooManyRequestsError(retry_after))
    try:
        form_request = FormRequest(
            endpoint_uri=f"{runtime.settings.issuer}{request.path}",
            form=parse_form(request),
            authorization_scheme=_authorization_scheme(),
            basic=_basic_credentials(),
        )
    except OAuth2Error as error:
        return runtime.oauth.handle_error_response(None, error)
    return runtime.oauth.handle(endpoint, form_request)


for _path in ENDPOINT_PATHS:
    blueprint.add_url_rule(
        _path, view_func=_handle, endpoint=_path, methods=["POST"], provide_automatic_options=False
    )


def _authorization_scheme() -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    return header.split(" ", 1)[0].lower()


def _basic_credentials() -> tuple[str, str] | None:
    auth = request.authorization
    if auth is None or auth.type != "basic" or auth.username is None or auth.password is None:
        return None
    return auth.username, auth.password
