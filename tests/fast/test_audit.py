"""The audit events the OAuth layer writes through ``Backend.record`` (README: "Audit trail"):
one per issued token, failed authentication, rejected request and revocation, and never a
secret or a token in any of them."""

from __future__ import annotations

import pytest

from authserver.oauth.clients import CLIENT_SECRET_BASIC, GRANT_TYPE, SECRET_METHODS
from authserver.oauth.server import (
    INTROSPECTION_ENDPOINT,
    REVOCATION_ENDPOINT,
    TOKEN_ENDPOINT,
    AuthorizationServer,
)
from tests.support.memory_backend import (
    DEFAULT_TTL,
    AuditEvent,
    MemoryBackend,
    MemoryClient,
    issue,
    post_as,
)

GRANT = {"grant_type": GRANT_TYPE}


def test_an_issued_token_is_one_success_event_with_its_scope_and_lifetime(
    server: AuthorizationServer, backend: MemoryBackend, client: MemoryClient
) -> None:
    issue(server, client, scope="read")

    assert backend.events == [
        AuditEvent(
            "token.issued",
            "success",
            client.client_id,
            {"scope": "read", "expires_in": DEFAULT_TTL},
        )
    ]


@pytest.mark.parametrize("method", SECRET_METHODS)
def test_a_failed_authentication_is_one_failure_event_naming_the_id_and_the_method(
    server: AuthorizationServer, backend: MemoryBackend, client: MemoryClient, method: str
) -> None:
    post_as(server, TOKEN_ENDPOINT, MemoryClient(client.client_id, "ascs_wrong"), GRANT, method)

    assert backend.events == [
        AuditEvent("client.authentication", "failure", client.client_id, {"method": method})
    ]


@pytest.mark.parametrize(
    ("endpoint", "form", "error"),
    [
        pytest.param(
            TOKEN_ENDPOINT,
            {**GRANT, "scope": "admin"},
            "invalid_scope",
            id="token-invalid-scope",
        ),
        pytest.param(
            TOKEN_ENDPOINT,
            {**GRANT, "resource": "https://other.example.test"},
            "invalid_target",
            id="token-invalid-target",
        ),
        pytest.param(
            TOKEN_ENDPOINT,
            {**GRANT, "resource": "https://a.example.test", "audience": "https://a.example.test"},
            "invalid_request",
            id="token-resource-and-audience",
        ),
        pytest.param(INTROSPECTION_ENDPOINT, {}, "invalid_request", id="introspection-no-token"),
        pytest.param(REVOCATION_ENDPOINT, {}, "invalid_request", id="revocation-no-token"),
    ],
)
def test_a_rejected_request_of_an_authenticated_client_names_the_client_and_the_error(
    server: AuthorizationServer,
    backend: MemoryBackend,
    client: MemoryClient,
    endpoint: str,
    form: dict[str, str],
    error: str,
) -> None:
    assert post_as(server, endpoint, client, form)[1]["error"] == error

    assert backend.events == [
        AuditEvent("request.rejected", "failure", client.client_id, {"error": error})
    ]


def test_a_request_rejected_before_authentication_names_no_client(
    server: AuthorizationServer, backend: MemoryBackend, client: MemoryClient
) -> None:
    post_as(server, TOKEN_ENDPOINT, client, {"grant_type": "password"})

    assert backend.events == [
        AuditEvent("request.rejected", "failure", None, {"error": "unsupported_grant_type"})
    ]


def test_a_revocation_records_the_jti_and_whether_it_was_new(
    server: AuthorizationServer, backend: MemoryBackend, client: MemoryClient
) -> None:
    access_token = issue(server, client)
    backend.events.clear()

    for _ in range(2):
        post_as(server, REVOCATION_ENDPOINT, client, {"token": access_token})

    (jti,) = backend.revocations
    assert backend.events == [
        AuditEvent("token.revocation", "revoked", client.client_id, {"jti": jti}),
        AuditEvent("token.revocation", "already_revoked", client.client_id, {"jti": jti}),
    ]


@pytest.mark.parametrize("method", SECRET_METHODS)
def test_no_event_of_any_kind_holds_a_secret_or_a_token(
    server: AuthorizationServer,
    backend: MemoryBackend,
    client: MemoryClient,
    other_client: MemoryClient,
    method: str,
) -> None:
    """Every path that records, with right and wrong secrets by either method; the events'
    full text is searched, so a secret in any field or nested value is caught."""
    wrong_secret = "ascs_" + "w" * 43
    impostor = MemoryClient(client.client_id, wrong_secret)
    access_token = issue(server, client)
    other_token = issue(server, other_client)
    for caller in (client, impostor, other_client):
        post_as(server, TOKEN_ENDPOINT, caller, GRANT, method)
        post_as(server, TOKEN_ENDPOINT, caller, {**GRANT, "scope": "admin"}, method)
        post_as(server, INTROSPECTION_ENDPOINT, caller, {"token": access_token}, method)
        post_as(server, REVOCATION_ENDPOINT, caller, {"token": other_token}, method)
        post_as(server, REVOCATION_ENDPOINT, caller, {"token": access_token}, method)
    if method == CLIENT_SECRET_BASIC:  # both methods at once: rejected before authentication
        post_as(server, TOKEN_ENDPOINT, client, {**GRANT, "client_secret": client.secret}, method)

    recorded = repr(backend.events)
    assert {e.event for e in backend.events} == {
        "token.issued",
        "client.authentication",
        "request.rejected",
        "token.revocation",
    }
    for value in (client.secret, wrong_secret, other_client.secret, access_token, other_token):
        assert value not in recorded
    # Nor any recognisable piece of a token (its signature part is the most unique).
    assert access_token.rsplit(".", 1)[1] not in recorded
