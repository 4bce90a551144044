"""Key stores seen from real ``authserver`` processes: two servers sharing the database key
store on one PostgreSQL (one first key between them, a CLI rotation reaching both within
2 s), and the CLI on a keys folder mounted read-only.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests

from authserver.security.keys import KeyStore
from tests.support.cli import (
    assert_one_line_error,
    base_env,
    ok,
    ok_json,
    sqlite_env,
)
from tests.support.cli_in_process import run_in_process
from tests.support.postgres import PostgresServer
from tests.support.server import Server, Servers, serve_to_exit
from tests.support.waiting import wait_until

ISSUER = "https://auth.example.test"
#: The contract: a change made on any host reaches every worker of every instance within 2 s.
PROPAGATION_SECONDS = 2.0
#: Slack for the test's own polling and process scheduling on a busy 2-core machine.
SLACK_SECONDS = 0.5


def signing_kids(server: Server, client: dict[str, Any], count: int = 6) -> set[str]:
    """The kids of ``count`` fresh tokens: with 2 workers, both are very likely hit."""
    kids = set()
    for _ in range(count):
        response = requests.post(
            f"{server.url}/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=(client["client_id"], client["client_secret"]),
            timeout=10,
        )
        assert response.status_code == 200, response.text
        kids.add(str(jwt.get_unverified_header(response.json()["access_token"])["kid"]))
    return kids


def jwks_kids(server: Server) -> set[str]:
    response = requests.get(f"{server.url}/.well-known/jwks.json", timeout=10)
    assert response.status_code == 200, response.text
    return {key["kid"] for key in response.json()["keys"]}


def test_two_instances_on_the_database_store_share_one_key_and_follow_a_rotation(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    env = base_env(
        postgres.create_database(f"i_{uuid.uuid4().hex[:12]}"),
        tmp_path / "no-keys-folder",
        AUTHSERVER_KEY_STORE="database",
        AUTHSERVER_KEY_PASSPHRASE="a passphrase for the instances",
        AUTHSERVER_ISSUER=ISSUER,
    )
    ok(run_in_process(env, "db", "upgrade"))
    client = ok_json(
        run_in_process(env, "clients", "create", "--name", "n", "--scope", "api", "--json")
    )
    with Servers(tmp_path) as servers:
        # Started together on an empty store: one first key between them.
        instances = [servers.start(env, wait=False) for _ in range(2)]
        for instance in instances:
            instance.wait_until_healthy()
        [key] = ok_json(run_in_process(env, "keys", "list", "--json"))
        for instance in instances:
            assert signing_kids(instance, client) == {key["kid"]}
            assert jwks_kids(instance) == {key["kid"]}

        rotated = ok_json(run_in_process(env, "keys", "rotate", "--now", "--json"))
        changed_at = time.monotonic()

        def everywhere() -> bool:
            return all(
                rotated["kid"] in jwks_kids(i) and signing_kids(i, client, 4) == {rotated["kid"]}
                for i in instances
            )

        wait_until(
            everywhere,
            PROPAGATION_SECONDS + SLACK_SECONDS - (time.monotonic() - changed_at),
            "the rotated key in both JWKS and signing on both instances",
            interval=0.1,
        )
    assert not (tmp_path / "no-keys-folder").exists()


# --- a read-only keys folder ---------------------------------------------------------------


@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """``folder`` made read-only the way a deployment does it: a read-only bind mount as
    root (file modes do not stop root), its mode 0500 otherwise."""
    if os.geteuid() != 0:
        folder.chmod(0o500)
        try:
            yield
        finally:
            folder.chmod(0o700)
        return
    bound = subprocess.run(["mount", "--bind", str(folder), str(folder)], check=False)
    if bound.returncode != 0:
        pytest.skip("cannot bind-mount here (no CAP_SYS_ADMIN)")
    try:
        remounted = subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=False)
        if remounted.returncode != 0:
            pytest.skip("cannot remount read-only here")
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_cli_on_a_read_only_keys_folder_lists_but_refuses_changes_in_one_line(
    tmp_path: Path,
) -> None:
    env = sqlite_env(tmp_path)
    ok(run_in_process(env, "db", "upgrade"))
    key = KeyStore(tmp_path / "keys").generate("ES256")
    empty = tmp_path / "empty-keys"
    empty.mkdir(mode=0o700)
    empty_env = {**env, "AUTHSERVER_KEYS_DIR": str(empty)}
    with read_only(tmp_path / "keys"), read_only(empty):
        [listed] = ok_json(run_in_process(env, "keys", "list", "--json"))
        assert listed["kid"] == key.kid
        for args in (["keys", "rotate"], ["keys", "revoke", "--", key.kid]):
            line = assert_one_line_error(run_in_process(env, *args))
            assert line.startswith("Error: AUTHSERVER_KEYS_DIR: cannot write"), line
        line = assert_one_line_error(serve_to_exit(empty_env))
        assert line.startswith("Error: AUTHSERVER_KEYS_DIR: cannot write"), line
        assert ok_json(run_in_process(env, "keys", "list", "--json")) == [listed]
