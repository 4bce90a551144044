"""Requests the WSGI server itself cannot parse still get a JSON OAuth error, never HTML or
a 5xx: the real ``authserver serve`` behind raw sockets."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from tests.support.cli import run_authserver, sqlite_env
from tests.support.server import Server, Servers


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("parse-errors")
    env = sqlite_env(directory)
    assert run_authserver(env, "db", "upgrade").returncode == 0
    with Servers(directory) as servers:
        yield servers.start(env, workers=1)


def raw_request(server: Server, request: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        connection.sendall(request)
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"POST /oauth2/token?" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n", 431),
        (
            b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\n"
            + b"".join(b"X-H%d: v\r\n" % i for i in range(120))
            + b"\r\n",
            431,
        ),
        (b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
        (b"GARBAGE\r\n\r\n", 400),
    ],
    ids=["long-request-line", "long-header", "too-many-headers", "transfer-coding", "garbage"],
)
def test_unparseable_requests_get_a_json_oauth_error(
    server: Server, request_bytes: bytes, status: int
) -> None:
    got_status, headers, body = raw_request(server, request_bytes)
    assert got_status == status
    assert headers["Content-Type"] == "application/json"
    assert headers["Cache-Control"] == "no-store"
    assert json.loads(body)["error"] == "invalid_request"


def test_server_keeps_serving_after_unparseable_requests(server: Server) -> None:
    raw_request(server, b"GARBAGE\r\n\r\n")
    status, _, _ = raw_request(
        server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert status == 200
    assert "Traceback" not in server.stderr()
