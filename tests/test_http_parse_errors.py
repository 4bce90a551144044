"""Malformed HTTP against the real ``authserver serve`` through raw sockets: never a 5xx.

Oversized but well-formed requests reach the app and get its JSON OAuth error. Requests the
HTTP server (granian) cannot parse get its 4xx with an empty body and a closed connection.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from tests.support.cli import sqlite_env
from tests.support.cli_in_process import run_in_process
from tests.support.server import Server, Servers


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("parse-errors")
    env = sqlite_env(directory)
    assert run_in_process(env, "db", "upgrade").returncode == 0
    with Servers(directory) as servers:
        yield servers.start(env, workers=1)


#: Connections are kept alive otherwise, and the reads below wait for the server to close.
CLOSE = b"Connection: close\r\n\r\n"


def raw_request(server: Server, request: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        connection.sendall(request)
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {
        name.lower(): value for name, value in (line.split(": ", 1) for line in header_lines)
    }
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST /oauth2/token?" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n" + CLOSE,
        b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n" + CLOSE,
    ],
    ids=["long-request-line", "long-header"],
)
def test_long_but_well_formed_requests_get_a_json_oauth_error(
    server: Server, request_bytes: bytes
) -> None:
    status, headers, body = raw_request(server, request_bytes)
    assert status == 400
    assert headers["content-type"] == "application/json"
    assert headers["cache-control"] == "no-store"
    assert json.loads(body)["error"] == "invalid_request"


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (
            b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\n"
            + b"".join(b"X-H%d: v\r\n" % i for i in range(120))
            + b"\r\n",
            431,
        ),
        (b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
        (b"GARBAGE\r\n\r\n", 400),
    ],
    ids=["too-many-headers", "transfer-coding", "garbage"],
)
def test_unparseable_requests_get_a_4xx_and_the_connection_closes(
    server: Server, request_bytes: bytes, status: int
) -> None:
    """These never reach the app: the HTTP server answers with an empty body, never a 5xx."""
    got_status, headers, body = raw_request(server, request_bytes)
    assert got_status == status
    assert headers["connection"] == "close"
    assert body == b""


def test_server_keeps_serving_after_unparseable_requests(server: Server) -> None:
    raw_request(server, b"GARBAGE\r\n\r\n")
    status, _, _ = raw_request(
        server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert status == 200
    assert "Traceback" not in server.stderr()
