"""``examples/fastapi-resource/app.py`` under uvicorn in a real process, protected by
``authserver.resource`` against a real ``authserver serve``: tokens are issued over HTTP and the
API fetches the keys over HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.postgres import free_port
from tests.support.served import ServedAuthServer, served_auth_server
from tests.support.waiting import wait_until

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "fastapi-resource"
API = "https://tasks.example.test"
STARTUP_TIMEOUT_SECONDS = 30


@dataclass
class Uvicorn:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def start_example(issuer: str, log: Path) -> Uvicorn:
    """``python -m uvicorn app:app`` from the example's folder, waited for on /healthz."""
    port = free_port()
    env = {**os.environ, "AUTHSERVER_ISSUER": issuer, "API_AUDIENCE": API}
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "app:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=EXAMPLE,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Uvicorn(process, f"http://127.0.0.1:{port}", log)

    def healthy() -> bool:
        if process.poll() is not None:
            pytest.fail(f"uvicorn exited with {process.returncode}:\n{log.read_text()}")
        try:
            return httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(
            healthy,
            STARTUP_TIMEOUT_SECONDS,
            "the example answering /healthz",
            interval=0.1,
            detail=log.read_text,
        )
    except AssertionError:
        server.stop()
        raise
    return server


@pytest.fixture(scope="module")
def auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedAuthServer]:
    with served_auth_server(tmp_path_factory.mktemp("auth")) as served:
        yield served


@pytest.fixture(scope="module")
def example(auth: ServedAuthServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = start_example(auth.issuer, tmp_path_factory.mktemp("example") / "uvicorn.log")
    yield server.url
    server.stop()


def issue(auth: ServedAuthServer, client: dict[str, Any]) -> str:
    response = httpx.post(
        auth.token_url,
        auth=(client["client_id"], client["client_secret"]),
        data={"grant_type": "client_credentials"},
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


@pytest.fixture(scope="module")
def reader(auth: ServedAuthServer) -> dict[str, Any]:
    return auth.create_client("--name", "reader", "--scope", "tasks:read", "--audience", API)


@pytest.fixture(scope="module")
def reader_token(auth: ServedAuthServer, reader: dict[str, Any]) -> str:
    return issue(auth, reader)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_token_with_scope_gets_the_tasks(
    example: str, reader: dict[str, Any], reader_token: str
) -> None:
    response = httpx.get(f"{example}/tasks", headers=bearer(reader_token))
    assert response.status_code == 200
    body = response.json()
    assert body["client_id"] == reader["client_id"]
    assert body["tasks"][0]["title"] == "Rotate the signing key"


def test_writer_can_add_a_task(example: str, auth: ServedAuthServer) -> None:
    writer = auth.create_client(
        "--name", "writer", "--scope", "tasks:read tasks:write", "--audience", API
    )
    response = httpx.post(
        f"{example}/tasks", params={"title": "ship it"}, headers=bearer(issue(auth, writer))
    )
    assert response.status_code == 201
    assert response.json()["by"] == writer["client_id"]


def test_no_token_is_401_with_a_bare_challenge(example: str) -> None:
    response = httpx.get(f"{example}/tasks")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == f'Bearer realm="{API}"'
    assert "error=" not in response.headers["WWW-Authenticate"]


def test_invalid_token_is_401_invalid_token(example: str, reader_token: str) -> None:
    header, payload, signature = reader_token.split(".")
    for bad in ("garbage", f"{header}.{payload}.{signature[::-1]}"):
        response = httpx.get(f"{example}/tasks", headers=bearer(bad))
        assert response.status_code == 401
        challenge = response.headers["WWW-Authenticate"]
        assert challenge.startswith(f'Bearer realm="{API}", error="invalid_token", ')
        assert response.json()["detail"]["error"] == "invalid_token"
        assert bad not in response.text


def test_token_for_another_audience_is_401(example: str, auth: ServedAuthServer) -> None:
    """The default audience (the issuer) is not this API."""
    stranger = auth.create_client("--name", "stranger", "--scope", "tasks:read")
    response = httpx.get(f"{example}/tasks", headers=bearer(issue(auth, stranger)))
    assert response.status_code == 401
    assert 'error_description="invalid aud claim"' in response.headers["WWW-Authenticate"]


def test_missing_scope_is_403_insufficient_scope(example: str, reader_token: str) -> None:
    response = httpx.post(f"{example}/tasks", params={"title": "x"}, headers=bearer(reader_token))
    assert response.status_code == 403
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith(f'Bearer realm="{API}", error="insufficient_scope", ')
    assert challenge.endswith('scope="tasks:write"')
    assert response.json()["detail"]["error"] == "insufficient_scope"


def test_unreachable_issuer_is_503(reader_token: str, tmp_path: Path) -> None:
    """An API whose issuer is down answers 503 (try again), not 401 (your token is bad)."""
    server = start_example(f"http://127.0.0.1:{free_port()}", tmp_path / "uvicorn.log")
    try:
        response = httpx.get(f"{server.url}/tasks", headers=bearer(reader_token))
        assert response.status_code == 503
        assert response.json()["detail"]["error"] == "temporarily_unavailable"
    finally:
        server.stop()
