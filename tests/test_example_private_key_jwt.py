"""``examples/private-key-jwt/service.py`` run as a real process, the way its README goes: the
service makes its key and prints the public JWK Set, the admin registers it with the real CLI
(``clients create --auth-method private_key_jwt --jwks-file``), and the service gets a token
from a real ``authserver serve`` and calls a protected API that introspects it (RFC 7662)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.served import ServedAuthServer, served_auth_server
from tests.support.wsgi import serving
from tests.test_example_python_service import IntrospectingAPI

SERVICE = Path(__file__).resolve().parent.parent / "examples" / "private-key-jwt" / "service.py"
#: The service's own variables: none may leak in from the environment running the tests.
SERVICE_VARIABLES = {
    "KEY_FILE", "ALGORITHM", "AUTHSERVER_ISSUER", "TOKEN_URL", "CLIENT_ID", "API_URL", "SCOPE",
    "AUDIENCE",
}  # fmt: skip


@pytest.fixture(scope="module")
def auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedAuthServer]:
    with served_auth_server(tmp_path_factory.mktemp("auth")) as served:
        yield served


@pytest.fixture(scope="module")
def api(auth: ServedAuthServer) -> Iterator[IntrospectingAPI]:
    own = auth.create_client("--name", "things-api", "--scope", "introspect")
    api = IntrospectingAPI(
        f"{auth.issuer}/oauth2/introspect", own["client_id"], own["client_secret"]
    )
    with serving(api.app) as url:
        api.url = f"{url}/things"
        yield api


def run_service(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """service.py with exactly the given configuration."""
    inherited = {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES}
    return subprocess.run(
        [sys.executable, str(SERVICE), *args],
        env={**inherited, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def register(auth: ServedAuthServer, name: str, jwks_file: Path) -> dict[str, Any]:
    return auth.create_client(
        "--name", name, "--scope", "api read",
        "--auth-method", "private_key_jwt", "--jwks-file", str(jwks_file),
    )  # fmt: skip


@pytest.mark.parametrize("algorithm", ["ES256", "RS256", "PS256", "EdDSA"])
def test_service_registers_its_public_key_and_calls_the_api(
    auth: ServedAuthServer, api: IntrospectingAPI, tmp_path: Path, algorithm: str
) -> None:
    key_file = tmp_path / "service.pem"
    made = run_service("jwks", KEY_FILE=str(key_file), ALGORITHM=algorithm)
    assert made.returncode == 0, made.stderr
    assert f"made a new {algorithm} key" in made.stderr
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    jwks = json.loads(made.stdout)
    [jwk] = jwks["keys"]
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(jwk)
    assert (jwk["alg"], jwk["use"]) == (algorithm, "sig")
    assert "PRIVATE KEY" not in made.stdout + made.stderr
    # Run again: the key is loaded, not made anew, so the registered set stays right.
    again = run_service("jwks", KEY_FILE=str(key_file), ALGORITHM=algorithm)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == jwks
    assert "made a new" not in again.stderr

    jwks_file = tmp_path / "service.jwks.json"
    jwks_file.write_text(made.stdout)
    client = register(auth, f"billing-{algorithm}", jwks_file)
    assert "client_secret" not in client

    called = run_service(
        KEY_FILE=str(key_file), ALGORITHM=algorithm, AUTHSERVER_ISSUER=auth.issuer,
        CLIENT_ID=client["client_id"], API_URL=api.url, SCOPE="read",
    )  # fmt: skip
    assert called.returncode == 0, called.stderr
    status, body = called.stdout.strip().split("\n", 1)
    assert status == "200"
    assert json.loads(body) == {"hello": client["client_id"], "scope": "read"}
    key_text = key_file.read_text()
    assert key_text.splitlines()[1] not in called.stdout + called.stderr


def test_service_with_a_token_url_and_no_api(auth: ServedAuthServer, tmp_path: Path) -> None:
    key_file = tmp_path / "service.pem"
    made = run_service("jwks", KEY_FILE=str(key_file))
    assert made.returncode == 0, made.stderr
    (tmp_path / "jwks.json").write_text(made.stdout)
    client = register(auth, "token-url", tmp_path / "jwks.json")
    result = run_service(
        KEY_FILE=str(key_file), TOKEN_URL=auth.token_url, CLIENT_ID=client["client_id"]
    )
    assert result.returncode == 0, result.stderr
    assert f"got an access token for {client['client_id']}" in result.stderr
    assert result.stdout == ""


def test_service_with_a_key_the_server_does_not_know_is_refused(
    auth: ServedAuthServer, api: IntrospectingAPI, tmp_path: Path
) -> None:
    registered = tmp_path / "registered.pem"
    made = run_service("jwks", KEY_FILE=str(registered))
    (tmp_path / "jwks.json").write_text(made.stdout)
    client = register(auth, "rotated-away", tmp_path / "jwks.json")
    other = tmp_path / "other.pem"
    assert run_service("jwks", KEY_FILE=str(other)).returncode == 0

    result = run_service(
        KEY_FILE=str(other), AUTHSERVER_ISSUER=auth.issuer, CLIENT_ID=client["client_id"],
        API_URL=api.url,
    )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "invalid_client" in result.stderr
    assert "(HTTP 401)" in result.stderr
    assert other.read_text().splitlines()[1] not in result.stdout + result.stderr


def test_service_names_what_is_missing_or_wrong(tmp_path: Path) -> None:
    missing = run_service(CLIENT_ID="cli_x")
    assert missing.returncode == 2
    assert "KEY_FILE" in missing.stderr

    key_file = tmp_path / "service.pem"
    assert run_service("jwks", KEY_FILE=str(key_file)).returncode == 0  # an ES256 key
    no_server = run_service(KEY_FILE=str(key_file), CLIENT_ID="cli_x")
    assert no_server.returncode == 2
    assert "AUTHSERVER_ISSUER or TOKEN_URL" in no_server.stderr

    wrong_type = run_service(
        KEY_FILE=str(key_file), ALGORITHM="RS256", CLIENT_ID="cli_x",
        TOKEN_URL="http://127.0.0.1:9/token",
    )  # fmt: skip
    assert wrong_type.returncode == 2
    assert "does not hold a private key for RS256" in wrong_type.stderr

    unknown = run_service("jwks", KEY_FILE=str(key_file), ALGORITHM="HS256")
    assert unknown.returncode == 2
    assert "ALGORITHM" in unknown.stderr
    assert "Traceback" not in missing.stderr + no_server.stderr + wrong_type.stderr
