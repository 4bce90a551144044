"""Error answers of the token endpoint (RFC 6749 §5.2, RFC 8707 §2, the README's error table),
driven in memory: client authentication, grant type, scope, target, and an unloaded key."""

from __future__ import annotations

from typing import Any

import pytest

from authserver.oauth.clients import CLIENT_SECRET_BASIC, GRANT_TYPE, SECRET_METHODS
from authserver.oauth.errors import REALM
from authserver.oauth.server import TOKEN_ENDPOINT, AuthorizationServer, Response
from authserver.security.secrets import MAX_CLIENT_ID_LENGTH
from tests.fast.conftest import API_A, API_B
from tests.support.memory_backend import (
    DEFAULT_AUDIENCE,
    ISSUER,
    Form,
    MemoryBackend,
    MemoryClient,
    header,
    post_as,
    token,
)

GRANT = {"grant_type": GRANT_TYPE}
CHALLENGE = f'Basic realm="{REALM}"'


def oauth_error(response: Response, status: int, error: str) -> dict[str, Any]:
    """An RFC 6749 §5.2 error: this status and code, a description, never cached."""
    got_status, body, headers = response
    assert (got_status, body.get("error")) == (status, error), body
    assert isinstance(body.get("error_description"), str)
    assert body["error_description"]
    assert header(headers, "Cache-Control") == "no-store"
    return body


def impostor(client: MemoryClient, **changes: str) -> MemoryClient:
    """``client``'s registration with other credentials, to authenticate with."""
    return MemoryClient(
        changes.get("client_id", client.client_id), changes.get("secret", client.secret)
    )


# --- 401 invalid_client --------------------------------------------------------------------


@pytest.mark.parametrize(
    "wrong",
    [{"secret": "ascs_wrong"}, {"client_id": "cli_nobody"}],
    ids=["wrong-secret", "unknown-client"],
)
@pytest.mark.parametrize("method", SECRET_METHODS)
def test_failed_client_authentication_is_401_with_a_challenge_only_for_basic(
    server: AuthorizationServer, client: MemoryClient, method: str, wrong: dict[str, str]
) -> None:
    response = post_as(server, TOKEN_ENDPOINT, impostor(client, **wrong), GRANT, method)

    oauth_error(response, 401, "invalid_client")
    expected = CHALLENGE if method == CLIENT_SECRET_BASIC else None
    assert header(response[2], "WWW-Authenticate") == expected
    assert "access_token" not in response[1]


@pytest.mark.parametrize("method", SECRET_METHODS)
def test_disabled_client_is_401_invalid_client_with_its_right_secret(
    server: AuthorizationServer, client: MemoryClient, method: str
) -> None:
    assert post_as(server, TOKEN_ENDPOINT, client, GRANT, method)[0] == 200
    client.enabled = False

    response = post_as(server, TOKEN_ENDPOINT, client, GRANT, method)

    oauth_error(response, 401, "invalid_client")
    expected = CHALLENGE if method == CLIENT_SECRET_BASIC else None
    assert header(response[2], "WWW-Authenticate") == expected


@pytest.mark.parametrize(
    "form",
    [
        {},
        {"client_id": "cli_fast"},
        {"client_secret": "ascs_x"},
        {"client_id": "", "client_secret": ""},
    ],
    ids=["nothing", "id-without-secret", "secret-without-id", "empty-values"],
)
def test_a_request_without_complete_credentials_is_401_with_a_challenge(
    server: AuthorizationServer, client: MemoryClient, form: dict[str, str]
) -> None:
    """RFC 7235 §3.1: a 401 carries a challenge; with no usable credentials, Basic's."""
    response = token(server, {**GRANT, **form})

    oauth_error(response, 401, "invalid_client")
    assert header(response[2], "WWW-Authenticate") == CHALLENGE


@pytest.mark.parametrize("scheme", ["basic", "bearer", "digest"])
def test_an_authorization_header_that_is_not_valid_basic_is_401_even_with_body_credentials(
    server: AuthorizationServer, client: MemoryClient, scheme: str
) -> None:
    """The HTTP layer sets only the scheme when the header is not decodable Basic; the body's
    valid credentials must not be used in its stead."""
    form = {**GRANT, "client_id": client.client_id, "client_secret": client.secret}

    response = token(server, form, authorization_scheme=scheme)

    oauth_error(response, 401, "invalid_client")
    assert header(response[2], "WWW-Authenticate") == CHALLENGE


@pytest.mark.parametrize(
    "basic", [("", "ascs_x"), ("cli_fast", "")], ids=["empty-id", "empty-secret"]
)
def test_basic_credentials_missing_a_part_are_401_with_a_challenge(
    server: AuthorizationServer, client: MemoryClient, basic: tuple[str, str]
) -> None:
    response = token(server, GRANT, basic=basic)

    oauth_error(response, 401, "invalid_client")
    assert header(response[2], "WWW-Authenticate") == CHALLENGE


@pytest.mark.parametrize("method", SECRET_METHODS)
def test_a_client_id_longer_than_any_issued_is_401_counted_against_the_address_only(
    server: AuthorizationServer, backend: MemoryBackend, client: MemoryClient, method: str
) -> None:
    long_id = "c" * (MAX_CLIENT_ID_LENGTH + 1)

    response = post_as(server, TOKEN_ENDPOINT, impostor(client, client_id=long_id), GRANT, method)

    oauth_error(response, 401, "invalid_client")
    assert backend.client_failures == {}
    assert sum(backend.address_failures.values()) == 1
    (event,) = backend.events
    assert event.client_id is None
    assert event.details["client_id_length"] == MAX_CLIENT_ID_LENGTH + 1
    assert long_id not in repr(backend.events)


def test_a_client_id_of_exactly_the_maximum_length_is_checked(
    server: AuthorizationServer, backend: MemoryBackend
) -> None:
    longest = backend.register("c" * MAX_CLIENT_ID_LENGTH, "ascs_longest")

    assert post_as(server, TOKEN_ENDPOINT, longest, GRANT)[0] == 200


# --- 400 invalid_request -------------------------------------------------------------------


def test_secret_in_both_the_basic_header_and_the_body_is_invalid_request(
    server: AuthorizationServer, client: MemoryClient
) -> None:
    """RFC 6749 §2.3: a client MUST NOT use more than one authentication method per request,
    even when both carry the right secret."""
    form = {**GRANT, "client_secret": client.secret}

    response = token(server, form, basic=(client.client_id, client.secret))

    oauth_error(response, 400, "invalid_request")


def test_basic_credentials_with_a_different_client_id_in_the_body_are_invalid_request(
    server: AuthorizationServer, client: MemoryClient, other_client: MemoryClient
) -> None:
    form = {**GRANT, "client_id": other_client.client_id}

    response = token(server, form, basic=(client.client_id, client.secret))

    oauth_error(response, 400, "invalid_request")


@pytest.mark.parametrize("method", SECRET_METHODS)
def test_a_request_without_grant_type_is_invalid_request(
    server: AuthorizationServer, client: MemoryClient, method: str
) -> None:
    body = oauth_error(
        post_as(server, TOKEN_ENDPOINT, client, {"scope": "read"}, method), 400, "invalid_request"
    )
    assert "grant_type" in body["error_description"]


@pytest.mark.parametrize(
    "grant_type",
    ["authorization_code", "password", "refresh_token", "CLIENT_CREDENTIALS", 'bad"\\\u2603'],
)
def test_any_grant_type_but_client_credentials_is_unsupported_and_not_echoed(
    server: AuthorizationServer, client: MemoryClient, grant_type: str
) -> None:
    response = post_as(server, TOKEN_ENDPOINT, client, {"grant_type": grant_type})

    body = oauth_error(response, 400, "unsupported_grant_type")
    assert grant_type not in body["error_description"]
    # RFC 6749 §5.2: error_description is limited to %x20-21 / %x23-5B / %x5D-7E.
    assert all(0x20 <= ord(c) <= 0x7E and c not in '"\\' for c in body["error_description"])


# --- invalid_scope -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scope",
    ["admin", "read admin", "READ", "read:all"],
    ids=["unregistered", "one-of-two-unregistered", "other-case", "suffixed"],
)
@pytest.mark.parametrize("method", SECRET_METHODS)
def test_a_scope_not_registered_for_the_client_is_invalid_scope(
    server: AuthorizationServer, client: MemoryClient, method: str, scope: str
) -> None:
    response = post_as(server, TOKEN_ENDPOINT, client, {**GRANT, "scope": scope}, method)

    oauth_error(response, 400, "invalid_scope")


@pytest.mark.parametrize("scope", ["", "   "], ids=["empty", "blank"])
def test_a_scope_value_holding_no_scope_token_is_invalid_scope(
    server: AuthorizationServer, client: MemoryClient, scope: str
) -> None:
    """RFC 6749 §3.3: a scope is one or more tokens. Over HTTP an empty ``scope=`` never gets
    here (the form parser drops empty values: "counts as omitted", README); a blank one does."""
    response = post_as(server, TOKEN_ENDPOINT, client, {**GRANT, "scope": scope})

    oauth_error(response, 400, "invalid_scope")


# --- invalid_target / resource and audience --------------------------------------------------


@pytest.mark.parametrize(
    "form",
    [
        {"resource": "https://other.example.test"},
        {"resource": [API_A, "https://other.example.test"]},
        {"resource": API_A + "/"},
        {"resource": API_A + "#fragment"},
        {"resource": "not a uri"},
        {"audience": "https://other.example.test"},
        {"audience": DEFAULT_AUDIENCE},
        {"audience": ISSUER},
    ],
    ids=[
        "resource-other",
        "one-of-two-resources",
        "trailing-slash",
        "fragment",
        "not-a-uri",
        "audience-other",
        "default-audience-not-registered",
        "issuer",
    ],
)
@pytest.mark.parametrize("method", SECRET_METHODS)
def test_a_resource_or_audience_not_registered_for_the_client_is_invalid_target(
    server: AuthorizationServer, backend: MemoryBackend, method: str, form: Form
) -> None:
    client = backend.register("cli_aud", "ascs_aud", audiences=(API_A, API_B))

    response = post_as(server, TOKEN_ENDPOINT, client, {**GRANT, **form}, method)

    oauth_error(response, 400, "invalid_target")


@pytest.mark.parametrize("audience", [API_A + "#part", "billing"], ids=["fragment", "no-scheme"])
def test_a_resource_that_is_no_absolute_uri_without_fragment_is_invalid_target_even_if_registered(
    server: AuthorizationServer, backend: MemoryBackend, audience: str
) -> None:
    """RFC 8707 §2: a resource is an absolute URI and MUST NOT include a fragment; a
    registration that slipped one through does not make it acceptable."""
    client = backend.register("cli_odd", "ascs_odd", audiences=(API_A, audience))

    response = post_as(server, TOKEN_ENDPOINT, client, {**GRANT, "resource": audience})

    oauth_error(response, 400, "invalid_target")
    assert post_as(server, TOKEN_ENDPOINT, client, {**GRANT, "resource": API_A})[0] == 200


def test_a_client_without_audiences_may_name_only_the_default_audience(
    server: AuthorizationServer, client: MemoryClient
) -> None:
    response = post_as(server, TOKEN_ENDPOINT, client, {**GRANT, "resource": API_A})

    oauth_error(response, 400, "invalid_target")


@pytest.mark.parametrize("method", SECRET_METHODS)
def test_resource_together_with_audience_is_invalid_request_even_when_both_are_allowed(
    server: AuthorizationServer, backend: MemoryBackend, method: str
) -> None:
    client = backend.register("cli_aud", "ascs_aud", audiences=(API_A, API_B))
    form = {**GRANT, "resource": API_A, "audience": API_B}

    oauth_error(post_as(server, TOKEN_ENDPOINT, client, form, method), 400, "invalid_request")


# --- 503 temporarily_unavailable -----------------------------------------------------------


def test_without_a_signing_key_the_token_endpoint_is_temporarily_unavailable(
    server: AuthorizationServer, backend: MemoryBackend, client: MemoryClient
) -> None:
    backend.signing_key = None

    response = post_as(server, TOKEN_ENDPOINT, client, GRANT)

    oauth_error(response, 503, "temporarily_unavailable")
    assert header(response[2], "Retry-After") == "1"
    assert not [e for e in backend.events if e.event == "token.issued"]


def test_a_busy_secret_verifier_is_503_with_retry_after_and_not_counted_as_a_failure(
    server: AuthorizationServer, backend: MemoryBackend, client: MemoryClient
) -> None:
    backend.busy = True

    response = post_as(server, TOKEN_ENDPOINT, client, GRANT)

    oauth_error(response, 503, "temporarily_unavailable")
    assert header(response[2], "Retry-After") == "1"
    assert backend.client_failures == {}
    assert not backend.address_failures
