"""The floor: what a token answer costs on this machine with our HTTP server and nothing else.

A minimal RSGI app served by granian with ``authserver serve``'s settings (a worker per CPU,
HTTP/1.1, the same listen backlog): it reads the body, signs RFC 9068-shaped claims with joserfc
(RS256, 2048-bit RSA, like ours) and answers JSON. No authentication, logs, metrics or limits.
Measured head to head with ours and the peer, it shows how much of a token's CPU is the server
and the signature, which no auth server on this stack can go below (docs/performance.md).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from joserfc import jwt
from joserfc.jwk import RSAKey

from authserver.cli.granian_app import LISTEN_BACKLOG
from tests.support.postgres import free_port
from tests.support.server import Server

ROOT = Path(__file__).resolve().parents[2]
START_SECONDS = 30
HEADER = {"typ": "at+jwt", "alg": "RS256", "kid": "floor"}
ANSWER_HEADERS = [("content-type", "application/json"), ("cache-control", "no-store")]


def app_factory() -> Callable[[Any, Any], Awaitable[None]]:
    """granian's factory: one key per worker, generated at start."""
    key = RSAKey.generate_key(2048, parameters={"kid": "floor"})

    async def app(scope: Any, protocol: Any) -> None:
        await protocol()
        now = int(time.time())
        claims = {
            "iss": "http://127.0.0.1",
            "sub": "floor",
            "aud": "http://127.0.0.1",
            "exp": now + 3600,
            "iat": now,
            "jti": secrets.token_urlsafe(16),
            "client_id": "floor",
            "scope": "api",
        }
        token = jwt.encode(HEADER, claims, key, algorithms=["RS256"])
        body = {"access_token": token, "token_type": "Bearer", "expires_in": 3600, "scope": "api"}
        protocol.response_bytes(200, ANSWER_HEADERS, json.dumps(body).encode())

    return app


@contextmanager
def floor_running(directory: Path) -> Iterator[tuple[str, int]]:
    """The floor app on a free port (its output in ``directory``): yields its URL and pid, and
    stops its whole process group on exit (a worker still starting must not outlive it)."""
    port = free_port()
    command = [
        *(sys.executable, "-m", "granian", "--interface", "rsgi", "--factory", "--http", "1"),
        *("--workers", str(os.cpu_count() or 1), "--backlog", str(LISTEN_BACKLOG)),
        *("--no-ws", "--log-level", "warning", "--port", str(port)),
        f"{__name__}:{app_factory.__name__}",
    ]
    log = directory / "floor.log"
    handle = log.open("wb")
    process = subprocess.Popen(
        command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=handle, stderr=handle,
        start_new_session=True,
    )  # fmt: skip
    server = Server(process, port, dict(os.environ), log, handle)
    try:
        _wait_until_up(server.url + "/oauth2/token", process)
        yield server.url + "/oauth2/token", process.pid
    finally:
        server.kill()


def _wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the floor app exited with {process.returncode}")
        try:
            if requests.post(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the floor app did not answer within {START_SECONDS} s")
