"""Client authentication at the token endpoint (RFC 6749 §2.3.1).

Replaces Authlib's ``client_secret_basic``/``client_secret_post`` functions because they
compare plaintext secrets, decode Basic credentials with ``unquote`` instead of form decoding,
and accept a request that uses both methods at once, which §2.3 forbids.
"""

from __future__ import annotations

from urllib.parse import unquote_plus

from authlib.oauth2.rfc6749.errors import InvalidRequestError

from authserver.oauth.backend import Backend
from authserver.oauth.clients import OAuthClient
from authserver.oauth.errors import InvalidClientError, TooManyRequestsError
from authserver.oauth.requests import OAuthFormRequest


def authenticate_client(request: OAuthFormRequest, backend: Backend) -> OAuthClient:
    source = request.source
    form = request.payload.data
    if source.authorization_scheme is not None:
        return _authenticate_basic(request, backend)
    client_id, secret = form.get("client_id"), form.get("client_secret")
    if not client_id or not secret:
        raise InvalidClientError(
            "Client authentication is required: use HTTP Basic (client_secret_basic) "
            "or client_id and client_secret in the body (client_secret_post).",
            challenge=True,
        )
    return _verified(request, backend, client_id, secret, "client_secret_post", challenge=False)


def _authenticate_basic(request: OAuthFormRequest, backend: Backend) -> OAuthClient:
    source = request.source
    form = request.payload.data
    if source.basic is None:
        raise InvalidClientError(
            "The Authorization header is not valid HTTP Basic credentials.", challenge=True
        )
    if "client_secret" in form:
        raise InvalidRequestError(
            "The request uses more than one client authentication method "
            "(RFC 6749 section 2.3): send the secret in the Basic header only."
        )
    client_id, secret = (unquote_plus(part) for part in source.basic)
    if not client_id or not secret:
        raise InvalidClientError(
            "The Basic credentials need both a client id and a secret.", challenge=True
        )
    if "client_id" in form and form["client_id"] != client_id:
        raise InvalidRequestError("client_id in the body differs from the Basic credentials.")
    return _verified(request, backend, client_id, secret, "client_secret_basic", challenge=True)


def _verified(
    request: OAuthFormRequest,
    backend: Backend,
    client_id: str,
    secret: str,
    method: str,
    *,
    challenge: bool,
) -> OAuthClient:
    client = backend.verify_credentials(client_id, secret)
    if client is None:
        backend.record(
            "client.authentication", outcome="failure", client_id=client_id, method=method
        )
        retry_after = backend.record_authentication_failure(client_id, request.source.remote_addr)
        if retry_after is not None:
            raise TooManyRequestsError(retry_after)
        raise InvalidClientError(
            "Client authentication failed: unknown client, wrong secret or disabled client.",
            challenge=challenge,
        )
    request.auth_method = method
    return client
