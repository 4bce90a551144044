"""Client authentication at the OAuth endpoints: a secret (RFC 6749 §2.3.1) or a signed
assertion (``private_key_jwt``, RFC 7523 §2.2, see :mod:`client_assertion`).

Replaces Authlib's ``client_secret_basic``/``client_secret_post`` functions because they
compare plaintext secrets, decode Basic credentials with ``unquote`` only, and accept a
request that uses two methods at once, which §2.3 forbids.

The steps, in order: an id longer than any we issue fails at once (counted against the address
only, so it never reaches a cache or a per-id counter); the per-client lock is read, and while
it holds only server-generated secrets are checked (no Argon2id: its answer would be an oracle
and its CPU a weapon); a failure is counted, and answered 429 if the id was locked.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime
from urllib.parse import unquote_plus

from authlib.oauth2.rfc6749.errors import InvalidRequestError

from authserver.oauth.backend import Backend
from authserver.oauth.client_assertion import (
    JWT_BEARER,
    AssertionRejected,
    ClientAssertionVerifier,
)
from authserver.oauth.clients import (
    CLIENT_SECRET_BASIC,
    CLIENT_SECRET_POST,
    PRIVATE_KEY_JWT,
    OAuthClient,
)
from authserver.oauth.errors import (
    InvalidClientError,
    TemporarilyUnavailableError,
    TooManyRequestsError,
)
from authserver.oauth.federation import (
    WORKLOAD_IDENTITY,
    FederationRejected,
    WorkloadAssertionVerifier,
)
from authserver.oauth.requests import OAuthFormRequest
from authserver.oauth.trusts import TrustRule
from authserver.oauth.unverified import Unverified, read_unverified
from authserver.security.secrets import MAX_CLIENT_ID_LENGTH, VerifierBusyError

#: Seconds a client told "busy" should wait: about the time a few Argon2id checks take.
BUSY_RETRY_AFTER_SECONDS = 1
#: A workload's ``sub`` in a failure's log line, cut (it is the sender's text).
MAX_LOGGED_SUBJECT = 200
#: Trusts named in one failure's log line: an issuer such as GitHub may have one per repository.
MAX_LOGGED_TRUSTS = 10


def authenticate_client(
    request: OAuthFormRequest,
    backend: Backend,
    methods: Collection[str],
    assertion_audiences: Sequence[str] = (),
    clock: Callable[[], float] = time.time,
) -> OAuthClient:
    """The client the request authenticates, by the one method it uses, if ``methods`` has it.

    ``assertion_audiences``: what a client assertion's ``aud`` may name at this endpoint;
    ``clock``: wall-clock seconds a workload's token is judged by.
    """
    source = request.source
    form = request.payload.data
    if "client_assertion" in form or "client_assertion_type" in form:
        if source.authorization_scheme is not None or "client_secret" in form:
            raise InvalidRequestError(
                "The request uses more than one client authentication method "
                "(RFC 6749 section 2.3): send a client_assertion or a secret, not both."
            )
        _require_method(PRIVATE_KEY_JWT, methods)
        return _authenticate_assertion(request, backend, assertion_audiences, clock)
    if source.authorization_scheme is not None:
        _require_method(CLIENT_SECRET_BASIC, methods)
        return _authenticate_basic(request, backend)
    client_id, secret = form.get("client_id"), form.get("client_secret")
    if not client_id or not secret:
        raise InvalidClientError(
            "Client authentication is required: use HTTP Basic (client_secret_basic), "
            "client_id and client_secret in the body (client_secret_post), or a "
            "client_assertion (private_key_jwt).",
            challenge=True,
        )
    _require_method(CLIENT_SECRET_POST, methods)
    return _verified(request, backend, client_id, secret, CLIENT_SECRET_POST, challenge=False)


def _authenticate_assertion(
    request: OAuthFormRequest,
    backend: Backend,
    audiences: Sequence[str],
    clock: Callable[[], float],
) -> OAuthClient:
    """RFC 7521 §4.2: ``client_assertion_type`` says a JWT, ``client_assertion`` is it;
    ``client_id`` is optional and, if sent, must be the client the assertion authenticates.

    An assertion whose ``iss`` is not its ``sub`` but a trusted platform is a workload's
    token (:mod:`federation`); any other is the client's own (``private_key_jwt``).
    """
    form = request.payload.data
    assertion = form.get("client_assertion", "")
    token = read_unverified(assertion) if assertion else None
    own_key = ClientAssertionVerifier(backend, audiences, token)
    try:
        if form.get("client_assertion_type") != JWT_BEARER:
            raise AssertionRejected(f"client_assertion_type is not {JWT_BEARER}")
        if not assertion:
            raise AssertionRejected("client_assertion is missing or empty")
        if token is not None and token.issuer is not None and token.issuer != token.subject:
            trusts = backend.trusts_for(token.issuer)
            if trusts:
                verifier = WorkloadAssertionVerifier(backend, clock)
                return _authenticate_workload(request, backend, verifier, token, assertion, trusts)
        client = own_key.verify(request)
        if "client_id" in form and form["client_id"] != client.client_id:
            raise AssertionRejected("client_id differs from the assertion's sub")
    except AssertionRejected as rejected:
        subject = own_key.claimed_subject(assertion) if assertion else None
        _failed(request, backend, subject or form.get("client_id"), PRIVATE_KEY_JWT, rejected.check)
        raise InvalidClientError(
            "Client authentication failed: the client assertion was not accepted.",
            challenge=False,
        ) from None
    request.auth_method = PRIVATE_KEY_JWT
    return client


def _authenticate_workload(
    request: OAuthFormRequest,
    backend: Backend,
    verifier: WorkloadAssertionVerifier,
    token: Unverified,
    assertion: str,
    trusts: Sequence[TrustRule],
) -> OAuthClient:
    """A trusted platform's token: the client its best-matching trust names, ``jti`` spent
    last (unless the trust accepts the token again)."""
    form = request.payload.data
    try:
        identity = verifier.verify(token, assertion, trusts)
        client = identity.client
        if "client_id" in form and form["client_id"] != client.client_id:
            raise FederationRejected(
                "client_id differs from the trust's client", (), identity.trust
            )
        spent_until = datetime.fromtimestamp(identity.spendable_until, UTC)
        if not backend.accept_assertion(
            identity.trust.issuer, identity.jti, spent_until, client_id=client.client_id
        ):
            raise FederationRejected("jti: already used", (), identity.trust)
    except FederationRejected as rejected:
        chosen = rejected.chosen
        # The failure counts against the client the token tried to become; the log names
        # each trust looked at and why it failed, the issuer and the workload, never the token.
        _failed(
            request,
            backend,
            chosen.client_id if chosen else None,
            WORKLOAD_IDENTITY,
            rejected.check,
            issuer=token.issuer,
            subject=(token.subject or "")[:MAX_LOGGED_SUBJECT],
            trust_id=chosen.trust_id if chosen else None,
            considered={c.trust.trust_id: c.check for c in rejected.considered[:MAX_LOGGED_TRUSTS]},
        )
        raise InvalidClientError(
            "Client authentication failed: the client assertion was not accepted.",
            challenge=False,
        ) from None
    request.auth_method = WORKLOAD_IDENTITY
    return client


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
    raw = source.basic
    client_id, secret = (unquote_plus(part) for part in raw)
    if not client_id or not secret:
        raise InvalidClientError(
            "The Basic credentials need both a client id and a secret.", challenge=True
        )
    if "client_id" in form and form["client_id"] not in (client_id, raw[0]):
        raise InvalidRequestError("client_id in the body differs from the Basic credentials.")
    # RFC 6749 §2.3.1 has clients form-encode id and secret inside Basic; requests-oauthlib,
    # httpx, Authlib and curl -u send them as they are. A secret with "+", "%" or a space
    # differs between the two readings: when the decoded one fails, the raw one is tried too.
    unencoded = raw if raw != (client_id, secret) else None
    return _verified(
        request, backend, client_id, secret, CLIENT_SECRET_BASIC, challenge=True, also=unencoded
    )


def _verified(
    request: OAuthFormRequest,
    backend: Backend,
    client_id: str,
    secret: str,
    method: str,
    *,
    challenge: bool,
    also: tuple[str, str] | None = None,
) -> OAuthClient:
    """The client whose secret this is; ``also``: a second (id, secret) reading to try."""
    too_long = len(client_id) > MAX_CLIENT_ID_LENGTH
    for candidate_id, candidate_secret in [(client_id, secret), *([also] if also else [])]:
        if too_long or len(candidate_id) > MAX_CLIENT_ID_LENGTH:
            continue
        client = _check_secret(backend, candidate_id, candidate_secret)
        if client is not None:
            request.auth_method = method
            return client
    _failed(request, backend, client_id, method)
    raise InvalidClientError(
        f"Client authentication failed: a client id is at most {MAX_CLIENT_ID_LENGTH} characters."
        if too_long
        else "Client authentication failed: unknown client, wrong secret or disabled client.",
        challenge=challenge,
    )


def _failed(
    request: OAuthFormRequest,
    backend: Backend,
    client_id: str | None,
    method: str,
    check: str | None = None,
    **context: object,
) -> None:
    """Log and count a failed authentication; raise 429 if the id was already locked.

    The log names the check that failed when there is more than "wrong secret" to say, never
    a secret or an assertion.
    """
    too_long = client_id is not None and len(client_id) > MAX_CLIENT_ID_LENGTH
    details: dict[str, object] = {"method": method, **context}
    if check is not None:
        details["check"] = check
    if too_long:
        # The id itself could be 60 KB: the log gets its length, never the id.
        details["client_id_length"] = len(client_id or "")
    counted_id = None if too_long else client_id
    backend.record("client.authentication", outcome="failure", client_id=counted_id, **details)
    retry_after = backend.record_authentication_failure(counted_id, request.source.remote_addr)
    if retry_after is not None:
        raise TooManyRequestsError(retry_after)


def _check_secret(backend: Backend, client_id: str, secret: str) -> OAuthClient | None:
    """The client if ``secret`` is right; while the id is locked, only if it is a generated one.

    The lock is read once at most, and only for a client with an admin-chosen secret.
    """

    seen: list[bool] = []  # the lock, once read (cheaper than a functools.cache per request)

    def locked() -> bool:
        if not seen:
            seen.append(backend.client_retry_after(client_id) is not None)
        return seen[0]

    try:
        return backend.verify_credentials(client_id, secret, locked=locked)
    except VerifierBusyError:
        raise TemporarilyUnavailableError(
            "The server is busy checking other secrets; retry later.",
            retry_after=BUSY_RETRY_AFTER_SECONDS,
        ) from None
