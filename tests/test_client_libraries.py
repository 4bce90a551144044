"""The client_credentials flow through independent client libraries against the live server,
each token then verified offline as a resource server would: PyJWT against the served JWKS."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session as AuthlibOAuth2Session
from oauthlib.oauth2 import BackendApplicationClient
from requests_oauthlib import OAuth2Session as RequestsOAuth2Session

from tests.conftest import ISSUER, LiveServer, RegisteredClient
from tests.support.tokens import decode_with_jwks, verify_access_token

AUDIENCE = "https://api.example.test"


@pytest.fixture
def client(create_client: Callable[..., RegisteredClient]) -> RegisteredClient:
    return create_client(scope="api", audiences=[AUDIENCE])


def verify_as_resource_server(
    live_server: LiveServer, access_token: str, client: RegisteredClient
) -> dict[str, Any]:
    """What a resource server does: JWKS lookup by kid, RS256 only, aud/iss/typ checked."""
    return verify_access_token(
        live_server.jwks_url,
        access_token,
        client_id=client.client_id,
        audience=AUDIENCE,
        issuer=ISSUER,
    )


def record_requests(session: requests.Session) -> list[requests.PreparedRequest]:
    """Collect the requests a library sends, to check which client auth it used."""
    sent: list[requests.PreparedRequest] = []

    def hook(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        sent.append(response.request)

    session.hooks["response"].append(hook)
    return sent


def used_basic_auth(request: requests.PreparedRequest) -> bool:
    return str(request.headers.get("Authorization", "")).startswith("Basic ")


def body_has_secret(request: requests.PreparedRequest) -> bool:
    body = request.body.encode() if isinstance(request.body, str) else request.body or b""
    return b"client_secret=" in body


def assert_token_response(token: dict[str, Any]) -> None:
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 1800
    # oauthlib hands the scope back already split into a list; the others keep the string.
    scope = token["scope"]
    assert (scope.split() if isinstance(scope, str) else scope) == ["api"]


def test_requests_oauthlib_backend_application_client_gets_verifiable_token(
    live_server: LiveServer, client: RegisteredClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # oauthlib refuses plain-http token URLs; the live server is on loopback without TLS.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    session = RequestsOAuth2Session(client=BackendApplicationClient(client_id=client.client_id))
    sent = record_requests(session)
    with session:
        token = session.fetch_token(
            live_server.token_url,
            client_id=client.client_id,
            client_secret=client.client_secret,
            timeout=30,
        )

    assert [used_basic_auth(r) for r in sent] == [True]
    assert not body_has_secret(sent[0])
    assert_token_response(token)
    verify_as_resource_server(live_server, token["access_token"], client)


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post"])
def test_authlib_client_gets_verifiable_token(
    live_server: LiveServer, client: RegisteredClient, auth_method: str
) -> None:
    session = AuthlibOAuth2Session(
        client_id=client.client_id,
        client_secret=client.client_secret,
        token_endpoint_auth_method=auth_method,
        scope="api",
    )
    sent = record_requests(session)
    with session:
        token = session.fetch_token(
            live_server.token_url, grant_type="client_credentials", timeout=30
        )

    assert len(sent) == 1
    assert used_basic_auth(sent[0]) == (auth_method == "client_secret_basic")
    assert body_has_secret(sent[0]) == (auth_method == "client_secret_post")
    assert_token_response(token)
    verify_as_resource_server(live_server, token["access_token"], client)


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post"])
def test_authlib_client_requesting_resource_gets_that_audience(
    live_server: LiveServer,
    create_client: Callable[..., RegisteredClient],
    auth_method: str,
) -> None:
    client = create_client(scope="api", audiences=[AUDIENCE, "https://other.example.test"])
    session = AuthlibOAuth2Session(
        client_id=client.client_id,
        client_secret=client.client_secret,
        token_endpoint_auth_method=auth_method,
    )
    with session:
        token = session.fetch_token(
            live_server.token_url,
            grant_type="client_credentials",
            resource=AUDIENCE,
            timeout=30,
        )

    claims = verify_as_resource_server(live_server, token["access_token"], client)
    assert claims["aud"] == AUDIENCE


def test_httpx_post_like_nextjs_seed_gets_verifiable_token(
    live_server: LiveServer, client: RegisteredClient
) -> None:
    """Mirrors the Next.js route in the shared seeds: Basic from base64("id:secret") without
    form-encoding the parts, and a URLSearchParams body."""
    auth_string = base64.b64encode(f"{client.client_id}:{client.client_secret}".encode()).decode()
    with httpx.Client(timeout=30) as http:
        response = http.post(
            live_server.token_url,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Authorization": f"Basic {auth_string}",
            },
            content="grant_type=client_credentials&scope=api",
        )

    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    # The seed forwards any Set-Cookie from the auth server; there must be none to forward.
    assert "set-cookie" not in response.headers
    token = response.json()
    assert_token_response(token)
    verify_as_resource_server(live_server, token["access_token"], client)


def test_httpx_basic_auth_helper_gets_verifiable_token(
    live_server: LiveServer, client: RegisteredClient
) -> None:
    with httpx.Client(timeout=30) as http:
        response = http.post(
            live_server.token_url,
            data={"grant_type": "client_credentials"},
            auth=httpx.BasicAuth(client.client_id, client.client_secret),
        )

    assert response.status_code == 200, response.text
    verify_as_resource_server(live_server, response.json()["access_token"], client)


def test_token_from_one_library_is_rejected_by_resource_server_expecting_other_audience(
    live_server: LiveServer, client: RegisteredClient
) -> None:
    """The verification above really checks ``aud``: a wrong expectation fails."""
    session = AuthlibOAuth2Session(
        client_id=client.client_id,
        client_secret=client.client_secret,
        token_endpoint_auth_method="client_secret_basic",
    )
    with session:
        token = session.fetch_token(
            live_server.token_url, grant_type="client_credentials", timeout=30
        )

    with pytest.raises(jwt.InvalidAudienceError):
        decode_with_jwks(
            live_server.jwks_url,
            token["access_token"],
            audience="https://somewhere-else.example.test",
            issuer=ISSUER,
        )
