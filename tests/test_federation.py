"""Workload identity federation black-box: a real ``authserver serve``, trusts added with the
real CLI, and Kubernetes-, GitHub Actions- and SPIFFE-shaped tokens from a stand-in issuer
(``tests/support/workload_issuer.py``) posted with ``requests`` as a workload would post them.
Access tokens are verified with PyJWT against the server's JWKS, as a resource server would.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from authserver.config import Settings
from authserver.oauth.client_assertion import JWT_BEARER
from tests.support.cli import ok, run_authserver
from tests.support.cli_in_process import InProcessCli, in_process_cli
from tests.support.served import ServedAuthServer, served_auth_server
from tests.support.tokens import decode_with_jwks
from tests.support.waiting import wait_until
from tests.support.workload_issuer import DISCOVERY_SUFFIX, JWKS_SUFFIX, WorkloadIssuer

AUDIENCE = "authserver"
GITHUB_AUDIENCE = "https://github.com/octo-org"
#: The contract: a trust change reaches every worker within 2 s (waited for with a margin).
PROPAGATION_SECONDS = 2.0


@pytest.fixture(scope="module")
def auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedAuthServer]:
    # Refusals are what this module provokes, all from 127.0.0.1: the per-address limit (50 a
    # minute, tested elsewhere) would turn the later ones into 429s.
    directory = tmp_path_factory.mktemp("federation")
    with served_auth_server(directory, workers=2, AUTHSERVER_RATELIMIT="off") as served:
        yield served


@pytest.fixture(scope="module")
def kubernetes() -> Iterator[WorkloadIssuer]:
    with WorkloadIssuer("RS256", "/k8s") as issuer:
        yield issuer


@pytest.fixture(scope="module")
def github() -> Iterator[WorkloadIssuer]:
    with WorkloadIssuer("RS256") as issuer:
        yield issuer


@pytest.fixture(scope="module")
def spire() -> Iterator[WorkloadIssuer]:
    with WorkloadIssuer("ES256", "/spire") as issuer:
        yield issuer


@pytest.fixture(scope="module")
def admin(auth: ServedAuthServer) -> InProcessCli:
    """The CLI against the served database, in this process (the console script itself is
    run for ``trust test`` below and for every command in ``tests/test_cli.py``)."""
    return in_process_cli(Settings.from_env(auth.server.env))


def cli(admin: InProcessCli, *args: str) -> Any:
    result = admin(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def trust(admin: InProcessCli, client_id: str, issuer: str, subject: str, *extra: str) -> str:
    added = cli(
        admin, "trust", "add", "--client", client_id, "--issuer", issuer, "--subject", subject,
        "--audience", extra[0] if extra else AUDIENCE, *extra[1:],
    )  # fmt: skip
    trust_id: str = added["trust_id"]
    return trust_id


def new_client(admin: InProcessCli, name: str) -> str:
    client_id: str = cli(admin, "clients", "create", "--name", name, "--scope", "api")["client_id"]
    return client_id


def present(auth: ServedAuthServer, assertion: str, **form: str) -> requests.Response:
    return requests.post(
        auth.token_url,
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": JWT_BEARER,
            "client_assertion": assertion,
            **form,
        },
        timeout=15,
    )


def verified(auth: ServedAuthServer, response: requests.Response) -> dict[str, Any]:
    """The access token's claims, checked as a resource server checks them."""
    assert response.status_code == 200, response.text
    jwks_url = f"{auth.issuer}/.well-known/jwks.json"
    token = response.json()["access_token"]
    return decode_with_jwks(jwks_url, token, audience=auth.issuer, issuer=auth.issuer)


def failure_events(auth: ServedAuthServer) -> list[dict[str, Any]]:
    events = [
        json.loads(line) for line in auth.server.stderr().splitlines() if line.startswith("{")
    ]
    return [
        e
        for e in events
        if e.get("event") == "client.authentication" and e.get("method") == "workload_identity"
    ]


def test_a_kubernetes_pod_gets_its_clients_token_with_act_through_discovery(
    auth: ServedAuthServer, admin: InProcessCli, kubernetes: WorkloadIssuer
) -> None:
    client_id = new_client(admin, "billing")
    subject = "system:serviceaccount:billing:api"
    trust(admin, client_id, kubernetes.issuer, subject, AUDIENCE, "--allow-reuse")
    token = kubernetes.kubernetes_token(
        "billing", "api", [AUDIENCE, "https://kubernetes.default.svc"]
    )

    claims = verified(auth, present(auth, token))
    # Reused as the kubelet reuses a projected token until it rotates it.
    again = [present(auth, token) for _ in range(4)]

    assert (claims["sub"], claims["client_id"], claims["scope"]) == (client_id, client_id, "api")
    assert claims["act"] == {"sub": subject, "iss": kubernetes.issuer}
    assert [r.status_code for r in again] == [200] * 4
    # Discovery, then the keys it names; each worker fetched each at most once.
    assert 1 <= kubernetes.fetches[f"/k8s{DISCOVERY_SUFFIX}"] <= 2
    assert 1 <= kubernetes.fetches[f"/k8s{JWKS_SUFFIX}"] <= 2
    assert token not in auth.server.stderr()


def test_a_github_actions_job_token_is_single_use_and_bound_to_its_branch(
    auth: ServedAuthServer, admin: InProcessCli, github: WorkloadIssuer
) -> None:
    client_id = new_client(admin, "deployer")
    subject = "repo:octo-org/octo-repo:ref:refs/heads/main"
    trust_id = trust(admin, client_id, github.issuer, subject, GITHUB_AUDIENCE)
    token = github.github_actions_token("octo-org/octo-repo", GITHUB_AUDIENCE)
    feature = github.github_actions_token(
        "octo-org/octo-repo", GITHUB_AUDIENCE, ref="refs/heads/feature"
    )

    claims = verified(auth, present(auth, token))
    replay = present(auth, token)
    other_branch = present(auth, feature)

    assert claims["act"] == {"sub": subject, "iss": github.issuer}
    assert (replay.status_code, replay.json()["error"]) == (401, "invalid_client")
    assert (other_branch.status_code, other_branch.json()["error"]) == (401, "invalid_client")
    failures = failure_events(auth)
    replayed = next(e for e in failures if e.get("check") == "jti: already used")
    assert (replayed["trust_id"], replayed["client_id"]) == (trust_id, client_id)
    unmatched = next(e for e in failures if e.get("subject", "").endswith("refs/heads/feature"))
    assert unmatched["considered"] == {trust_id: f"sub: does not match {subject!r}"}
    assert token not in auth.server.stderr()
    assert feature not in auth.server.stderr()


def test_a_spiffe_svid_authenticates_with_keys_from_a_bundle_uri(
    auth: ServedAuthServer, admin: InProcessCli, spire: WorkloadIssuer
) -> None:
    client_id = new_client(admin, "payments")
    trust(
        admin, client_id, spire.issuer, "spiffe://example.org/ns/prod/sa/*", AUDIENCE,
        "--jwks-uri", spire.bundle_uri, "--allow-reuse", "--max-lifetime", "600",
    )  # fmt: skip
    svid = spire.spiffe_svid("spiffe://example.org/ns/prod/sa/payments", AUDIENCE)
    too_long = spire.spiffe_svid("spiffe://example.org/ns/prod/sa/payments", AUDIENCE, 3600)

    claims = verified(auth, present(auth, svid))
    refused = present(auth, too_long)

    assert claims["act"] == {"sub": "spiffe://example.org/ns/prod/sa/payments", "iss": spire.issuer}
    assert refused.status_code == 401
    assert spire.fetches.get(f"/spire{DISCOVERY_SUFFIX}", 0) == 0  # the bundle, no discovery
    assert any(e.get("check", "").startswith("lifetime:") for e in failure_events(auth))


def test_an_issuer_whose_keys_cannot_be_fetched_is_a_401(
    auth: ServedAuthServer, admin: InProcessCli
) -> None:
    with WorkloadIssuer("RS256", "/down") as down:
        client_id = new_client(admin, "down")
        trust(admin, client_id, down.issuer, "system:serviceaccount:a:b", AUDIENCE)
        down.unavailable = True
        response = present(auth, down.kubernetes_token("a", "b", AUDIENCE))
        issuer = down.issuer
    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")
    logged = [e for e in failure_events(auth) if e.get("issuer") == issuer]
    assert logged[0]["check"].startswith("keys:")
    assert "answered 503" in logged[0]["check"]


def test_trust_changes_reach_every_worker_within_two_seconds(
    auth: ServedAuthServer, admin: InProcessCli, kubernetes: WorkloadIssuer
) -> None:
    client_id = new_client(admin, "propagation")
    subject = "system:serviceaccount:prop:api"

    def all_answer(status: int) -> bool:
        # Fresh connections, so both workers answer some of them.
        token = kubernetes.kubernetes_token("prop", "api", AUDIENCE)
        return all(present(auth, token).status_code == status for _ in range(6))

    assert all_answer(401)
    trust_id = trust(admin, client_id, kubernetes.issuer, subject, AUDIENCE, "--allow-reuse")
    wait_until(lambda: all_answer(200), PROPAGATION_SECONDS + 1, "the new trust accepted")
    assert admin("trust", "delete", trust_id).exit_code == 0
    wait_until(lambda: all_answer(401), PROPAGATION_SECONDS + 1, "the deleted trust refused")


def test_trust_test_names_the_matching_trust_and_spends_nothing(
    auth: ServedAuthServer, admin: InProcessCli, github: WorkloadIssuer, tmp_path: Path
) -> None:
    client_id = new_client(admin, "diagnosed")
    subject = "repo:octo-org/diagnosed:*"
    trust_id = trust(admin, client_id, github.issuer, subject, GITHUB_AUDIENCE)
    token_file = tmp_path / "token"
    token_file.write_text(github.github_actions_token("octo-org/diagnosed", GITHUB_AUDIENCE))
    test = ["trust", "test", "--assertion-file", str(token_file)]

    human = ok(run_authserver(auth.server.env, *test)).stdout
    report = cli(admin, *test)
    used = present(auth, token_file.read_text())
    after = admin(*test, "--json")

    assert human.splitlines()[0] == f"{trust_id}  {client_id}  matched"
    assert "act: sub=repo:octo-org/diagnosed:ref:refs/heads/main" in human
    assert report["accepted"] is True
    assert (report["trust_id"], report["client_id"]) == (trust_id, client_id)
    assert report["jti"].startswith("not used yet")
    assert used.status_code == 200  # testing it twice spent nothing
    assert after.exit_code == 1
    assert json.loads(after.stdout)["jti"].startswith("already used")


def test_trust_test_lists_each_trust_considered_and_its_failed_check(
    auth: ServedAuthServer, admin: InProcessCli, github: WorkloadIssuer, tmp_path: Path
) -> None:
    client_id = new_client(admin, "refused")
    by_subject = trust(admin, client_id, github.issuer, "repo:octo-org/refused:ref:refs/tags/*")
    by_audience = trust(admin, client_id, github.issuer, "repo:octo-org/refused:*", "other-aud")
    token_file = tmp_path / "token"
    token_file.write_text(github.github_actions_token("octo-org/refused", GITHUB_AUDIENCE))

    result = admin("trust", "test", "--assertion-file", str(token_file))

    assert result.exit_code == 1, result.output
    lines = dict(line.split("  ", 1) for line in result.stdout.splitlines())
    assert lines[by_subject].endswith("sub: does not match 'repo:octo-org/refused:ref:refs/tags/*'")
    assert lines[by_audience].endswith("aud: does not contain 'other-aud'")
    assert result.stderr.strip() == "refused: no trust accepts this token"


@pytest.mark.parametrize(
    ("content", "said"),
    [
        ("not a jwt", "does not hold a JWT"),
        ("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", "no iss claim"),
        (
            "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL25vYm9keS5leGFtcGxlIn0.c2ln",
            "no trust names the issuer 'https://nobody.example'",
        ),
    ],
)
def test_trust_test_refuses_what_it_cannot_judge_with_one_line(
    auth: ServedAuthServer, admin: InProcessCli, tmp_path: Path, content: str, said: str
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(content)
    result = admin("trust", "test", "--assertion-file", str(token_file))
    assert result.exit_code == 1
    assert said in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
