"""The OAuth endpoints (token, introspection, revocation) as a plain WSGI app.

They are the hot path, so they skip Flask's request machinery (routing, request context,
hooks), which the profile showed costing as much again as the rest of a token request
besides signing (docs/performance.md). What they still need of Flask is its application
context, for the database session; werkzeug parses the request as it does for Flask.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from authlib.oauth2.rfc6749.errors import OAuth2Error
from flask import Flask
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Request

from authserver.config import MAX_BODY_BYTES
from authserver.http import metrics
from authserver.http.errors import (
    body_too_large,
    database_unavailable,
    method_not_allowed,
    unexpected_error,
)
from authserver.http.forms import parse_form
from authserver.http.responses import JSONAnswer
from authserver.http.runtime import Runtime
from authserver.oauth.errors import TooManyRequestsError
from authserver.oauth.requests import FormRequest
from authserver.oauth.server import (
    INTROSPECTION_ENDPOINT,
    REVOCATION_ENDPOINT,
    TOKEN_ENDPOINT,
)
from authserver.oauth.server import Response as OAuthResponse
from authserver.security.secrets import SlowCheckNeeded

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

ENDPOINT_PATHS = {
    "/oauth2/token": TOKEN_ENDPOINT,
    "/oauth2/introspect": INTROSPECTION_ENDPOINT,
    "/oauth2/revoke": REVOCATION_ENDPOINT,
}


class OAuthRequest(Request):
    max_content_length = MAX_BODY_BYTES


class OAuthEndpoints:
    """Answers the OAuth paths itself and hands every other request to ``fallback`` (Flask)."""

    def __init__(self, app: Flask, runtime: Runtime, fallback: WSGIApplication) -> None:
        self._app = app
        self._runtime = runtime
        self._fallback = fallback

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        endpoint = ENDPOINT_PATHS.get(environ.get("PATH_INFO", ""))
        if endpoint is None:
            return self._fallback(environ, start_response)
        return self._respond(endpoint, OAuthRequest(environ))(environ, start_response)

    def _respond(self, endpoint: str, request: Request) -> WSGIApplication:
        if request.method != "POST":
            return method_not_allowed("POST")
        started = time.perf_counter()
        try:
            with self._app.app_context():
                status, body, headers = self._answer(endpoint, request)
        except RequestEntityTooLarge:
            return body_too_large()
        except SlowCheckNeeded:
            raise  # for the gateway, which runs the request again where the check may run
        except SQLAlchemyError as exc:
            with self._app.app_context():
                return database_unavailable(exc)
        except Exception as exc:  # noqa: BLE001 (any failure must still be a JSON answer)
            return unexpected_error(exc)
        metrics.observe(endpoint, status, body, started)
        return JSONAnswer(status, body, headers)

    def _answer(self, endpoint: str, request: Request) -> OAuthResponse:
        runtime = self._runtime
        address = request.remote_addr or "unknown"
        if runtime.failure_limiter is not None:
            retry_after = runtime.failure_limiter.address_retry_after(address)
            if retry_after is not None:
                return runtime.oauth.handle_error_response(None, TooManyRequestsError(retry_after))
        try:
            form_request = FormRequest(
                endpoint_uri=f"{runtime.settings.issuer}{request.path}",
                form=parse_form(request),
                authorization_scheme=_authorization_scheme(request),
                basic=_basic_credentials(request),
                remote_addr=address,
            )
        except OAuth2Error as error:
            return runtime.oauth.handle_error_response(None, error)
        return runtime.oauth.handle(endpoint, form_request)


def _authorization_scheme(request: Request) -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    return header.split(" ", 1)[0].lower()


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    auth = request.authorization
    if auth is None or auth.type != "basic" or auth.username is None or auth.password is None:
        return None
    return auth.username, auth.password
