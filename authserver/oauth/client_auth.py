"""Client authentication at the token endpoint (RFC 6749 §2.3.1).

Replaces Authlib's ``client_secret_basic``/``client_secret_post`` functions because they
compare plaintext secrets, decode Basic credentials with ``unquote`` instead of form decoding,
and accept a request that uses both methods at once, which §2.3 forbids.

The steps, in order: an id longer than any we issue fails at once (counted against the address
only, so it never reaches a cache or a per-id counter); the per-client lock is read, and while
it holds only server-generated secrets are checked (no Argon2id: its answer would be an oracle
and its CPU a weapon); a failure is counted, and answered 429 if the id was locked.
"""

from __future__ import annotations

import functools
from collections.abc import Collection
from urllib.parse import unquote_plus

from authlib.oauth2.rfc6749.errors import InvalidRequestError

from authserver.oauth.backend import Backend
from authserver.oauth.clients import CLIENT_SECRET_BASIC, CLIENT_SECRET_POST, OAuthClient
from authserver.oauth.errors import (
    InvalidClientError,
    TemporarilyUnavailableError,
    TooManyRequestsError,
)
from authserver.oauth.requests import OAuthFormRequest
from authserver.security.secrets import MAX_CLIENT_ID_LENGTH, VerifierBusyError

#: Seconds a client told "busy" should wait: about the time a few Argon2id checks take.
BUSY_RETRY_AFTER_SECONDS = 1


def authenticate_client(
    request: OAuthFormRequest, backend: Backend, methods: Collection[str]
) -> OAuthClient:
    """The client the request authenticates, by the one method it uses, if ``methods`` has it."""
    source = request.source
    form = request.payload.data
    if source.authorization_scheme is not None:
        _require_method(CLIENT_SECRET_BASIC, methods)
        return _authenticate_basic(request, backend)
    client_id, secret = form.get("client_id"), form.get("client_secret")
    if not client_id or not secret:
        raise InvalidClientError(
            "Client authentication is required: use HTTP Basic (client_secret_basic) "
            "or client_id and client_secret in the body (client_secret_post).",
            challenge=True,
        )
    _require_method(CLIENT_SECRET_POST, methods)
    return _verified(request, backend, client_id, secret, CLIENT_SECRET_POST, challenge=False)


def _require_method(method: str, methods: Collection[str]) -> None:
    if method not in methods:
        raise InvalidClientError(
            f"This endpoint does not accept {method} client authentication.",
            challenge=method == CLIENT_SECRET_BASIC,
        )


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
    return _verified(request, backend, client_id, secret, CLIENT_SECRET_BASIC, challenge=True)


def _verified(
    request: OAuthFormRequest,
    backend: Backend,
    client_id: str,
    secret: str,
    method: str,
    *,
    challenge: bool,
) -> OAuthClient:
    too_long = len(client_id) > MAX_CLIENT_ID_LENGTH
    if not too_long:
        client = _check_secret(backend, client_id, secret)
        if client is not None:
            request.auth_method = method
            return client
    if too_long:
        # The id itself could be 60 KB: the log gets its length, never the id.
        backend.record(
            "client.authentication",
            outcome="failure",
            client_id=None,
            method=method,
            client_id_length=len(client_id),
        )
    else:
        backend.record(
            "client.authentication", outcome="failure", client_id=client_id, method=method
        )
    retry_after = backend.record_authentication_failure(
        None if too_long else client_id, request.source.remote_addr
    )
    if retry_after is not None:
        raise TooManyRequestsError(retry_after)
    raise InvalidClientError(
        f"Client authentication failed: a client id is at most {MAX_CLIENT_ID_LENGTH} characters."
        if too_long
        else "Client authentication failed: unknown client, wrong secret or disabled client.",
        challenge=challenge,
    )


def _check_secret(backend: Backend, client_id: str, secret: str) -> OAuthClient | None:
    """The client if ``secret`` is right; while the id is locked, only if it is a generated one.

    The lock is read once at most, and only for a client with an admin-chosen secret.
    """

    @functools.cache
    def locked() -> bool:
        return backend.client_retry_after(client_id) is not None

    try:
        return backend.verify_credentials(client_id, secret, locked=locked)
    except VerifierBusyError:
        raise TemporarilyUnavailableError(
            "The server is busy checking other secrets; retry later.",
            retry_after=BUSY_RETRY_AFTER_SECONDS,
        ) from None
