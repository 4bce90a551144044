"""``examples/github-actions/get_token.py`` run as a real process, as a workflow step runs it:
a stand-in for GitHub's issuer (discovery, key set) and for the runner's token service
(``ACTIONS_ID_TOKEN_REQUEST_URL`` with its bearer) signs job tokens with GitHub's claims and
headers, the admin adds the trust with the real CLI, and the script prints an access token
from a real ``authserver serve``, which is verified here against the server's JWKS: the
client's token, ``act`` naming the repository and ref that asked."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import jwt
import pytest

from tests.support.examples import EXAMPLES, run_example
from tests.support.federated import add_trust, verified
from tests.support.served import ServedAuthServer, served_auth_server
from tests.support.workload_issuer import WorkloadIssuer

SCRIPT = EXAMPLES / "github-actions" / "get_token.py"
#: The script's own variables: none may leak in from the environment running the tests
#: (which may itself be a GitHub Actions job).
SCRIPT_VARIABLES = {
    "ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "OIDC_AUDIENCE",
    "AUTHSERVER_ISSUER", "CLIENT_ID", "SCOPE", "AUDIENCE",
}  # fmt: skip
REPOSITORY = "octo-org/deployer"
SUBJECT = f"repo:{REPOSITORY}:ref:refs/heads/main"
OIDC_AUDIENCE = "https://auth.example.test/federation"


@pytest.fixture(scope="module")
def auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedAuthServer]:
    with served_auth_server(tmp_path_factory.mktemp("auth")) as served:
        yield served


@pytest.fixture(scope="module")
def github_module() -> Iterator[WorkloadIssuer]:
    with WorkloadIssuer() as issuer:
        yield issuer


@pytest.fixture
def github(github_module: WorkloadIssuer) -> WorkloadIssuer:
    """GitHub, running a job of the trusted repository on main unless a test says otherwise."""
    github_module.actions_job = {"repository": REPOSITORY, "ref": "refs/heads/main"}
    return github_module


@pytest.fixture(scope="module")
def deployer(auth: ServedAuthServer, github_module: WorkloadIssuer) -> dict[str, Any]:
    """The client a main-branch job of the repository becomes, as README.md sets it up."""
    client = auth.create_client("--name", "deployer", "--scope", "deploy")
    add_trust(auth, client["client_id"], github_module.issuer, SUBJECT, OIDC_AUDIENCE)
    return client


def run_script(**env: str) -> subprocess.CompletedProcess[str]:
    return run_example(SCRIPT, SCRIPT_VARIABLES, **env)


def job_env(auth: ServedAuthServer, github: WorkloadIssuer, **extra: str) -> dict[str, str]:
    """What the runner gives a step of a job with ``permissions: id-token: write``, plus the
    workflow's variables."""
    return {
        "ACTIONS_ID_TOKEN_REQUEST_URL": github.actions_request_url,
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": github.actions_request_token,
        "OIDC_AUDIENCE": OIDC_AUDIENCE,
        "AUTHSERVER_ISSUER": auth.issuer,
        **extra,
    }


def test_job_prints_an_access_token_of_its_client_with_act_naming_the_repository_and_ref(
    auth: ServedAuthServer, github: WorkloadIssuer, deployer: dict[str, Any]
) -> None:
    asked = len(github.actions_tokens)
    result = run_script(**job_env(auth, github))
    assert result.returncode == 0, result.stderr
    access_token = result.stdout.strip()
    assert result.stdout == access_token + "\n"

    claims = verified(auth, access_token, deployer["client_id"], scope="deploy")
    assert claims["act"] == {"sub": SUBJECT, "iss": github.issuer}

    # The job asked the runner for one token, for the trust's audience, and sent that one.
    [job_token] = github.actions_tokens[asked:]
    job_claims = jwt.decode(job_token, options={"verify_signature": False})
    assert job_claims["aud"] == OIDC_AUDIENCE
    assert job_claims["sub"] == SUBJECT
    assert jwt.get_unverified_header(job_token)["typ"] == "JWT"
    assert job_token not in result.stdout + result.stderr


def test_each_run_presents_a_new_job_token_so_single_use_holds(
    auth: ServedAuthServer, github: WorkloadIssuer, deployer: dict[str, Any]
) -> None:
    """The trust has no --allow-reuse: a second run (a re-run of the job) gets a new job
    token with a new jti, and is not refused as a replay."""
    for _ in range(2):
        result = run_script(**job_env(auth, github, CLIENT_ID=deployer["client_id"]))
        assert result.returncode == 0, result.stderr
    first, second = github.actions_tokens[-2:]
    assert (
        jwt.decode(first, options={"verify_signature": False})["jti"]
        != jwt.decode(second, options={"verify_signature": False})["jti"]
    )


@pytest.mark.parametrize(
    ("job", "audience"),
    [
        pytest.param({"ref": "refs/heads/feature"}, OIDC_AUDIENCE, id="another-branch"),
        pytest.param({"repository": "octo-org/fork"}, OIDC_AUDIENCE, id="another-repository"),
        pytest.param({}, "https://github.com/octo-org", id="github-s-default-audience"),
    ],
)
def test_a_job_the_trust_does_not_name_gets_no_access_token(
    auth: ServedAuthServer,
    github: WorkloadIssuer,
    deployer: dict[str, Any],
    job: dict[str, str],
    audience: str,
) -> None:
    github.actions_job.update(job)
    result = run_script(**job_env(auth, github, OIDC_AUDIENCE=audience))
    assert result.returncode == 1
    assert "no access token: invalid_client" in result.stderr
    assert "(HTTP 401)" in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr


def test_a_job_without_id_token_permission_is_told_so(auth: ServedAuthServer) -> None:
    result = run_script(OIDC_AUDIENCE=OIDC_AUDIENCE, AUTHSERVER_ISSUER=auth.issuer)
    assert result.returncode == 2
    assert "permissions: id-token: write" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_refused_request_token_is_named_without_any_token(
    auth: ServedAuthServer, github: WorkloadIssuer
) -> None:
    result = run_script(**job_env(auth, github, ACTIONS_ID_TOKEN_REQUEST_TOKEN="expired"))
    assert result.returncode == 1
    assert "the runner's token service answered HTTP 401" in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr


def test_a_missing_variable_is_named(auth: ServedAuthServer, github: WorkloadIssuer) -> None:
    env = job_env(auth, github)
    del env["OIDC_AUDIENCE"]
    result = run_script(**env)
    assert result.returncode == 2
    assert "set OIDC_AUDIENCE" in result.stderr
