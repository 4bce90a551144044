"""Successful token issuance at ``POST /oauth2/token`` over real HTTP (contract: "HTTP",
"Token response", "Access token"), with both client authentication methods."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

import jwt
import pytest
import requests

from tests.conftest import ISSUER, LiveServer, RegisteredClient

AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
DEFAULT_TTL = 1800


def post_token(
    http: requests.Session,
    url: str,
    client: RegisteredClient,
    method: str,
    data: list[tuple[str, str]] | None = None,
) -> requests.Response:
    """POST a client_credentials request authenticating with ``method``."""
    form: list[tuple[str, str]] = [("grant_type", "client_credentials"), *(data or [])]
    if method == "client_secret_basic":
        return http.post(url, data=form, auth=(client.client_id, client.client_secret), timeout=30)
    assert method == "client_secret_post"
    form += [("client_id", client.client_id), ("client_secret", client.client_secret)]
    return http.post(url, data=form, timeout=30)


def claims_of(live_server: LiveServer, access_token: str, audience: str | list[str]) -> Any:
    """Verify the signature against the served JWKS and return the claims."""
    signing_key = jwt.PyJWKClient(live_server.jwks_url).get_signing_key_from_jwt(access_token)
    return jwt.decode(
        access_token,
        signing_key.key,
        algorithms=["RS256"],
        audience=audience,
        issuer=ISSUER,
        options={"require": ["iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope"]},
    )


def issue(
    http: requests.Session,
    live_server: LiveServer,
    client: RegisteredClient,
    method: str = "client_secret_basic",
    data: list[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    response = post_token(http, live_server.token_url, client, method, data)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@dataclass(frozen=True)
class TokenEndpoint:
    """The live token endpoint, used with one client authentication method."""

    http: requests.Session
    live_server: LiveServer
    method: str

    def issue(
        self, client: RegisteredClient, data: list[tuple[str, str]] | None = None
    ) -> dict[str, Any]:
        return issue(self.http, self.live_server, client, self.method, data)

    def claims(self, access_token: str, audience: str | list[str]) -> Any:
        return claims_of(self.live_server, access_token, audience)


@pytest.fixture
def endpoint(live_server: LiveServer, http: requests.Session, method: str) -> TokenEndpoint:
    """For tests parametrized over ``method`` (the client authentication method)."""
    return TokenEndpoint(http, live_server, method)


@pytest.mark.parametrize("method", AUTH_METHODS)
def test_token_response_has_bearer_fields_and_no_store_headers(
    live_server: LiveServer,
    http: requests.Session,
    create_client: Callable[..., RegisteredClient],
    method: str,
) -> None:
    client = create_client(scope="api")

    response = post_token(http, live_server.token_url, client, method, [("scope", "api")])

    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"
    assert "Set-Cookie" not in response.headers
    assert not http.cookies
    body = response.json()
    assert set(body) >= {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == DEFAULT_TTL
    assert body["scope"] == "api"
    assert isinstance(body["access_token"], str)
    assert body["access_token"].count(".") == 2


@pytest.mark.parametrize("method", AUTH_METHODS)
def test_token_is_rs256_at_jwt_signed_with_a_key_in_the_served_jwks(
    live_server: LiveServer,
    http: requests.Session,
    create_client: Callable[..., RegisteredClient],
    method: str,
) -> None:
    client = create_client()
    token = issue(http, live_server, client, method)["access_token"]

    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    assert header["typ"] == "at+jwt"
    jwks = http.get(live_server.jwks_url, timeout=30).json()
    assert header["kid"] in {key["kid"] for key in jwks["keys"]}
    # The signature verifies with the published key (raises otherwise).
    claims_of(live_server, token, ISSUER)


@pytest.mark.parametrize("method", AUTH_METHODS)
def test_token_claims_name_issuer_client_audience_lifetime_and_scope(
    endpoint: TokenEndpoint,
    create_client: Callable[..., RegisteredClient],
) -> None:
    client = create_client(scope="api", audiences=["https://api.example.test"])
    body = endpoint.issue(client)

    claims = endpoint.claims(body["access_token"], "https://api.example.test")
    assert claims["iss"] == ISSUER
    assert claims["sub"] == client.client_id
    assert claims["client_id"] == client.client_id
    assert claims["aud"] == "https://api.example.test"
    assert claims["exp"] - claims["iat"] == DEFAULT_TTL
    assert claims["scope"] == "api"
    assert isinstance(claims["jti"], str)
    assert claims["jti"]


@pytest.mark.parametrize("method", AUTH_METHODS)
def test_each_token_gets_a_unique_jti(
    endpoint: TokenEndpoint,
    create_client: Callable[..., RegisteredClient],
) -> None:
    client = create_client()
    first = endpoint.issue(client)["access_token"]
    second = endpoint.issue(client)["access_token"]

    assert first != second
    assert endpoint.claims(first, ISSUER)["jti"] != endpoint.claims(second, ISSUER)["jti"]


# --- scope -------------------------------------------------------------------------------


@pytest.mark.parametrize("method", AUTH_METHODS)
def test_token_without_scope_grants_all_registered_scopes(
    endpoint: TokenEndpoint,
    create_client: Callable[..., RegisteredClient],
) -> None:
    client = create_client(scope="read write admin")
    body = endpoint.issue(client)

    assert body["scope"].split() == ["read", "write", "admin"]
    assert endpoint.claims(body["access_token"], ISSUER)["scope"] == body["scope"]


@pytest.mark.parametrize(
    ("registered", "requested"),
    [
        ("read write", ""),
        ("read write admin", "write read"),
        ("read write", "read  read write read"),
    ],
    ids=["empty-as-omitted", "subset", "duplicated-tokens-collapsed"],
)
@pytest.mark.parametrize("method", AUTH_METHODS)
def test_token_scope_parameter_grants_each_requested_registered_scope_once(
    endpoint: TokenEndpoint,
    create_client: Callable[..., RegisteredClient],
    registered: str,
    requested: str,
) -> None:
    """An empty ``scope`` is treated as omitted (all of "read write"); a subset grants only
    that subset; duplicated scope tokens collapse to one each."""
    client = create_client(scope=registered)
    body = endpoint.issue(client, [("scope", requested)])

    assert sorted(body["scope"].split()) == ["read", "write"]
    claims = endpoint.claims(body["access_token"], ISSUER)
    assert sorted(claims["scope"].split()) == ["read", "write"]


# --- audience ----------------------------------------------------------------------------

API_A = "https://a.example.test/api"
API_B = "https://b.example.test"


@pytest.mark.parametrize(
    ("audiences", "data", "expected"),
    [
        ([API_A, API_B], [("resource", API_B)], API_B),
        ([API_A, API_B], [("audience", API_A)], API_A),
        ([API_A], [], API_A),
    ],
    ids=["one-resource", "audience-parameter", "single-audience-client-without-parameter"],
)
@pytest.mark.parametrize("method", AUTH_METHODS)
def test_token_for_a_single_audience_has_it_as_a_string(
    endpoint: TokenEndpoint,
    create_client: Callable[..., RegisteredClient],
    audiences: list[str],
    data: list[tuple[str, str]],
    expected: str,
) -> None:
    client = create_client(audiences=audiences)
    body = endpoint.issue(client, data)

    assert endpoint.claims(body["access_token"], expected)["aud"] == expected


@pytest.mark.parametrize(
    "data",
    [[("resource", API_A), ("resource", API_B)], []],
    ids=["repeated-resources", "without-audience-all-client-audiences"],
)
@pytest.mark.parametrize("method", AUTH_METHODS)
def test_token_for_several_audiences_has_them_all_as_an_array(
    endpoint: TokenEndpoint,
    create_client: Callable[..., RegisteredClient],
    data: list[tuple[str, str]],
) -> None:
    client = create_client(audiences=[API_A, API_B])
    body = endpoint.issue(client, data)

    aud = endpoint.claims(body["access_token"], API_B)["aud"]
    assert isinstance(aud, list)
    assert sorted(aud) == sorted([API_A, API_B])


@pytest.mark.parametrize("settings_overrides", [{"default_audience": "https://default.test"}])
@pytest.mark.parametrize("method", AUTH_METHODS)
def test_token_for_client_without_audiences_uses_the_default_audience(
    endpoint: TokenEndpoint,
    create_client: Callable[..., RegisteredClient],
) -> None:
    client = create_client(audiences=[])
    body = endpoint.issue(client)

    claims = endpoint.claims(body["access_token"], "https://default.test")
    assert claims["aud"] == "https://default.test"
    assert claims["iss"] == ISSUER


# --- lifetime ----------------------------------------------------------------------------


@pytest.mark.parametrize("settings_overrides", [{"access_token_ttl": 600}])
@pytest.mark.parametrize(
    ("client_params", "expected_ttl"),
    [({}, 600), ({"token_ttl": 120}, 120)],
    ids=["configured-default-ttl", "per-client-ttl-overrides-default"],
)
@pytest.mark.parametrize("method", AUTH_METHODS)
def test_token_lifetime_follows_the_client_ttl_or_the_configured_default(
    endpoint: TokenEndpoint,
    create_client: Callable[..., RegisteredClient],
    client_params: dict[str, Any],
    expected_ttl: int,
) -> None:
    client = create_client(**client_params)
    body = endpoint.issue(client)

    assert body["expires_in"] == expected_ttl
    claims = endpoint.claims(body["access_token"], ISSUER)
    assert claims["exp"] - claims["iat"] == expected_ttl


# --- client authentication details -------------------------------------------------------

SPECIAL_SECRET = "p@ss word+%/:migrated-1"


def test_basic_credentials_are_form_urldecoded_for_special_character_secret(
    live_server: LiveServer,
    http: requests.Session,
    create_client: Callable[..., RegisteredClient],
) -> None:
    client = create_client(chosen_secret=SPECIAL_SECRET)
    userpass = f"{quote_plus(client.client_id)}:{quote_plus(SPECIAL_SECRET)}"
    header = "Basic " + base64.b64encode(userpass.encode()).decode()

    response = http.post(
        live_server.token_url,
        data={"grant_type": "client_credentials"},
        headers={"Authorization": header},
        timeout=30,
    )

    assert response.status_code == 200, response.text
    claims = claims_of(live_server, response.json()["access_token"], ISSUER)
    assert claims["client_id"] == client.client_id


def test_client_secret_post_works_for_special_character_secret(
    live_server: LiveServer,
    http: requests.Session,
    create_client: Callable[..., RegisteredClient],
) -> None:
    client = create_client(chosen_secret=SPECIAL_SECRET)

    body = issue(http, live_server, client, "client_secret_post")

    assert claims_of(live_server, body["access_token"], ISSUER)["sub"] == client.client_id


def test_basic_auth_accepts_matching_client_id_in_body(
    live_server: LiveServer,
    http: requests.Session,
    create_client: Callable[..., RegisteredClient],
) -> None:
    client = create_client()

    response = http.post(
        live_server.token_url,
        data={"grant_type": "client_credentials", "client_id": client.client_id},
        auth=(client.client_id, client.client_secret),
        timeout=30,
    )

    assert response.status_code == 200, response.text
    claims = claims_of(live_server, response.json()["access_token"], ISSUER)
    assert claims["client_id"] == client.client_id
