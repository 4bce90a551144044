"""Slow and stalled clients against the real server (``authserver serve``, granian, two workers).

A client that announces a body and stops sending, or sends its request head a byte at a time,
must cost a pending connection and nothing else: no worker waits for it, every other client is
served, and the stalled request ends with 408 at the body deadline.
"""

from __future__ import annotations

import base64
import json
import resource
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest
import requests

from tests.support.cli import ok, sqlite_env
from tests.support.cli_in_process import run_in_process
from tests.support.server import Server, Servers

#: What a well-behaved client may wait for one answer while the attack goes on. Without the
#: buffering front, every request here waited until the stalled sockets closed.
ANSWER_TIMEOUT_SECONDS = 5
STALLED_BODY = (
    b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\n"
    b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type"
)
SLOW_HEAD = b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\n"


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return ok(run_in_process(env, *args))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, Any]]]:
    """One server for the module: every attack here ends with its connections, and the
    Argon2id guesses stay well under the per-address limit."""
    tmp_path = tmp_path_factory.mktemp("slow-clients")
    env = sqlite_env(tmp_path, AUTHSERVER_REQUEST_BODY_TIMEOUT="2")
    cli(env, "db", "upgrade")
    client = json.loads(
        cli(env, "clients", "create", "--name", "svc", "--scope", "api", "--json").stdout
    )
    with Servers(tmp_path) as servers:
        yield servers.start(env), client


@contextmanager
def open_connections(port: int, count: int, head: bytes) -> Iterator[list[socket.socket]]:
    """``count`` connections that each sent ``head`` and then nothing more."""
    with ExitStack() as stack:
        sockets = []
        for _ in range(count):
            sock = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=5))
            sock.sendall(head)
            sockets.append(sock)
        yield sockets


def token_request(server: Server, client: dict[str, Any]) -> requests.Response:
    """A normal client: a new connection, a complete request."""
    with requests.Session() as session:
        return session.post(
            f"{server.url}/oauth2/token",
            data={"grant_type": "client_credentials", "scope": "api"},
            auth=(client["client_id"], client["client_secret"]),
            timeout=ANSWER_TIMEOUT_SECONDS,
        )


@pytest.fixture
def many_file_descriptors() -> None:
    """The test process holds over a thousand sockets at once."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4096
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"the hard limit on open files is {hard}; this test needs {wanted}")
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


@pytest.mark.usefixtures("many_file_descriptors")
def test_stalled_bodies_and_slow_heads_do_not_hold_the_workers(
    served: tuple[Server, dict[str, Any]],
) -> None:
    server, client = served
    with (
        open_connections(server.port, 200, STALLED_BODY),
        open_connections(server.port, 1000, SLOW_HEAD),
    ):
        answers = [token_request(server, client) for _ in range(30)]
        health = requests.get(f"{server.url}/healthz", timeout=ANSWER_TIMEOUT_SECONDS)
        jwks = requests.get(f"{server.url}/.well-known/jwks.json", timeout=ANSWER_TIMEOUT_SECONDS)
    assert [answer.status_code for answer in answers] == [200] * 30
    assert health.status_code == 200
    assert jwks.status_code == 200


def read_until_closed(sock: socket.socket) -> bytes:
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def test_a_stalled_body_ends_with_408_and_a_closed_connection(
    served: tuple[Server, dict[str, Any]],
) -> None:
    server, _ = served
    with open_connections(server.port, 1, STALLED_BODY) as (sock,):
        sock.settimeout(10)
        answer = read_until_closed(sock)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ")
    assert b"connection: close" in head.lower()
    assert json.loads(body)["error"] == "invalid_request"
    assert '"status":408' in server.stderr().replace(" ", "")


def test_a_body_cut_short_is_not_served(served: tuple[Server, dict[str, Any]]) -> None:
    """The client announced the whole form and hung up before ``&scope=api``: served, the
    truncated form would get a token for every scope of the client."""
    server, client = served
    form = b"grant_type=client_credentials&scope=api"
    credentials = f"{client['client_id']}:{client['client_secret']}".encode()
    head = (
        b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Authorization: Basic " + base64.b64encode(credentials) + b"\r\n"
        b"Content-Length: %d\r\n\r\n" % len(form)
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head + form[: form.index(b"&scope")])
        sock.shutdown(socket.SHUT_WR)
        answer = read_until_closed(sock)
    assert b"access_token" not in answer
    assert answer == b"" or answer.startswith(b"HTTP/1.1 400 ")


def chunked_token_request(server: Server, client: dict[str, Any], form: bytes) -> requests.Response:
    """``requests`` sends a generator body with ``Transfer-Encoding: chunked``."""

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(form), 8192):
            yield form[start : start + 8192]

    return requests.post(
        f"{server.url}/oauth2/token",
        data=chunks(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        auth=(client["client_id"], client["client_secret"]),
        timeout=ANSWER_TIMEOUT_SECONDS,
    )


def test_a_chunked_body_over_64_kib_is_refused_not_cut(
    served: tuple[Server, dict[str, Any]],
) -> None:
    """65,586 bytes: cut at 64 KiB, the form lost its trailing scope and got every scope."""
    server, client = served
    padding = b"x" * (64 * 1024)
    form = b"grant_type=client_credentials&padding=" + padding + b"&scope=api"
    answer = chunked_token_request(server, client, form)
    assert answer.status_code == 413
    assert answer.json()["error"] == "invalid_request"


def test_a_chunked_body_under_the_limit_is_served(served: tuple[Server, dict[str, Any]]) -> None:
    server, client = served
    answer = chunked_token_request(server, client, b"grant_type=client_credentials&scope=api")
    assert answer.status_code == 200
    assert answer.json()["scope"] == "api"


# --- Argon2id checks run beside the event loop, never on it ----------------------------------

CHOSEN_SECRET = "migrated-secret-0123456789"


def admin_chosen_client(server: Server, name: str) -> dict[str, Any]:
    """A client whose secret an admin chose: each unremembered check is ~250 ms of Argon2id."""
    result = ok(
        run_in_process(
            server.env,
            *("clients", "create", "--name", name, "--scope", "api", "--secret-stdin", "--json"),
            input=CHOSEN_SECRET,
        )
    )
    return json.loads(result.stdout)


def wrong_guess(server: Server, client_id: str) -> tuple[int, str | None, float]:
    """A guess for an admin-chosen secret: status, Retry-After, and when the answer came."""
    with requests.Session() as session:
        answer = session.post(
            f"{server.url}/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=(client_id, "wrong-guess-0123456789"),
            timeout=30,
        )
    return answer.status_code, answer.headers.get("Retry-After"), time.monotonic()


def test_argon2id_guesses_hold_up_no_other_client(served: tuple[Server, dict[str, Any]]) -> None:
    """Run on the event loop, four guesses (a second of Argon2id) held every token behind
    them: a client with a generated secret waited for the guesses to end."""
    server, client = served
    chosen = admin_chosen_client(server, "migrated-0")
    with ThreadPoolExecutor(4) as pool:
        guesses = [pool.submit(wrong_guess, server, chosen["client_id"]) for _ in range(4)]
        answers = [token_request(server, client) for _ in range(5)]
        served_by = time.monotonic()
        guessed = [guess.result() for guess in guesses]
    assert [answer.status_code for answer in answers] == [200] * 5
    assert {status for status, _, _ in guessed} <= {401, 503}
    assert served_by < max(answered for _, _, answered in guessed)


def test_a_full_slow_lane_answers_503_with_retry_after(
    served: tuple[Server, dict[str, Any]],
) -> None:
    server, _ = served
    chosen = [admin_chosen_client(server, f"migrated-{n}") for n in range(1, 3)]
    with ThreadPoolExecutor(16) as pool:
        guesses = [pool.submit(wrong_guess, server, c["client_id"]) for c in chosen * 8]
        statuses = [guess.result()[:2] for guess in guesses]
    assert {status for status, _ in statuses} == {401, 503}
    assert {retry_after for status, retry_after in statuses if status == 503} == {"1"}
    # Nothing is counted for a 503: the right secret still works once the lane is free.
    answer = requests.post(
        f"{server.url}/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(chosen[0]["client_id"], CHOSEN_SECRET),
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
