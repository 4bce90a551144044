"""Each ``authserver`` command imports what it uses, not what the other commands use.

The group loads a command's module when the command runs (authserver/cli/lazy.py), so a
process that lists clients never loads the declaration checks (jsonschema, YAML), the
federation code, the key fetcher (httpx), the migrations (Alembic) or the server (granian).
Checked by what a fresh process has imported, never by timing it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from authserver.cli import COMMANDS, main
from authserver.cli import trust as trust_cli
from authserver.cli.lazy import LazyCommands
from tests.support.cli import AUTHSERVER, CLI_TIMEOUT_SECONDS, base_env

#: What only some commands need: ``apply`` (jsonschema, yaml), ``trust test`` (authlib, the
#: OAuth layer), fetching keys (httpx), ``db upgrade`` (alembic), ``serve`` (granian,
#: prometheus_client), a rate-limit storage other than memory:// (limits).
ONE_COMMANDS_MODULES = (
    "alembic",
    "authlib",
    "authserver.cli.apply",
    "authserver.cli.serve",
    "authserver.cli.trust_test",
    "authserver.oauth",
    "flask_migrate",
    "granian",
    "httpx",
    "jsonschema",
    "limits",
    "prometheus_client",
    "yaml",
)

#: Runs the group as the console script does, then reports what the process imported.
RUN_AND_REPORT = """
import json, sys
from authserver.cli import main
try:
    main(sys.argv[2:], prog_name="authserver")
except SystemExit as exit:
    status = exit.code
print(json.dumps({"status": status, "loaded": sorted(
    name for name in json.loads(sys.argv[1]) if name in sys.modules
)}))
"""


def imports_of(env: dict[str, str], *args: str) -> list[str]:
    """Which of ``ONE_COMMANDS_MODULES`` ``authserver *args`` loads, in a fresh process."""
    completed = subprocess.run(
        [sys.executable, "-c", RUN_AND_REPORT, json.dumps(ONE_COMMANDS_MODULES), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        check=False,
    )
    report = json.loads(completed.stdout.splitlines()[-1])
    assert report["status"] == 0, completed.stderr
    return report["loaded"]


@pytest.mark.parametrize(
    "args", [("clients", "list"), ("keys", "list"), ("trust", "list"), ("export",)]
)
def test_a_command_does_not_import_what_only_other_commands_need(
    migrated_sqlite_url: str, keys_dir: Path, args: tuple[str, ...]
) -> None:
    loaded = imports_of(base_env(migrated_sqlite_url, keys_dir), *args)

    # export writes YAML: that one is its own.
    assert loaded == (["yaml"] if args == ("export",) else [])


def test_help_imports_no_command_nor_the_database_layer(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from authserver.cli import main\n"
        "try:\n"
        "    main(['--help'], prog_name='authserver')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith(('authserver.cli.', 'sqlalchemy', "
        "'flask'))))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code],
        env=base_env(f"sqlite:///{tmp_path / 'authserver.db'}", tmp_path / "keys"),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        check=True,
    )

    assert completed.stdout.splitlines()[-1] == "['authserver.cli.lazy']"


def test_help_lists_every_command_with_its_short_help(tmp_path: Path) -> None:
    completed = subprocess.run(
        [str(AUTHSERVER), "--help"],
        env=base_env(f"sqlite:///{tmp_path / 'authserver.db'}", tmp_path / "keys"),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        check=True,
    )

    listed = completed.stdout.partition("Commands:\n")[2].splitlines()
    assert [line.split()[0] for line in listed] == sorted(COMMANDS)
    assert "Register and manage OAuth clients." in completed.stdout


@pytest.mark.parametrize(
    ("group", "table"), [(main, COMMANDS), (trust_cli.group, trust_cli.COMMANDS)]
)
def test_lazy_tables_name_each_command_and_its_own_short_help(
    group: click.Group, table: LazyCommands
) -> None:
    context = click.Context(group)
    for name, (_where, summary) in table.items():
        command = group.get_command(context, name)

        assert command is not None
        assert command.name == name
        for limit in (30, 45, 74, 1000):
            stand_in = click.Command(name, help=summary)
            assert stand_in.get_short_help_str(limit) == command.get_short_help_str(limit)
