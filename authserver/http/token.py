"""``POST /oauth2/token``: parse the HTTP request, hand it to the OAuth server, send the answer."""

from __future__ import annotations

from authlib.oauth2.rfc6749.errors import OAuth2Error
from flask import Blueprint, Response, request

from authserver.http.forms import parse_form
from authserver.http.responses import json_response
from authserver.http.runtime import Runtime
from authserver.oauth.requests import FormRequest

blueprint = Blueprint("token", __name__)

#: Endpoints that only accept POST; the error handlers answer other methods with 405.
OAUTH_PATHS = frozenset({"/oauth2/token"})


@blueprint.route("/oauth2/token", methods=["POST"], provide_automatic_options=False)
def token() -> Response:
    runtime = Runtime.current()
    try:
        form_request = FormRequest(
            endpoint_uri=runtime.settings.token_endpoint,
            form=parse_form(request),
            authorization_scheme=_authorization_scheme(),
            basic=_basic_credentials(),
        )
    except OAuth2Error as error:
        return json_response(*error())
    return json_response(*runtime.oauth.issue_token(form_request))


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
