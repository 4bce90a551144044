"""The admin API under a real ``authserver serve`` (granian, two workers): an admin client
registered with the CLI, its token from /oauth2/token, a change made over HTTP that every
worker applies within the contract's 2 seconds, and the audit line in the server's log."""

from __future__ import annotations

import json
from pathlib import Path

import requests

from tests.support.served import served_auth_server
from tests.support.waiting import wait_until
from tests.test_audit import audit_events


def test_a_client_created_over_the_admin_api_gets_tokens_from_every_worker(
    tmp_path: Path,
) -> None:
    with served_auth_server(tmp_path, workers=2) as served:
        admin = served.create_client("--name", "admin", "--scope", "authserver:admin")
        token = requests.post(
            served.token_url,
            data={"grant_type": "client_credentials"},
            auth=(admin["client_id"], admin["client_secret"]),
            timeout=10,
        ).json()["access_token"]
        bearer = {"Authorization": f"Bearer {token}"}
        created = requests.post(
            f"{served.issuer}/admin/v1/clients",
            json={"name": "billing", "scope": "api"},
            headers={**bearer, "X-Request-ID": "served-create"},
            timeout=10,
        )
        assert created.status_code == 201, created.text
        billing = created.json()

        def token_answers() -> list[int]:
            return [
                requests.post(
                    served.token_url,
                    data={"grant_type": "client_credentials"},
                    auth=(billing["client_id"], billing["client_secret"]),
                    timeout=10,
                ).status_code
                for _ in range(6)  # two workers: each is asked a few times
            ]

        wait_until(lambda: set(token_answers()) == {200}, 2.5, "tokens from both workers")
        event = wait_until(
            lambda: next(
                (
                    e
                    for e in audit_events(served.server.stderr())
                    if e["event"] == "client.created" and e["client_id"] == billing["client_id"]
                ),
                None,
            ),
            5,
            "the client.created audit line",
        )
        assert event["actor"] == admin["client_id"]
        assert event["request_id"] == "served-create"

        too_large = requests.post(
            f"{served.issuer}/admin/v1/clients",
            data=json.dumps({"name": "x" * 70_000, "scope": "api"}),
            headers={**bearer, "Content-Type": "application/json"},
            timeout=10,
        )
        assert too_large.status_code == 413
        no_token = requests.get(f"{served.issuer}/admin/v1/keys", timeout=10)
        assert no_token.status_code == 401
        assert no_token.headers["Content-Type"] == "application/problem+json"
        assert no_token.headers["WWW-Authenticate"].startswith("Bearer")
