"""``examples/python-service/service.py`` run as a real process against a real ``authserver
serve`` and a protected API that checks each bearer token the way a resource server may: by
asking the server's introspection endpoint (RFC 7662) with its own client's credentials."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from werkzeug.wrappers import Request, Response

from tests.support.served import ServedAuthServer, served_auth_server
from tests.support.wsgi import serving

SERVICE = Path(__file__).resolve().parent.parent / "examples" / "python-service" / "service.py"


@dataclass
class IntrospectingAPI:
    """GET /things: 200 with the caller's client id and scope for an active token, else 401."""

    introspection_url: str
    client_id: str
    client_secret: str
    url: str = ""

    def app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        header = request.headers.get("Authorization", "")
        introspected: dict[str, Any] = {"active": False}
        if header.startswith("Bearer "):
            answer = requests.post(
                self.introspection_url,
                data={"token": header.removeprefix("Bearer ")},
                auth=(self.client_id, self.client_secret),
                timeout=10,
            )
            answer.raise_for_status()
            introspected = answer.json()
        if not introspected["active"]:
            response = Response('{"error": "invalid_token"}', 401, mimetype="application/json")
        else:
            body = {"hello": introspected["client_id"], "scope": introspected["scope"]}
            response = Response(json.dumps(body), mimetype="application/json")
        return response(environ, start_response)


@pytest.fixture(scope="module")
def auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedAuthServer]:
    with served_auth_server(tmp_path_factory.mktemp("auth")) as served:
        yield served


@pytest.fixture(scope="module")
def service_client(auth: ServedAuthServer) -> dict[str, Any]:
    return auth.create_client("--name", "billing", "--scope", "api read")


@pytest.fixture(scope="module")
def api(auth: ServedAuthServer) -> Iterator[IntrospectingAPI]:
    own = auth.create_client("--name", "things-api", "--scope", "introspect")
    api = IntrospectingAPI(
        f"{auth.issuer}/oauth2/introspect", own["client_id"], own["client_secret"]
    )
    with serving(api.app) as url:
        api.url = f"{url}/things"
        yield api


def run_service(**env: str) -> subprocess.CompletedProcess[str]:
    """service.py with exactly the given configuration (none inherited by accident)."""
    inherited = {
        key: value
        for key, value in os.environ.items()
        if key not in {"AUTHSERVER_ISSUER", "TOKEN_URL", "CLIENT_ID", "CLIENT_SECRET", "API_URL"}
    }
    return subprocess.run(
        [sys.executable, str(SERVICE)],
        env={**inherited, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_service_calls_the_api_with_a_discovered_token(
    auth: ServedAuthServer, service_client: dict[str, Any], api: IntrospectingAPI
) -> None:
    result = run_service(
        AUTHSERVER_ISSUER=auth.issuer,
        CLIENT_ID=service_client["client_id"],
        CLIENT_SECRET=service_client["client_secret"],
        API_URL=api.url,
        SCOPE="read",
    )
    assert result.returncode == 0, result.stderr
    status, body = result.stdout.strip().split("\n", 1)
    assert status == "200"
    assert json.loads(body) == {"hello": service_client["client_id"], "scope": "read"}
    assert service_client["client_secret"] not in result.stdout + result.stderr


def test_service_with_a_token_url(
    auth: ServedAuthServer, service_client: dict[str, Any], api: IntrospectingAPI
) -> None:
    result = run_service(
        TOKEN_URL=auth.token_url,
        CLIENT_ID=service_client["client_id"],
        CLIENT_SECRET=service_client["client_secret"],
        API_URL=api.url,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.split("\n", 1)[1])["scope"] == "api read"


def test_service_reports_a_wrong_secret_without_printing_it(
    auth: ServedAuthServer, service_client: dict[str, Any], api: IntrospectingAPI
) -> None:
    wrong = "ascs_wrong-secret-for-the-example"
    result = run_service(
        AUTHSERVER_ISSUER=auth.issuer,
        CLIENT_ID=service_client["client_id"],
        CLIENT_SECRET=wrong,
        API_URL=api.url,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "invalid_client" in result.stderr
    assert "(HTTP 401)" in result.stderr
    assert wrong not in result.stdout + result.stderr


def test_service_names_missing_configuration() -> None:
    result = run_service(CLIENT_ID="cli_x")
    assert result.returncode == 2
    assert "CLIENT_SECRET" in result.stderr
    assert "AUTHSERVER_ISSUER or TOKEN_URL" in result.stderr
