"""The real production server: ``authserver serve`` (granian, two workers) in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests

from authserver.security.keys import KeyStore
from tests.support.cli import (
    AUTHSERVER,
    assert_one_line_error,
    ok,
    run_to_exit,
    sqlite_env,
)
from tests.support.cli_in_process import run_in_process
from tests.support.server import (
    STOP_DEADLINE_SECONDS,
    Server,
    Servers,
    group_alive,
    serve_to_exit,
)
from tests.support.tokens import fetch_token, verify_access_token
from tests.support.waiting import poll, wait_until

KEY_FILE_GLOB = "*.key.json"


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run an ``authserver`` command that must succeed."""
    return ok(run_in_process(env, *args))


def create_client(env: dict[str, str], scope: str = "api") -> dict[str, Any]:
    result = cli(env, "clients", "create", "--name", "demo", "--scope", scope, "--json")
    return json.loads(result.stdout)


def port_accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


StartServer = Callable[..., Server]


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    """Starts ``authserver serve --workers 2`` on a free port; every server is killed at the end."""

    with Servers(tmp_path) as servers:

        def start(env: dict[str, str], *, migrate: bool = True, wait: bool = True) -> Server:
            if migrate:
                cli(env, "db", "upgrade")
            return servers.start(env, wait=wait)

        yield start


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``authserver serve`` on a database with no client and no keys folder yet, as the
    README's first run: the tests that share it only look (files, output, keys list)."""
    folder = tmp_path_factory.mktemp("first-run")
    env = sqlite_env(folder)
    assert not (folder / "keys").exists()
    with Servers(folder) as servers:
        cli(env, "db", "upgrade")
        yield servers.start(env)


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One ``authserver serve --workers 2`` for the tests that each register their own clients
    and change only those. Failed authentications are not limited: a test polling for a
    refusal may fail more often than the 10 times a minute after which a client gets 429."""
    folder = tmp_path_factory.mktemp("shared-server")
    env = sqlite_env(folder, AUTHSERVER_RATELIMIT="off")
    with Servers(folder) as servers:
        cli(env, "db", "upgrade")
        yield servers.start(env)


def get_token(server: Server, client_id: str, client_secret: str) -> dict[str, Any]:
    return fetch_token(f"{server.url}/oauth2/token", client_id, client_secret)


def verify_token(server: Server, token: str, client_id: str) -> dict[str, Any]:
    """What a resource server does: fetch the served JWKS and verify the RFC 9068 token."""
    issuer = server.env["AUTHSERVER_ISSUER"]
    return verify_access_token(
        f"{server.url}/.well-known/jwks.json",
        token,
        client_id=client_id,
        audience=issuer,
        issuer=issuer,
    )


def assert_new_client_gets_a_verifiable_token(server: Server) -> None:
    client = create_client(server.env)
    response = get_token(server, client["client_id"], client["client_secret"])
    verify_token(server, response["access_token"], client["client_id"])


def serve_with_a_working_client(
    tmp_path: Path, start_server: StartServer
) -> tuple[Server, dict[str, Any]]:
    """A started server and a client that has already got a token from it."""
    server = start_server(sqlite_env(tmp_path))
    client = create_client(server.env)
    get_token(server, client["client_id"], client["client_secret"])
    return server, client


# --- start-up ---


def test_serve_creates_the_first_signing_key_with_private_permissions(first_run: Server) -> None:
    keys_dir = Path(first_run.env["AUTHSERVER_KEYS_DIR"])
    assert stat.S_IMODE(keys_dir.stat().st_mode) == 0o700
    key_files = list(keys_dir.glob(KEY_FILE_GLOB))
    assert len(key_files) == 1, list(keys_dir.iterdir())
    assert stat.S_IMODE(key_files[0].stat().st_mode) == 0o600
    assert "ENCRYPTED" not in json.loads(key_files[0].read_text())["private_key"]
    keys = json.loads(cli(first_run.env, "keys", "list", "--json").stdout)
    assert [(k["kid"], k["state"]) for k in keys] == [
        (key_files[0].name[: -len(".key.json")], "active")
    ]
    assert requests.get(f"{first_run.url}/readyz", timeout=5).status_code == 200


def test_serve_keeps_an_existing_key(
    tmp_path: Path, keys_dir: Path, start_server: StartServer
) -> None:
    before = sorted(p.name for p in keys_dir.glob(KEY_FILE_GLOB))
    start_server(sqlite_env(tmp_path, AUTHSERVER_KEYS_DIR=str(keys_dir)))
    assert sorted(p.name for p in keys_dir.glob(KEY_FILE_GLOB)) == before


def test_serve_on_empty_database_prints_the_create_and_curl_commands_once(
    first_run: Server,
) -> None:
    stderr = first_run.stderr()
    create_command = f"{AUTHSERVER} clients create --name demo --scope api --json"
    curl_command = (
        "curl -u CLIENT_ID:CLIENT_SECRET -d grant_type=client_credentials -d scope=api "
        f"http://127.0.0.1:{first_run.port}/oauth2/token"
    )
    assert stderr.count(create_command) == 1, stderr
    assert stderr.count(curl_command) == 1, stderr
    assert "Traceback" not in stderr


def test_serve_with_registered_clients_prints_no_first_run_commands(
    tmp_path: Path, start_server: StartServer
) -> None:
    env = sqlite_env(tmp_path)
    cli(env, "db", "upgrade")
    create_client(env)
    server = start_server(env)
    stderr = server.stderr()
    assert "clients create" not in stderr
    assert "CLIENT_SECRET" not in stderr


# --- the "done when" flow ---


def test_cli_client_gets_a_token_that_verifies_against_the_served_jwks(
    shared_server: Server,
) -> None:
    server = shared_server
    client = create_client(server.env)
    response = get_token(server, client["client_id"], client["client_secret"])
    assert response["token_type"] == "Bearer"
    assert response["expires_in"] == 1800
    assert response["scope"] == "api"
    claims = verify_token(server, response["access_token"], client["client_id"])
    assert claims["iss"] == f"http://127.0.0.1:{server.port}"
    assert claims["aud"] == f"http://127.0.0.1:{server.port}"
    assert claims["exp"] - claims["iat"] == 1800
    kids = [k["kid"] for k in json.loads(cli(server.env, "keys", "list", "--json").stdout)]
    assert jwt.get_unverified_header(response["access_token"])["kid"] in kids


def test_client_created_while_serving_works_on_every_worker_without_restart(
    shared_server: Server,
) -> None:
    server = shared_server
    first = create_client(server.env)
    for _ in range(4):  # warm both workers up with the first client
        get_token(server, first["client_id"], first["client_secret"])
    second = create_client(server.env)
    for _ in range(8):  # no sleep: the new client must work at once, whichever worker answers
        response = get_token(server, second["client_id"], second["client_secret"])
        verify_token(server, response["access_token"], second["client_id"])
    assert server.process.poll() is None


def test_client_disabled_while_serving_is_refused_within_two_seconds(
    shared_server: Server,
) -> None:
    server = shared_server
    client = create_client(server.env)

    def refused() -> bool:
        """One request on a new connection (so either worker may answer): refused, or still
        served (allowed while the change is under 2 s old)."""
        with requests.Session() as session:
            session.trust_env = False  # no os.environ: the in-process CLI changes it meanwhile
            response = session.post(
                f"{server.url}/oauth2/token",
                auth=(client["client_id"], client["client_secret"]),
                data={"grant_type": "client_credentials"},
                timeout=10,
            )
        assert response.status_code in (200, 401), response.text
        if response.status_code == 200:
            return False
        assert response.json()["error"] == "invalid_client"
        return True

    assert not refused()
    # Requests go on while the command runs, so the workers may well have looked the client
    # up just before the change: the 2 s then count from the change itself.
    command_done = threading.Event()

    def keep_asking() -> None:
        while not command_done.wait(0.05):
            refused()

    asking = threading.Thread(target=keep_asking, daemon=True)
    asking.start()
    try:
        disabled = cli(server.env, "clients", "disable", client["client_id"])
    finally:
        command_done.set()
        asking.join(timeout=10)
    (event,) = [
        json.loads(line)
        for line in disabled.stderr.splitlines()
        if line.startswith("{") and '"client.disabled"' in line
    ]
    changed_at = datetime.fromisoformat(event["time"]).timestamp()  # logged after the commit

    # Within 2 s of the change, every worker refuses: a dozen requests in a row, each likely
    # to reach either worker, are refused (and a last dozen if the 2 s are up by then).
    wait_until(
        lambda: all(refused() for _ in range(12)),
        changed_at + 2 - time.time(),
        "a dozen refusals in a row",
        interval=0.02,
    )
    for _ in range(6):
        assert refused()


# --- stopping and the port ---


def test_sigint_stops_the_server_within_10_seconds_and_frees_the_port(
    tmp_path: Path, start_server: StartServer
) -> None:
    server, _ = serve_with_a_working_client(tmp_path, start_server)
    started = time.monotonic()
    os.killpg(server.process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    server.process.wait(timeout=STOP_DEADLINE_SECONDS + 5)
    poll(
        lambda: not group_alive(server.process.pid),
        STOP_DEADLINE_SECONDS - (time.monotonic() - started),
    )
    elapsed = time.monotonic() - started
    assert elapsed < STOP_DEADLINE_SECONDS, f"took {elapsed:.1f}s"
    assert not group_alive(server.process.pid), "a worker outlived the master"
    assert not port_accepts_connections(server.port)
    with socket.create_server(("127.0.0.1", server.port)):
        pass  # a new server can bind the port
    assert "Traceback" not in server.stderr()


def test_second_serve_on_a_busy_port_exits_1_with_one_line(
    tmp_path: Path, start_server: StartServer
) -> None:
    server = start_server(sqlite_env(tmp_path))
    result = run_to_exit(["serve", "--port", str(server.port), "--workers", "1"], server.env)
    assert str(server.port) in assert_one_line_error(result)
    assert requests.get(f"{server.url}/healthz", timeout=5).status_code == 200


# --- unusable key files ---


def assert_key_file_error(result: subprocess.CompletedProcess[str], key_file: Path) -> None:
    line = assert_one_line_error(result)
    assert str(key_file) in line or key_file.name in line, line


@pytest.mark.parametrize(
    "content",
    [
        "this is not json",
        json.dumps(
            {
                "kid": "broken",
                "alg": "RS256",
                "created_at": "2024-01-01T00:00:00+00:00",
                "activates_at": "2024-01-01T00:00:00+00:00",
                "private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            }
        ),
        "",
    ],
    ids=["not-json", "bad-pem", "empty"],
)
def test_corrupt_key_file_stops_serve_naming_the_file(tmp_path: Path, content: str) -> None:
    env = sqlite_env(tmp_path)
    cli(env, "db", "upgrade")
    keys_dir = tmp_path / "keys"
    keys_dir.mkdir(mode=0o700, exist_ok=True)
    key_file = keys_dir / f"broken{KEY_FILE_GLOB[1:]}"
    key_file.write_text(content)
    result = serve_to_exit(env)
    assert_key_file_error(result, key_file)


def test_key_encrypted_with_another_passphrase_stops_serve_naming_the_file(
    tmp_path: Path,
) -> None:
    env = sqlite_env(tmp_path, AUTHSERVER_KEY_PASSPHRASE="the wrong one")
    cli(env, "db", "upgrade")
    key = KeyStore(tmp_path / "keys", "the right one").generate()
    key_file = tmp_path / "keys" / f"{key.kid}.key.json"
    assert key_file.is_file()
    result = serve_to_exit(env)
    assert_key_file_error(result, key_file)
    assert "AUTHSERVER_KEY_PASSPHRASE" in result.stderr
    assert "the wrong one" not in result.stderr


def test_encrypted_key_without_passphrase_stops_serve_naming_the_file(tmp_path: Path) -> None:
    env = sqlite_env(tmp_path)
    cli(env, "db", "upgrade")
    key = KeyStore(tmp_path / "keys", "a passphrase").generate()
    key_file = tmp_path / "keys" / f"{key.kid}.key.json"
    result = serve_to_exit(env)
    assert_key_file_error(result, key_file)


def test_with_passphrase_the_generated_key_is_encrypted_pkcs8_and_signs(
    tmp_path: Path, start_server: StartServer
) -> None:
    server = start_server(sqlite_env(tmp_path, AUTHSERVER_KEY_PASSPHRASE="correct horse"))
    key_files = list(server.keys_dir.glob(KEY_FILE_GLOB))
    assert len(key_files) == 1
    raw = key_files[0].read_text()
    pem = json.loads(raw)["private_key"]
    assert pem.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert "-----BEGIN PRIVATE KEY-----" not in raw
    assert stat.S_IMODE(key_files[0].stat().st_mode) == 0o600
    assert requests.get(f"{server.url}/readyz", timeout=5).status_code == 200
    assert_new_client_gets_a_verifiable_token(server)


def test_with_passphrase_an_existing_unencrypted_key_still_loads(
    tmp_path: Path, keys_dir: Path, start_server: StartServer
) -> None:
    env = sqlite_env(
        tmp_path, AUTHSERVER_KEYS_DIR=str(keys_dir), AUTHSERVER_KEY_PASSPHRASE="correct horse"
    )
    server = start_server(env)
    assert len(list(keys_dir.glob(KEY_FILE_GLOB))) == 1
    assert_new_client_gets_a_verifiable_token(server)


# --- IPv6 ---


@pytest.mark.parametrize("host", ["::1", "::"])
def test_serve_on_an_ipv6_host_issues_tokens_over_ipv6(tmp_path: Path, host: str) -> None:
    """Finding 9: ``--host ::1`` refused to start (the port check made an IPv4 socket)."""
    env = sqlite_env(tmp_path)
    cli(env, "db", "upgrade")
    client = create_client(env)
    with Servers(tmp_path) as servers:
        server = servers.start(env, workers=1, host=host)
        response = requests.post(
            f"{server.url}/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=(client["client_id"], client["client_secret"]),
            timeout=10,
        )
        assert server.url.startswith("http://[::1]:")
        assert response.status_code == 200, response.text
        assert f"serving on http://[{host}]:{server.port}" in server.stderr()
