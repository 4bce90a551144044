"""The OAuth endpoints (token, introspection, revocation) as plain WSGI apps.

They are the hot path, so they skip Flask's request machinery (routing, request context,
hooks), which the profile showed costing as much again as the rest of a token request
besides signing (docs/performance.md). They also skip werkzeug's request object and Flask's
application context (the backend holds the engine): the environ is read with werkzeug's
parsers, and the body is the one the gateway already read. Flask's app is needed only to
answer a database failure.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from authlib.oauth2.rfc6749.errors import OAuth2Error
from flask import Flask
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.datastructures import Authorization
from werkzeug.exceptions import RequestEntityTooLarge

from authserver.http import metrics
from authserver.http.errors import body_too_large, database_unavailable, unexpected_error
from authserver.http.forms import parse_form
from authserver.http.responses import JSONAnswer
from authserver.http.routes import Route
from authserver.oauth.errors import TooManyRequestsError
from authserver.oauth.requests import FormRequest
from authserver.oauth.server import AuthorizationServer
from authserver.oauth.server import Response as OAuthResponse
from authserver.security.failure_limits import FailureLimiter
from authserver.security.pending import ResultPending
from authserver.security.secrets import SlowCheckNeeded

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


class OAuthEndpoint:
    """One OAuth endpoint; the route's handler is Authlib's name for it."""

    def __init__(
        self,
        app: Flask,
        oauth: AuthorizationServer,
        failure_limiter: FailureLimiter | None,
        issuer: str,
        route: Route,
    ) -> None:
        self._app = app
        self._oauth = oauth
        self._failure_limiter = failure_limiter
        self._name = route.handler
        self._uri = route.url(issuer)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        return self._respond(environ)(environ, start_response)

    def _respond(self, environ: WSGIEnvironment) -> WSGIApplication:
        started = time.perf_counter()
        try:
            status, body, headers = self._answer(environ)
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

    def _answer(self, environ: WSGIEnvironment) -> OAuthResponse:
        """The request read straight from the environ (werkzeug's parsers, not its request
        object: building one cost more than the rest of the parsing together)."""
        address = environ.get("REMOTE_ADDR") or "unknown"
        if self._failure_limiter is not None:
            retry_after = self._failure_limiter.address_retry_after(address)
            if retry_after is not None:
                return self._oauth.handle_error_response(None, TooManyRequestsError(retry_after))
        try:
            authorization = environ.get("HTTP_AUTHORIZATION")
            form_request = FormRequest(
                endpoint_uri=self._uri,
                form=parse_form(environ),
                authorization_scheme=_authorization_scheme(authorization),
                basic=_basic_credentials(authorization),
                remote_addr=address,
            )
        except OAuth2Error as error:
            return self._oauth.handle_error_response(None, error)
        return self._oauth.handle(self._name, form_request)


def _authorization_scheme(header: str | None) -> str | None:
    if header is None:
        return None
    return header.split(" ", 1)[0].lower()


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    auth = Authorization.from_header(header)
    if auth is None or auth.type != "basic" or auth.username is None or auth.password is None:
        return None
    return auth.username, auth.password
