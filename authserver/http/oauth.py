"""The OAuth endpoints (token, introspection, revocation) as plain WSGI apps.

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
from authserver.http.errors import body_too_large, database_unavailable, unexpected_error
from authserver.http.forms import parse_form
from authserver.http.responses import JSONAnswer
from authserver.oauth.errors import TooManyRequestsError
from authserver.oauth.requests import FormRequest
from authserver.oauth.server import AuthorizationServer
from authserver.oauth.server import Response as OAuthResponse
from authserver.security.failure_limits import FailureLimiter
from authserver.security.pending import ResultPending
from authserver.security.secrets import SlowCheckNeeded

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


class OAuthRequest(Request):
    max_content_length = MAX_BODY_BYTES


class OAuthEndpoint:
    """One OAuth endpoint; ``name`` is Authlib's (and the route table's) name for it."""

    def __init__(
        self,
        app: Flask,
        oauth: AuthorizationServer,
        failure_limiter: FailureLimiter | None,
        issuer: str,
        name: str,
    ) -> None:
        self._app = app
        self._oauth = oauth
        self._failure_limiter = failure_limiter
        self._issuer = issuer
        self._name = name

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        return self._respond(OAuthRequest(environ))(environ, start_response)

    def _respond(self, request: Request) -> WSGIApplication:
        started = time.perf_counter()
        try:
            with self._app.app_context():
                status, body, headers = self._answer(request)
        except RequestEntityTooLarge:
            return body_too_large()
        except (SlowCheckNeeded, ResultPending):
            raise  # for the gateway, which runs the request again where (or when) it can finish
        except SQLAlchemyError as exc:
            with self._app.app_context():
                return database_unavailable(exc)
        except Exception as exc:  # noqa: BLE001 (any failure must still be a JSON answer)
            return unexpected_error(exc)
        metrics.observe(self._name, status, body, started)
        return JSONAnswer(status, body, headers)

    def _answer(self, request: Request) -> OAuthResponse:
        address = request.remote_addr or "unknown"
        if self._failure_limiter is not None:
            retry_after = self._failure_limiter.address_retry_after(address)
            if retry_after is not None:
                return self._oauth.handle_error_response(None, TooManyRequestsError(retry_after))
        try:
            form_request = FormRequest(
                endpoint_uri=f"{self._issuer}{request.path}",
                form=parse_form(request),
                authorization_scheme=_authorization_scheme(request),
                basic=_basic_credentials(request),
                remote_addr=address,
            )
        except OAuth2Error as error:
            return self._oauth.handle_error_response(None, error)
        return self._oauth.handle(self._name, form_request)


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
