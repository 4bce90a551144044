"""The ``authserver`` commands against real databases.

What each command does is tested in process (``tests.support.cli_in_process``: the same
Click group, exit status and stdout/stderr, without a second of imports per command). The
console script itself, in real subprocesses, gets one test per command group here
(``db``, ``clients``, ``keys``) and ``python -m authserver``; ``serve`` is run for real in
tests/test_serve.py.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from authserver.app import create_app
from authserver.config import Settings
from authserver.extensions import db
from authserver.services import registrations
from tests.support.cli import (
    CLIENT_FIELDS,
    RunCli,
    assert_one_line_error,
    base_env,
    make_runner,
    ok,
    ok_json,
    run_python_module,
)
from tests.support.cli_in_process import make_in_process_runner

KEY_FIELDS = {"kid", "alg", "state", "created_at", "activates_at", "retires_at"}
URL_SAFE = re.compile(r"^[A-Za-z0-9_-]+$")


def assert_iso_utc(value: Any, *, near: datetime | None = None) -> datetime:
    assert isinstance(value, str)
    assert value.endswith("Z") or value.endswith("+00:00"), value
    moment = datetime.fromisoformat(value)
    assert moment.tzinfo is not None
    assert moment.utcoffset() == timedelta(0)
    if near is not None:
        assert abs(moment - near) < timedelta(minutes=5)
    return moment


@pytest.fixture
def env(sqlite_url: str, tmp_path: Path) -> dict[str, str]:
    return base_env(sqlite_url, tmp_path / "keys")


@pytest.fixture
def run_cli(env: dict[str, str]) -> RunCli:
    """``authserver`` in process."""
    return make_in_process_runner(env)


@pytest.fixture
def script(env: dict[str, str]) -> RunCli:
    """``authserver``, the console script, in a subprocess."""
    return make_runner(env)


@pytest.fixture
def cli(run_cli: RunCli, migrated_sqlite_url: str) -> RunCli:
    """``run_cli`` on a migrated database."""
    return run_cli


def create(cli: RunCli, *extra: str, name: str = "billing", scope: str = "api") -> dict[str, Any]:
    return ok_json(cli("clients", "create", "--name", name, "--scope", scope, *extra, "--json"))


# --- db upgrade ---


def test_db_upgrade_creates_the_schema_and_is_idempotent(script: RunCli, tmp_path: Path) -> None:
    """The ``db`` group through the console script."""
    assert_one_line_error(script("clients", "list", "--json"))  # not migrated yet
    ok(script("db", "upgrade"))
    assert (tmp_path / "authserver.db").is_file()
    ok(script("db", "upgrade"))
    assert ok_json(script("clients", "list", "--json")) == []


def test_command_on_unmigrated_database_exits_1_with_one_line(run_cli: RunCli) -> None:
    line = assert_one_line_error(run_cli("clients", "list"))
    assert "db upgrade" in line


# --- clients create ---


def test_create_json_is_the_client_object_plus_secret(cli: RunCli) -> None:
    before = datetime.now(UTC)
    created = create(
        cli, "--audience", "https://api.example.test", "--token-ttl", "600", scope="api read"
    )
    assert set(created) == CLIENT_FIELDS | {"client_secret"}
    assert created["name"] == "billing"
    assert created["scope"] == "api read"
    assert created["audiences"] == ["https://api.example.test"]
    assert created["token_ttl"] == 600
    assert created["enabled"] is True
    assert created["last_used_at"] is None
    assert_iso_utc(created["created_at"], near=before)


def test_create_without_optional_flags_has_no_audiences_and_null_ttl(cli: RunCli) -> None:
    created = create(cli)
    assert created["audiences"] == []
    assert created["token_ttl"] is None


def test_create_accepts_repeated_audiences_in_order(cli: RunCli) -> None:
    created = create(cli, "--audience", "https://a.example.test", "--audience", "urn:example:b")
    assert created["audiences"] == ["https://a.example.test", "urn:example:b"]


def test_generated_ids_and_secrets_are_unique_and_url_safe(cli: RunCli) -> None:
    first = create(cli)
    second = create(cli)
    for created in (first, second):
        assert URL_SAFE.match(created["client_id"]), created["client_id"]
        assert URL_SAFE.match(created["client_secret"]), created["client_secret"]
        assert len(created["client_secret"]) >= 32
    assert first["client_id"] != second["client_id"]
    assert first["client_secret"] != second["client_secret"]


def test_create_without_json_prints_a_working_secret_and_warns_on_stderr(
    cli: RunCli, env: dict[str, str]
) -> None:
    result = ok(cli("clients", "create", "--name", "billing", "--scope", "api"))
    listed = ok_json(cli("clients", "list", "--json"))
    assert len(listed) == 1
    client_id = listed[0]["client_id"]
    assert client_id in result.stdout
    candidates = set(re.findall(r"[A-Za-z0-9_-]{40,}", result.stdout))
    assert len(candidates) == 1, result.stdout
    assert registered_secret_works(env, client_id, candidates.pop())
    assert result.stderr.strip(), "the shown-once warning goes to stderr"


def test_create_json_writes_only_json_to_stdout(cli: RunCli) -> None:
    result = ok(cli("clients", "create", "--name", "billing", "--scope", "api", "--json"))
    json.loads(result.stdout)  # nothing else mixed in


def registered_secret_works(env: dict[str, str], client_id: str, secret: str) -> bool:
    """Checks the stored hash with the server's own verification, in-process, on the real DB."""
    settings = Settings(
        database_url=env["AUTHSERVER_DATABASE_URL"], keys_dir=Path(env["AUTHSERVER_KEYS_DIR"])
    )
    app = create_app(settings)
    with app.app_context():
        try:
            client = registrations.authenticate(db.session(), client_id, secret, datetime.now(UTC))
            return client is not None
        finally:
            db.session.remove()
            db.engine.dispose()


def test_secret_stdin_strips_one_trailing_newline_and_is_stored(
    cli: RunCli, env: dict[str, str]
) -> None:
    chosen = "Migrated secret: from old-server! ~42"
    result = cli(
        "clients", "create", "--name", "legacy", "--scope", "api", "--secret-stdin", "--json",
        input=chosen + "\n",
    )  # fmt: skip
    created = ok_json(result)
    assert created["client_secret"] == chosen
    assert registered_secret_works(env, created["client_id"], chosen)
    assert not registered_secret_works(env, created["client_id"], chosen + "\n")


def test_secret_stdin_without_trailing_newline_is_taken_verbatim(
    cli: RunCli, env: dict[str, str]
) -> None:
    created = ok_json(
        cli(
            "clients",
            "create",
            "--name",
            "legacy",
            "--scope",
            "api",
            "--secret-stdin",
            "--json",
            input="no-newline-secret",
        )  # fmt: skip
    )
    assert created["client_secret"] == "no-newline-secret"
    assert registered_secret_works(env, created["client_id"], "no-newline-secret")


@pytest.mark.parametrize(
    "stdin",
    ["", "\n", "bad\x01secret\n", "tab\tsecret\n", "two-newlines\n\n", "caf\u00e9-secret\n"],
    ids=["empty", "only-newline", "control", "tab", "two-trailing-newlines", "non-ascii"],
)
def test_secret_stdin_empty_or_non_printable_exits_1_and_creates_nothing(
    cli: RunCli, stdin: str
) -> None:
    result = cli(
        "clients", "create", "--name", "x", "--scope", "api", "--secret-stdin", input=stdin
    )
    assert_one_line_error(result)
    assert ok_json(cli("clients", "list", "--json")) == []


def test_the_console_script_runs_clients_commands_with_their_exit_statuses(
    script: RunCli, migrated_sqlite_url: str
) -> None:
    """The ``clients`` group through the console script (the tests around run the same
    commands in process): 0 with the JSON object, 1 with one line naming an unknown client,
    2 with Click's usage message, never a traceback."""
    created = create(script)
    assert set(created) == CLIENT_FIELDS | {"client_secret"}
    shown = ok_json(script("clients", "show", created["client_id"], "--json"))
    assert shown == {k: v for k, v in created.items() if k != "client_secret"}

    unknown = script("clients", "show", "cli_doesnotexist")
    assert "cli_doesnotexist" in assert_one_line_error(unknown)
    assert unknown.stdout == ""

    usage = script("clients", "create", "--name", "x", "--scope", "api", "--bogus")
    assert usage.returncode == 2, usage.stderr
    assert "Traceback" not in usage.stderr
    assert "Usage:" in usage.stderr
    assert "Error:" in usage.stderr
    assert usage.stdout == ""


# --- list / show ---


def test_list_json_is_a_list_of_client_objects_without_secrets(cli: RunCli) -> None:
    first = create(cli, name="first")
    second = ok_json(
        cli(
            "clients",
            "create",
            "--name",
            "second",
            "--scope",
            "api",
            "--secret-stdin",
            "--json",
            input="a chosen secret, long enough\n",
        )  # fmt: skip
    )
    result = ok(cli("clients", "list", "--json"))
    listed = json.loads(result.stdout)
    assert isinstance(listed, list)
    assert {c["client_id"] for c in listed} == {first["client_id"], second["client_id"]}
    for view in listed:
        assert set(view) == CLIENT_FIELDS
    for secret in (first["client_secret"], second["client_secret"]):
        assert secret not in result.stdout
    for hash_marker in ("$sha256$", "$argon2", 'client_secret"', "ascs_"):
        assert hash_marker not in result.stdout


def test_list_json_on_empty_database_is_an_empty_list(cli: RunCli) -> None:
    result = ok(cli("clients", "list", "--json"))
    assert json.loads(result.stdout) == []


def test_list_without_json_shows_each_client_id(cli: RunCli) -> None:
    created = create(cli)
    result = ok(cli("clients", "list"))
    assert created["client_id"] in result.stdout
    assert created["client_secret"] not in result.stdout


def test_show_json_is_the_client_object_without_secret(cli: RunCli) -> None:
    created = create(cli, "--audience", "https://api.example.test")
    result = ok(cli("clients", "show", created["client_id"], "--json"))
    shown = json.loads(result.stdout)
    expected = {k: v for k, v in created.items() if k != "client_secret"}
    assert shown == expected
    assert created["client_secret"] not in result.stdout


def test_show_without_json_names_the_client_and_hides_the_secret(cli: RunCli) -> None:
    created = create(cli, name="Billing service")
    result = ok(cli("clients", "show", created["client_id"]))
    assert created["client_id"] in result.stdout
    assert "Billing service" in result.stdout
    assert created["client_secret"] not in result.stdout


# --- update ---


def test_update_audience_replaces_the_list_and_prints_the_updated_object(cli: RunCli) -> None:
    created = create(cli, "--audience", "https://a.example.test", "--audience", "https://b.test")
    result = ok(
        cli("clients", "update", created["client_id"], "--audience", "https://c.test", "--json")
    )
    updated = json.loads(result.stdout)
    assert set(updated) == CLIENT_FIELDS
    assert updated["audiences"] == ["https://c.test"]
    assert updated["name"] == created["name"]
    assert updated["scope"] == created["scope"]
    assert updated["created_at"] == created["created_at"]
    shown = ok_json(cli("clients", "show", created["client_id"], "--json"))
    assert shown == updated


def test_update_changes_name_scope_and_token_ttl(cli: RunCli) -> None:
    created = create(cli, "--audience", "https://a.example.test")
    updated = ok_json(
        cli(
            "clients",
            "update",
            created["client_id"],
            "--name",
            "renamed",
            "--scope",
            "api write",
            "--token-ttl",
            "90",
            "--json",
        )  # fmt: skip
    )
    assert updated["name"] == "renamed"
    assert updated["scope"] == "api write"
    assert updated["token_ttl"] == 90
    assert updated["audiences"] == ["https://a.example.test"]  # untouched without --audience
    assert ok_json(cli("clients", "show", created["client_id"], "--json")) == updated


def test_update_without_json_prints_the_updated_object(cli: RunCli) -> None:
    created = create(cli)
    result = ok(cli("clients", "update", created["client_id"], "--name", "renamed"))
    assert "renamed" in result.stdout
    assert created["client_id"] in result.stdout


def test_update_with_nothing_to_change_is_a_usage_error(cli: RunCli) -> None:
    created = create(cli)
    result = cli("clients", "update", created["client_id"])
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


# --- disable / enable / delete ---


def test_disable_and_enable_toggle_the_client(cli: RunCli) -> None:
    created = create(cli)
    client_id = created["client_id"]
    result = ok(cli("clients", "disable", client_id))
    assert result.stdout == ""
    assert ok_json(cli("clients", "show", client_id, "--json"))["enabled"] is False
    result = ok(cli("clients", "enable", client_id))
    assert result.stdout == ""
    assert ok_json(cli("clients", "show", client_id, "--json"))["enabled"] is True


def test_delete_removes_the_client(cli: RunCli) -> None:
    kept = create(cli, name="kept")
    doomed = create(cli, name="doomed")
    result = ok(cli("clients", "delete", doomed["client_id"]))
    assert result.stdout == ""
    assert_one_line_error(cli("clients", "show", doomed["client_id"]))
    listed = ok_json(cli("clients", "list", "--json"))
    assert [c["client_id"] for c in listed] == [kept["client_id"]]


@pytest.mark.parametrize(
    "command",
    [
        ["show"],
        ["show", "--json"],
        ["update", "--name", "x"],
        ["disable"],
        ["enable"],
        ["delete"],
    ],
    ids=lambda c: "-".join(c).replace("--", ""),
)
def test_unknown_client_id_exits_1_with_one_line(cli: RunCli, command: list[str]) -> None:
    verb, *options = command
    result = cli("clients", verb, "cli_doesnotexist", *options)
    line = assert_one_line_error(result)
    assert "cli_doesnotexist" in line
    assert result.stdout == ""


# --- usage errors ---


@pytest.mark.parametrize(
    "args",
    [
        ["clients", "create", "--name", "x", "--scope", "api", "--bogus"],
        ["clients", "create", "--scope", "api"],
        ["clients", "create", "--name", "x"],
        ["clients", "create", "--name", "x", "--scope", "api", "--token-ttl", "0"],
        ["clients", "create", "--name", "x", "--scope", "api", "--token-ttl", "-3"],
        ["clients", "create", "--name", "x", "--scope", "api", "--token-ttl", "abc"],
        ["clients", "update", "cli_x", "--token-ttl", "0"],
        ["clients", "list", "--bogus"],
        ["clients", "show"],
        ["keys", "list", "--bogus"],
        ["serve", "--port", "notaport"],
        ["serve", "--workers", "0"],
        ["no-such-command"],
    ],
    ids=[
        "unknown-flag",
        "missing-name",
        "missing-scope",
        "ttl-zero",
        "ttl-negative",
        "ttl-abc",
        "update-ttl-zero",
        "list-unknown-flag",
        "show-missing-id",
        "keys-unknown-flag",
        "serve-port-abc",
        "serve-workers-zero",
        "unknown-command",
    ],
)
def test_usage_errors_exit_2_with_clicks_message(run_cli: RunCli, args: list[str]) -> None:
    result = run_cli(*args)
    assert result.returncode == 2, f"exit {result.returncode}; stderr:\n{result.stderr}"
    assert "Traceback" not in result.stderr
    assert "Usage:" in result.stderr
    assert "Error:" in result.stderr
    assert result.stdout == ""


def test_usage_error_creates_no_client(cli: RunCli) -> None:
    result = cli("clients", "create", "--name", "x", "--scope", "api", "--token-ttl", "0")
    assert result.returncode == 2
    assert ok_json(cli("clients", "list", "--json")) == []


# --- keys list ---


def test_keys_list_json_has_the_contract_fields(sqlite_url: str, keys_dir: Path) -> None:
    """The ``keys`` group through the console script."""
    script = make_runner(base_env(sqlite_url, keys_dir))
    result = ok(script("keys", "list", "--json"))
    listed = json.loads(result.stdout)
    assert isinstance(listed, list)
    assert len(listed) == 1
    key = listed[0]
    assert set(key) == KEY_FIELDS
    assert key["alg"] == "RS256"
    assert key["state"] == "active"
    assert key["retires_at"] is None
    assert URL_SAFE.match(key["kid"])
    assert (keys_dir / f"{key['kid']}.key.json").is_file()
    created_at = assert_iso_utc(key["created_at"])
    activates_at = assert_iso_utc(key["activates_at"])
    assert activates_at >= created_at - timedelta(seconds=1)
    assert "PRIVATE" not in result.stdout


def test_keys_list_json_on_empty_folder_is_an_empty_list(run_cli: RunCli) -> None:
    result = ok(run_cli("keys", "list", "--json"))
    assert json.loads(result.stdout) == []


# --- python -m authserver ---


def test_python_dash_m_authserver_help_lists_the_commands(env: dict[str, str]) -> None:
    result = run_python_module(env, "--help")
    assert result.returncode == 0, result.stderr
    for command in ("clients", "db", "keys", "serve"):
        assert command in result.stdout


def test_python_dash_m_authserver_runs_commands(cli: RunCli, env: dict[str, str]) -> None:
    created = create(cli)
    result = run_python_module(env, "clients", "list", "--json")
    assert result.returncode == 0, result.stderr
    assert [c["client_id"] for c in json.loads(result.stdout)] == [created["client_id"]]


# --- the same management commands on SQLite and PostgreSQL ---


def test_client_management_round_trip(database_url: str, tmp_path: Path) -> None:
    cli = make_in_process_runner(base_env(database_url, tmp_path / "keys"))
    ok(cli("db", "upgrade"))
    created = create(cli, "--audience", "https://a.example.test", "--token-ttl", "120")
    client_id = created["client_id"]

    listed = ok_json(cli("clients", "list", "--json"))
    assert listed == [{k: v for k, v in created.items() if k != "client_secret"}]

    updated = ok_json(
        cli(
            "clients",
            "update",
            client_id,
            "--audience",
            "https://b.example.test",
            "--audience",
            "https://c.example.test",
            "--scope",
            "api read",
            "--json",
        )  # fmt: skip
    )
    assert updated["audiences"] == ["https://b.example.test", "https://c.example.test"]
    assert updated["scope"] == "api read"
    assert updated["token_ttl"] == 120

    ok(cli("clients", "disable", client_id))
    assert ok_json(cli("clients", "show", client_id, "--json"))["enabled"] is False
    ok(cli("clients", "enable", client_id))
    assert ok_json(cli("clients", "show", client_id, "--json"))["enabled"] is True

    ok(cli("clients", "delete", client_id))
    assert ok_json(cli("clients", "list", "--json")) == []
    assert_one_line_error(cli("clients", "show", client_id))
