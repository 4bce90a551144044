"""The audit trail and ``last_used_at``, observed from outside: a real ``authserver serve``
(granian, two workers) and real ``authserver`` commands, whose stderr is captured and parsed.

Audit events are JSON lines on stderr; other lines (granian's, the CLI's messages) are
ignored by the parser but still searched for leaked secrets.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.cli import RunCli, base_env, make_runner, ok, ok_json
from tests.support.cli_in_process import make_in_process_runner, run_in_process
from tests.support.server import Server, Servers
from tests.support.waiting import wait_until

#: Audit lines are written as requests finish; give a worker this long to get them out.
LOG_WAIT_SECONDS = 5
#: Maintenance flushes last-used times every 5 s (contract: written at most once a minute).
LAST_USED_WAIT_SECONDS = 12


def audit_events(text: str) -> list[dict[str, Any]]:
    """Every line that starts with ``{`` must be a JSON object: an audit event."""
    events = []
    for line in text.splitlines():
        if line.startswith("{"):
            event = json.loads(line)
            assert isinstance(event, dict), line
            events.append(event)
    return events


@dataclass
class Cli:
    """Runs ``authserver`` commands and keeps everything they wrote to stderr.

    In process by default; ``script`` runs the console script, one process per command.
    """

    env: dict[str, str]
    stderr: list[str] = field(default_factory=list)
    script: bool = False

    def run(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        runner: RunCli = (make_runner if self.script else make_in_process_runner)(self.env)
        result = ok(runner(*args, input=input))
        self.stderr.append(result.stderr)
        return result

    def json(self, *args: str, input: str | None = None) -> Any:
        return ok_json(self.run(*args, "--json", input=input))

    def events(self, result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
        return audit_events(result.stderr)


def wait_for_event(server: Server, **match: Any) -> dict[str, Any]:
    """The first audit event with all of ``match``'s fields, waiting a little for it."""

    def found() -> dict[str, Any] | None:
        for event in audit_events(server.stderr()):
            if all(event.get(name) == value for name, value in match.items()):
                return event
        return None

    return wait_until(
        found,
        LOG_WAIT_SECONDS,
        f"an audit event with {match} in the server's stderr",
        detail=server.stderr,
    )


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, _template_keys_dir: Path) -> dict[str, str]:
    """A migrated SQLite database and a keys folder holding one signing key (a copy of the
    session's), so that commands run before the server starts find a key that signs."""
    directory = tmp_path_factory.mktemp("audit")
    shutil.copytree(_template_keys_dir, directory / "keys")
    env = base_env(f"sqlite:///{directory / 'authserver.db'}", directory / "keys")
    ok(run_in_process(env, "db", "upgrade"))
    return env


@pytest.fixture
def cli(env: dict[str, str]) -> Cli:
    """This test's commands, with their own stderr transcript."""
    return Cli(env)


@pytest.fixture(scope="module")
def server(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``authserver serve --workers 2`` on a free port, shared by this module's tests (each
    uses its own clients and finds its events by request id or client id); its process group
    is killed at the end."""
    with Servers(tmp_path_factory.mktemp("serve")) as servers:
        yield servers.start(env)


def create(cli: Cli, name: str = "svc", *options: str, input: str | None = None) -> dict[str, Any]:
    created: dict[str, Any] = cli.json(
        "clients", "create", "--name", name, "--scope", "api", *options, input=input
    )
    return created


def token_request(
    server: Server, client_id: str, secret: str, *, post: bool = False, **headers: str
) -> requests.Response:
    form = {"grant_type": "client_credentials"}
    if post:
        form.update(client_id=client_id, client_secret=secret)
        return requests.post(f"{server.url}/oauth2/token", data=form, headers=headers, timeout=10)
    return requests.post(
        f"{server.url}/oauth2/token",
        data=form,
        auth=(client_id, secret),
        headers=headers,
        timeout=10,
    )


def token_requests_on_one_connection(server: Server, *clients: dict[str, Any]) -> list[int]:
    """The statuses of a token request for each client in turn, all sent on one kept-alive
    connection, so that one worker answers them all."""
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    statuses = []
    try:
        for client in clients:
            basic = base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode())
            headers = {
                "Authorization": f"Basic {basic.decode()}",
                "Content-Type": "application/x-www-form-urlencoded",
            }
            connection.request("POST", "/oauth2/token", "grant_type=client_credentials", headers)
            response = connection.getresponse()
            response.read()
            assert not response.will_close, "the server closed the connection"
            statuses.append(response.status)
    finally:
        connection.close()
    return statuses


def request_id_of(response: requests.Response) -> str:
    request_id = response.headers.get("X-Request-ID")
    assert request_id, f"no X-Request-ID on {response.request.url}"
    return request_id


# --- admin changes from the CLI -------------------------------------------------------------


def test_cli_admin_changes_are_audited_with_the_client_id_and_a_cli_request_id(
    env: dict[str, str],
) -> None:
    """The first and the last command through the console script (the request id is one per
    process: theirs differ); the ones between in process, as a new process would run them."""
    script, in_process = Cli(env, script=True), Cli(env)
    created_result = script.run("clients", "create", "--name", "svc", "--scope", "api", "--json")
    client_id = json.loads(created_result.stdout)["client_id"]
    commands = [
        (["clients", "rotate-secret", client_id, "--json"], "client.secret_rotated"),
        (["clients", "disable", client_id], "client.disabled"),
        (["clients", "enable", client_id], "client.enabled"),
        (["clients", "delete", client_id], "client.deleted"),
    ]
    seen = [(script.events(created_result), "client.created")]
    for args, expected in commands:
        seen.append((in_process.events(in_process.run(*args)), expected))
    rotated_key = script.events(key_result := script.run("keys", "rotate", "--json"))

    request_ids = set()
    for events, expected in seen:
        assert [e["event"] for e in events] == [expected]
        (event,) = events
        assert event["client_id"] == client_id
        assert event["outcome"] == "success"
        assert event["request_id"].startswith("cli-")
        request_ids.add(event["request_id"])
    assert len(request_ids) == len(seen), "each command has its own request id"
    (key_event,) = rotated_key
    assert key_event["event"] == "key.rotated"
    assert key_event["outcome"] == "success"
    assert key_event["request_id"].startswith("cli-")
    assert key_event["kid"] == json.loads(key_result.stdout)["kid"]
    assert key_event["request_id"] not in request_ids


# --- the server -----------------------------------------------------------------------------


def test_token_issuance_is_audited_with_the_client_id_and_the_responses_request_id(
    cli: Cli, server: Server
) -> None:
    created = create(cli)
    client_id = created["client_id"]

    response = token_request(server, client_id, created["client_secret"])

    assert response.status_code == 200, response.text
    request_id = request_id_of(response)
    event = wait_for_event(server, event="token.issued", request_id=request_id)
    assert event["client_id"] == client_id
    assert event["outcome"] == "success"


def test_a_request_id_sent_by_the_client_is_echoed_and_logged(cli: Cli, server: Server) -> None:
    created = create(cli)
    supplied = f"trace-{uuid.uuid4().hex}"

    response = token_request(
        server, created["client_id"], created["client_secret"], **{"X-Request-ID": supplied}
    )

    assert response.status_code == 200, response.text
    assert response.headers["X-Request-ID"] == supplied
    event = wait_for_event(server, event="token.issued", request_id=supplied)
    assert event["client_id"] == created["client_id"]


def test_an_unsafe_request_id_is_replaced_not_echoed_or_logged(cli: Cli, server: Server) -> None:
    created = create(cli)
    unsafe = 'x","event":"forged'

    response = token_request(
        server, created["client_id"], created["client_secret"], **{"X-Request-ID": unsafe}
    )

    assert response.status_code == 200, response.text
    replacement = request_id_of(response)
    assert replacement != unsafe
    event = wait_for_event(server, event="token.issued", request_id=replacement)
    assert event["client_id"] == created["client_id"]
    assert "forged" not in server.stderr()


def test_each_request_without_an_id_gets_a_distinct_one(cli: Cli, server: Server) -> None:
    created = create(cli)
    ids = {
        request_id_of(token_request(server, created["client_id"], created["client_secret"]))
        for _ in range(3)
    }
    assert len(ids) == 3


@pytest.mark.parametrize("post", [False, True], ids=["basic", "post"])
def test_failed_client_authentication_is_audited_with_the_client_id(
    cli: Cli, server: Server, post: bool
) -> None:
    created = create(cli)
    wrong = f"ascs_wrong{uuid.uuid4().hex}"

    response = token_request(server, created["client_id"], wrong, post=post)

    assert response.status_code == 401, response.text
    event = wait_for_event(
        server, event="client.authentication", request_id=request_id_of(response)
    )
    assert event["client_id"] == created["client_id"]
    assert event["outcome"] == "failure"
    assert wrong not in server.stderr()


def test_an_over_long_client_id_is_audited_by_its_length_never_logged(
    server: Server,
) -> None:
    """Logged whole, 40 KB ids would turn the audit trail into the attacker's disk filler."""
    long_id = f"cli_{uuid.uuid4().hex}" + "x" * 40_000

    response = token_request(server, long_id, "wrong", post=True)

    assert response.status_code == 401, response.text
    event = wait_for_event(
        server, event="client.authentication", request_id=request_id_of(response)
    )
    assert event["client_id"] is None
    assert event["client_id_length"] == len(long_id)
    assert long_id[:36] not in server.stderr()


def test_revocation_is_audited_with_the_client_id_and_request_id(cli: Cli, server: Server) -> None:
    created = create(cli)
    credentials = (created["client_id"], created["client_secret"])
    issued = token_request(server, *credentials)
    token = issued.json()["access_token"]

    response = requests.post(
        f"{server.url}/oauth2/revoke", data={"token": token}, auth=credentials, timeout=10
    )

    assert response.status_code == 200, response.text
    event = wait_for_event(server, event="token.revocation", request_id=request_id_of(response))
    assert event["client_id"] == created["client_id"]
    assert isinstance(event["outcome"], str)
    assert event["outcome"]


def test_logs_never_contain_a_secret_a_token_or_private_key_material(
    cli: Cli, server: Server
) -> None:
    secrets: list[str] = []
    tokens: list[str] = []

    first = create(cli, "first")
    secrets.append(first["client_secret"])
    rotated = cli.json("clients", "rotate-secret", first["client_id"], "--grace", "60")
    secrets.append(rotated["client_secret"])
    chosen = f"migrated-Secret-{uuid.uuid4().hex}"
    migrated = create(cli, "migrated", "--secret-stdin", input=chosen + "\n")
    secrets.append(chosen)
    cli.run("keys", "rotate", "--now", "--json")
    cli.run("clients", "show", first["client_id"], "--json")

    for client_id, secret, post in [
        (first["client_id"], secrets[0], False),
        (first["client_id"], secrets[1], True),
        (migrated["client_id"], chosen, False),
    ]:
        response = token_request(server, client_id, secret, post=post)
        assert response.status_code == 200, response.text
        tokens.append(response.json()["access_token"])
    for client_id, post in [(first["client_id"], False), (migrated["client_id"], True)]:
        wrong = f"{chosen}-wrong-{int(post)}"
        secrets.append(wrong)
        assert token_request(server, client_id, wrong, post=post).status_code == 401
    introspected = requests.post(
        f"{server.url}/oauth2/introspect",
        data={"token": tokens[0]},
        auth=(migrated["client_id"], chosen),
        timeout=10,
    )
    assert introspected.json()["active"] is True
    for token in tokens:
        revoked = requests.post(
            f"{server.url}/oauth2/revoke",
            data={"token": token},
            auth=(first["client_id"], secrets[1]),
            timeout=10,
        )
        assert revoked.status_code == 200
    # A secret sent where no secret belongs must not be echoed into the logs either.
    misplaced = requests.post(
        f"{server.url}/oauth2/token",
        data={"grant_type": "client_credentials", "scope": secrets[1]},
        auth=(first["client_id"], secrets[1]),
        timeout=10,
    )
    assert misplaced.status_code == 400
    cli.run("clients", "disable", migrated["client_id"])
    cli.run("clients", "delete", migrated["client_id"])
    wait_for_event(server, event="token.revocation", client_id=first["client_id"])
    wait_for_event(server, event="client.authentication", client_id=migrated["client_id"])

    logs = {"server": server.stderr(), **{f"cli #{i}": s for i, s in enumerate(cli.stderr)}}
    events = [e["event"] for text in logs.values() for e in audit_events(text)]
    for expected in (
        "client.created",
        "client.secret_rotated",
        "key.rotated",
        "token.issued",
        "client.authentication",
        "token.revocation",
        "client.disabled",
        "client.deleted",
    ):
        assert expected in events, f"{expected} missing from {events}"
    for where, text in logs.items():
        for secret in secrets:
            assert secret not in text, f"a client secret appears in the {where} stderr"
        for token in tokens:
            assert token not in text, f"an access token appears in the {where} stderr"
            signature = token.rsplit(".", 1)[1]
            assert signature not in text, f"a token signature appears in the {where} stderr"
        assert "PRIVATE KEY" not in text, f"private key material in the {where} stderr"
        assert "$sha256$" not in text, f"a secret hash in the {where} stderr"
        assert "$argon2" not in text, f"a secret hash in the {where} stderr"


# --- last_used_at ---------------------------------------------------------------------------


def _show(cli: Cli, client_id: str) -> dict[str, Any]:
    shown: dict[str, Any] = cli.json("clients", "show", client_id)
    return shown


def _written(env: dict[str, str], client_id: str) -> bool:
    """Whether the server has written the client's last_used_at, read straight from the
    SQLite file: a cheap way to see the write happen (what the CLI shows is checked apart)."""
    path = env["AUTHSERVER_DATABASE_URL"].removeprefix("sqlite:///")
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as database:
        query = "SELECT last_used_at FROM clients WHERE client_id = ?"
        (last_used_at,) = database.execute(query, (client_id,)).fetchone()
    return last_used_at is not None


def _parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


def test_last_used_at_is_recorded_within_seconds_and_written_at_most_once_a_minute(
    cli: Cli, server: Server
) -> None:
    used = create(cli, "used")
    failing = create(cli, "only fails")
    witness = create(cli, "witness")
    assert _show(cli, used["client_id"])["last_used_at"] is None

    before = datetime.now(UTC)
    assert token_request(server, used["client_id"], used["client_secret"]).status_code == 200
    after = datetime.now(UTC)
    assert token_request(server, failing["client_id"], "ascs_wrong").status_code == 401

    first = wait_until(
        lambda: _show(cli, used["client_id"])["last_used_at"],
        LAST_USED_WAIT_SECONDS,
        "last_used_at set",
        interval=0.5,
    )
    assert before - timedelta(seconds=1) <= _parse(first) <= after + timedelta(seconds=1)

    # (In a later second than the first use, so that a rewrite would show in the CLI's
    # whole-second times; normally that second has long begun.)
    wait_until(
        lambda: datetime.now(UTC) >= _parse(first) + timedelta(seconds=1),
        2,
        "a second after the first use",
    )
    # More successful requests within the minute, then a first use of the witness, all
    # answered by one worker (one connection). The worker writes every use it holds in one
    # round, so once the witness's last_used_at is set, those uses have been written too ...
    assert token_requests_on_one_connection(server, *[used] * 4, witness) == [200] * 5
    wait_until(
        lambda: _written(cli.env, witness["client_id"]),
        LAST_USED_WAIT_SECONDS,
        "a last-used round after the further requests",
    )
    times = {view["client_id"]: view["last_used_at"] for view in cli.json("clients", "list")}
    assert times[witness["client_id"]] is not None

    # ... and left it as it was; and a failed authentication never counts as a use.
    assert times[used["client_id"]] == first
    assert times[failing["client_id"]] is None
