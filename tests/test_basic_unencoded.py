"""An admin-chosen secret with ``+``, ``%``, ``:`` and a space, presented in Basic by clients
that form-encode it (RFC 6749 §2.3.1: our helper) and by the many that send it as it is
(requests, requests-oauthlib, httpx, Authlib, ``curl -u``): every one gets a token.

Without the second, unencoded reading, the raw ``+`` would decode to a space and ``%20`` to
a space too, and every client below but ours would get ``invalid_client``.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from collections.abc import Callable
from urllib.parse import quote

import httpx
import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session as AuthlibOAuth2Session
from oauthlib.oauth2 import BackendApplicationClient
from requests_oauthlib import OAuth2Session as RequestsOAuth2Session

from authserver.client import ClientCredentials
from tests.conftest import LiveServer, RegisteredClient

#: Each character that form decoding changes: "+" (to a space), "%20" (to a space), ":" and " ".
AWKWARD_SECRET = "s3cret+with%20odd:chars and spaces"
GRANT = {"grant_type": "client_credentials"}


@pytest.fixture(params=["sqlite"])
def database_url(request: pytest.FixtureRequest, migrated_sqlite_url: str) -> str:
    return migrated_sqlite_url


@pytest.fixture
def client(create_client: Callable[..., RegisteredClient]) -> RegisteredClient:
    return create_client(chosen_secret=AWKWARD_SECRET)


def with_requests(server: LiveServer, client: RegisteredClient) -> int:
    response = requests.post(
        server.token_url, data=GRANT, auth=(client.client_id, AWKWARD_SECRET), timeout=30
    )
    return response.status_code


def with_httpx(server: LiveServer, client: RegisteredClient) -> int:
    auth = httpx.BasicAuth(client.client_id, AWKWARD_SECRET)
    return httpx.post(server.token_url, data=GRANT, auth=auth, timeout=30).status_code


def with_requests_oauthlib(server: LiveServer, client: RegisteredClient) -> int:
    session = RequestsOAuth2Session(client=BackendApplicationClient(client_id=client.client_id))
    token = session.fetch_token(
        server.token_url, client_id=client.client_id, client_secret=AWKWARD_SECRET, timeout=30
    )
    return 200 if token.get("access_token") else 0


def with_authlib(server: LiveServer, client: RegisteredClient) -> int:
    session = AuthlibOAuth2Session(
        client.client_id, AWKWARD_SECRET, token_endpoint_auth_method="client_secret_basic"
    )
    token = session.fetch_token(server.token_url, grant_type="client_credentials", timeout=30)
    return 200 if token.get("access_token") else 0


def with_curl(server: LiveServer, client: RegisteredClient) -> int:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    completed = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-u",
         f"{client.client_id}:{AWKWARD_SECRET}", "-d", "grant_type=client_credentials",
         server.token_url],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    return int(completed.stdout or 0)


def with_our_helper(server: LiveServer, client: RegisteredClient) -> int:
    with ClientCredentials(client.client_id, AWKWARD_SECRET, token_url=server.token_url) as source:
        return 200 if source.token() else 0


@pytest.mark.parametrize(
    "send",
    [with_requests, with_httpx, with_requests_oauthlib, with_authlib, with_curl, with_our_helper],
)
def test_every_client_gets_a_token_with_an_awkward_secret_in_basic(
    live_server: LiveServer,
    client: RegisteredClient,
    send: Callable[..., int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # plain http on loopback

    assert send(live_server, client) == 200


def test_the_raw_and_the_form_encoded_readings_both_work_and_a_wrong_secret_does_not(
    live_server: LiveServer, client: RegisteredClient
) -> None:
    def basic(user: str, password: str) -> int:
        header = base64.b64encode(f"{user}:{password}".encode()).decode()
        response = requests.post(
            live_server.token_url,
            data=GRANT,
            headers={"Authorization": f"Basic {header}"},
            timeout=30,
        )
        return response.status_code

    encoded = quote(AWKWARD_SECRET, safe="")

    assert basic(client.client_id, encoded) == 200
    assert basic(client.client_id, AWKWARD_SECRET) == 200
    assert basic(client.client_id, AWKWARD_SECRET.replace("+", " ")) == 401
