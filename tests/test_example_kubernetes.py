"""``examples/kubernetes/service.py`` run as a real process, the way its README goes: a
stand-in cluster issuer (OpenID discovery and key set on a loopback port) signs a projected
service-account token into a file, the admin adds the trust with the real CLI, and the service
gets access tokens from a real ``authserver serve`` with ``from_token_file`` and calls an API
that verifies them against the server's JWKS: the client's token, ``act`` naming the pod's
service account."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.examples import EXAMPLES, run_example
from tests.support.federated import VerifyingAPI, add_trust
from tests.support.served import ServedAuthServer, served_auth_server
from tests.support.workload_issuer import WorkloadIssuer
from tests.support.wsgi import serving

SERVICE = EXAMPLES / "kubernetes" / "service.py"
#: The service's own variables: none may leak in from the environment running the tests.
SERVICE_VARIABLES = {
    "AUTHSERVER_ISSUER", "TOKEN_FILE", "CLIENT_ID", "API_URL", "SCOPE", "AUDIENCE", "CALLS",
    "INTERVAL",
}  # fmt: skip
SUBJECT = "system:serviceaccount:payments:billing"


@pytest.fixture(scope="module")
def auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedAuthServer]:
    with served_auth_server(tmp_path_factory.mktemp("auth")) as served:
        yield served


@pytest.fixture(scope="module")
def cluster() -> Iterator[WorkloadIssuer]:
    """A cluster whose issuer has a path, as EKS's do."""
    with WorkloadIssuer(path="/id/C0FFEE") as issuer:
        yield issuer


@pytest.fixture(scope="module")
def billing(auth: ServedAuthServer, cluster: WorkloadIssuer) -> dict[str, Any]:
    """The client the billing service account becomes, as README.md sets it up."""
    client = auth.create_client("--name", "billing", "--scope", "api")
    add_trust(auth, client["client_id"], cluster.issuer, SUBJECT, auth.issuer, "--allow-reuse")
    return client


@pytest.fixture(scope="module")
def api(auth: ServedAuthServer, billing: dict[str, Any]) -> Iterator[VerifyingAPI]:
    api = VerifyingAPI(auth, billing["client_id"])
    with serving(api.app) as url:
        api.url = f"{url}/things"
        yield api


def run_service(**env: str) -> subprocess.CompletedProcess[str]:
    return run_example(SERVICE, SERVICE_VARIABLES, **env)


def projected(tmp_path: Path, token: str) -> Path:
    path = tmp_path / "tokens" / "authserver"
    path.parent.mkdir(exist_ok=True)
    path.write_text(token)
    return path


def test_pod_calls_the_api_as_its_client_with_act_naming_its_service_account(
    auth: ServedAuthServer, cluster: WorkloadIssuer, api: VerifyingAPI, tmp_path: Path
) -> None:
    token = cluster.kubernetes_token("payments", "billing", auth.issuer)
    path = projected(tmp_path, token)
    result = run_service(
        AUTHSERVER_ISSUER=auth.issuer, TOKEN_FILE=str(path), API_URL=api.url, CALLS="3"
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    expected_act = {"sub": SUBJECT, "iss": cluster.issuer}
    for line in lines:
        status, body = line.split(" ", 1)
        assert status == "200"
        assert json.loads(body) == {"client_id": api.client_id, "act": expected_act}
    # Verified against the server's JWKS by the API: the client's token, saying who acted.
    claims = api.seen[-1]
    assert claims["sub"] == claims["client_id"] == api.client_id
    assert claims["act"] == expected_act
    # One access token for the three calls: the file was read for one fetch.
    assert len(set(api.tokens[-3:])) == 1
    assert token not in result.stdout + result.stderr
    assert token.split(".")[2] not in result.stdout + result.stderr


def test_pod_sends_its_client_id_when_configured(
    auth: ServedAuthServer, cluster: WorkloadIssuer, api: VerifyingAPI, tmp_path: Path
) -> None:
    path = projected(tmp_path, cluster.kubernetes_token("payments", "billing", auth.issuer))
    result = run_service(
        AUTHSERVER_ISSUER=auth.issuer, TOKEN_FILE=str(path), API_URL=api.url,
        CLIENT_ID=api.client_id,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("200 ")


@pytest.mark.parametrize(
    ("namespace", "service_account", "audience"),
    [
        pytest.param("payments", "intruder", None, id="another-service-account"),
        pytest.param("other", "billing", None, id="another-namespace"),
        pytest.param("payments", "billing", "https://kubernetes.default.svc", id="api-audience"),
    ],
)
def test_a_token_the_trust_does_not_name_gets_no_access_token(
    auth: ServedAuthServer,
    cluster: WorkloadIssuer,
    api: VerifyingAPI,
    tmp_path: Path,
    namespace: str,
    service_account: str,
    audience: str | None,
) -> None:
    token = cluster.kubernetes_token(namespace, service_account, audience or auth.issuer)
    result = run_service(
        AUTHSERVER_ISSUER=auth.issuer, TOKEN_FILE=str(projected(tmp_path, token)),
        API_URL=api.url,
    )  # fmt: skip
    assert result.returncode == 1
    assert "no access token: invalid_client" in result.stderr
    assert "(HTTP 401)" in result.stderr
    assert "Traceback" not in result.stderr
    assert token not in result.stderr


def test_a_token_file_not_projected_yet_is_named(
    auth: ServedAuthServer, api: VerifyingAPI, tmp_path: Path
) -> None:
    missing = tmp_path / "tokens" / "authserver"
    result = run_service(AUTHSERVER_ISSUER=auth.issuer, TOKEN_FILE=str(missing), API_URL=api.url)
    assert result.returncode == 1
    assert f"cannot read the platform token file {str(missing)!r}" in result.stderr
    assert "No such file or directory" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_configuration_exits_2(tmp_path: Path) -> None:
    missing = run_service(API_URL="http://127.0.0.1:9/")
    assert missing.returncode == 2
    assert "set AUTHSERVER_ISSUER and API_URL" in missing.stderr
    bad = run_service(AUTHSERVER_ISSUER="http://127.0.0.1:9", API_URL="http://x/", CALLS="many")
    assert bad.returncode == 2
    assert "CALLS" in bad.stderr
    assert "Traceback" not in missing.stderr + bad.stderr
