"""Successful token issuance (RFC 6749 §4.4, RFC 9068, RFC 8707), driven in memory through the
Backend protocol on a fake clock: the response, the claims, scope and audience choices."""

from __future__ import annotations

from typing import Any

import jwt
import pytest

from authserver.oauth.clients import CLIENT_SECRET_POST, GRANT_TYPE, SECRET_METHODS
from authserver.oauth.server import TOKEN_ENDPOINT, AuthorizationServer
from authserver.security.keys import SigningKey
from tests.fast.conftest import API_A, API_B, verified_claims
from tests.support.clock import ManualClock
from tests.support.memory_backend import (
    DEFAULT_AUDIENCE,
    DEFAULT_TTL,
    EPOCH,
    ISSUER,
    Form,
    MemoryBackend,
    MemoryClient,
    header,
    post_as,
    token,
)

GRANT = {"grant_type": GRANT_TYPE}


def issued(
    server: AuthorizationServer, client: MemoryClient, method: str, form: Form | None = None
) -> dict[str, Any]:
    """The 200 token response body for ``client`` authenticating with ``method``."""
    status, body, _ = post_as(server, TOKEN_ENDPOINT, client, {**GRANT, **(form or {})}, method)
    assert status == 200, body
    return body


@pytest.mark.parametrize("method", SECRET_METHODS)
def test_token_response_is_an_uncacheable_bearer_token_with_lifetime_and_scope(
    server: AuthorizationServer, client: MemoryClient, method: str
) -> None:
    status, body, headers = post_as(server, TOKEN_ENDPOINT, client, GRANT, method)

    assert status == 200, body
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == DEFAULT_TTL
    assert body["scope"] == "read write"
    assert header(headers, "Content-Type") == "application/json"
    assert header(headers, "Cache-Control") == "no-store"
    assert header(headers, "Pragma") == "no-cache"


@pytest.mark.parametrize("method", SECRET_METHODS)
def test_token_is_an_rfc9068_at_jwt_naming_its_signing_key(
    server: AuthorizationServer, client: MemoryClient, signing_key: SigningKey, method: str
) -> None:
    access_token = issued(server, client, method)["access_token"]

    assert jwt.get_unverified_header(access_token) == {
        "typ": "at+jwt",
        "alg": "RS256",
        "kid": signing_key.kid,
    }


@pytest.mark.parametrize("method", SECRET_METHODS)
def test_token_claims_name_issuer_client_audience_scope_and_lifetime_on_the_server_clock(
    server: AuthorizationServer,
    client: MemoryClient,
    signing_key: SigningKey,
    clock: ManualClock,
    method: str,
) -> None:
    clock.now = EPOCH + 0.75  # iat is whole seconds, truncated
    body = issued(server, client, method)

    claims = verified_claims(body["access_token"], signing_key, DEFAULT_AUDIENCE)
    assert set(claims) == {"iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope"}
    assert claims["iss"] == ISSUER
    assert claims["sub"] == client.client_id
    assert claims["client_id"] == client.client_id
    assert claims["aud"] == DEFAULT_AUDIENCE
    assert claims["scope"] == body["scope"] == "read write"
    assert claims["iat"] == int(EPOCH)
    assert claims["exp"] == int(EPOCH) + DEFAULT_TTL


def test_token_is_refused_by_a_resource_server_holding_another_key(
    server: AuthorizationServer, client: MemoryClient, other_key: SigningKey
) -> None:
    """The verification above means something: the signature is bound to our key."""
    access_token = issued(server, client, CLIENT_SECRET_POST)["access_token"]

    with pytest.raises(jwt.InvalidSignatureError):
        verified_claims(access_token, other_key, DEFAULT_AUDIENCE)


def test_each_token_gets_a_unique_jti_even_within_one_second(
    server: AuthorizationServer, client: MemoryClient, signing_key: SigningKey
) -> None:
    tokens = [issued(server, client, CLIENT_SECRET_POST)["access_token"] for _ in range(5)]

    jtis = {verified_claims(t, signing_key, DEFAULT_AUDIENCE)["jti"] for t in tokens}
    assert len(jtis) == 5
    assert all(isinstance(jti, str) and len(jti) >= 16 for jti in jtis)


@pytest.mark.parametrize(
    ("token_ttl", "expected"),
    [(None, DEFAULT_TTL), (120, 120)],
    ids=["server-default", "client-override"],
)
def test_token_lifetime_is_the_clients_ttl_or_the_servers_default(
    server: AuthorizationServer,
    backend: MemoryBackend,
    signing_key: SigningKey,
    clock: ManualClock,
    token_ttl: int | None,
    expected: int,
) -> None:
    client = backend.register("cli_ttl", "ascs_ttl", token_ttl=token_ttl)
    clock.now = EPOCH + 3600

    body = issued(server, client, CLIENT_SECRET_POST)

    assert body["expires_in"] == expected
    claims = verified_claims(body["access_token"], signing_key, DEFAULT_AUDIENCE)
    assert claims["iat"] == int(EPOCH) + 3600
    assert claims["exp"] == claims["iat"] + expected


@pytest.mark.parametrize("method", SECRET_METHODS)
def test_basic_and_body_credentials_are_form_urldecoded_for_a_special_character_secret(
    server: AuthorizationServer, backend: MemoryBackend, signing_key: SigningKey, method: str
) -> None:
    """RFC 6749 §2.3.1: Basic credentials are form-urlencoded; the helper encodes them as a
    conformant client does, so "+" and "%" arrive as "%2B" and "%25" and must be decoded."""
    client = backend.register("cli_special", "p@ss word+%/:migrated-1", chosen_secret=True)

    body = issued(server, client, method)

    assert verified_claims(body["access_token"], signing_key, DEFAULT_AUDIENCE)["sub"] == (
        "cli_special"
    )


def test_basic_credentials_with_a_matching_client_id_in_the_body_are_accepted(
    server: AuthorizationServer, client: MemoryClient
) -> None:
    status, body, _ = token(
        server, {**GRANT, "client_id": client.client_id}, basic=(client.client_id, client.secret)
    )
    assert status == 200, body


# --- scope ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "granted"),
    [
        (None, "read write"),
        ("write", "write"),
        ("write read", "write read"),
        ("read  read write read", "read write"),
    ],
    ids=["omitted-grants-all-registered", "subset", "all-in-request-order", "duplicates-collapse"],
)
@pytest.mark.parametrize("method", SECRET_METHODS)
def test_scope_grants_the_requested_subset_or_all_registered_when_omitted(
    server: AuthorizationServer,
    client: MemoryClient,
    signing_key: SigningKey,
    method: str,
    requested: str | None,
    granted: str,
) -> None:
    body = issued(server, client, method, {} if requested is None else {"scope": requested})

    assert body["scope"] == granted
    assert verified_claims(body["access_token"], signing_key, DEFAULT_AUDIENCE)["scope"] == granted


# --- audience (RFC 8707) -------------------------------------------------------------------


@pytest.fixture
def two_audience_client(backend: MemoryBackend) -> MemoryClient:
    return backend.register("cli_aud", "ascs_aud", audiences=(API_A, API_B))


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        ({"resource": API_B}, API_B),
        ({"audience": API_A}, API_A),
        ({"resource": [API_A, API_B]}, [API_A, API_B]),
        ({"resource": [API_B, API_B]}, API_B),
        ({}, [API_A, API_B]),
    ],
    ids=["one-resource", "audience", "two-resources", "repeated-resource", "none-requested-all"],
)
@pytest.mark.parametrize("method", SECRET_METHODS)
def test_audience_is_what_the_request_names_or_every_registered_one_string_for_one(
    server: AuthorizationServer,
    two_audience_client: MemoryClient,
    signing_key: SigningKey,
    method: str,
    form: Form,
    expected: str | list[str],
) -> None:
    body = issued(server, two_audience_client, method, form)

    one_of_them = expected if isinstance(expected, str) else expected[-1]
    assert verified_claims(body["access_token"], signing_key, one_of_them)["aud"] == expected


def test_client_without_audiences_gets_the_default_audience(
    server: AuthorizationServer, client: MemoryClient, signing_key: SigningKey
) -> None:
    assert client.audiences == ()
    for form in ({}, {"resource": DEFAULT_AUDIENCE}, {"audience": DEFAULT_AUDIENCE}):
        body = issued(server, client, CLIENT_SECRET_POST, form)
        claims = verified_claims(body["access_token"], signing_key, DEFAULT_AUDIENCE)
        assert claims["aud"] == DEFAULT_AUDIENCE, form
