"""The ``authserver`` command: JSON to stdout, messages to stderr, one line per error.

Exit status: 0 success; 1 an error found after parsing (unknown client, bad configuration,
unreachable database); 2 a usage error, as Click reports it.

Each command's module is imported only when that command runs (Click's lazy loading of
subcommands): ``apply`` alone needs jsonschema and YAML, ``trust`` the federation code and
httpx, ``serve`` granian, and every command paid for all of them at start-up.
"""

from __future__ import annotations

import importlib
from gettext import gettext as _
from typing import Any

import click

from authserver.errors import AuthServerError
from authserver.json_logs import configure_json_logs

#: Every command: where it is defined, and the first sentence of its docstring, which is all
#: ``authserver --help`` shows of it (tests/test_cli_startup.py checks they agree). Listing
#: the commands thus imports none of them.
COMMANDS: dict[str, tuple[str, str]] = {
    "apply": (
        "authserver.cli.apply:apply_command",
        "Make the registry hold the clients and trusts FILE declares (YAML or JSON; - reads "
        "stdin): create what is missing, update what differs and, with --prune, delete the "
        "rest.",
    ),
    "clients": ("authserver.cli.clients:group", "Register and manage OAuth clients."),
    "db": ("authserver.cli.db:group", "Manage the database schema."),
    "export": (
        "authserver.cli.apply:export_command",
        "Print the clients and trusts as a file for `authserver apply` (YAML; no secrets, ids "
        "or times): applying it changes nothing.",
    ),
    "keys": (
        "authserver.cli.keys:group",
        "Inspect, rotate, revoke, import and rewrap signing keys.",
    ),
    "serve": ("authserver.cli.serve:command", "Serve the HTTP API."),
    "trust": (
        "authserver.cli.trust:group",
        "Trust a platform's workload tokens (Kubernetes, GitHub Actions, SPIFFE, ...).",
    ),
}


class AuthServerGroup(click.Group):
    """Loads a command's module when the command is resolved, and turns domain and database
    errors into Click's one-line ``Error: ...`` with exit 1."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in COMMANDS:
            module, attribute = COMMANDS[cmd_name][0].split(":")
            command = getattr(importlib.import_module(module), attribute)
            self.add_command(command, cmd_name)
        return command

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError:
            if self.commands.keys() >= COMMANDS.keys():
                raise
            # Click suggests a close name ("Did you mean 'clients'?") from the commands
            # loaded so far: a name it does not know loads them all, then fails the same way.
            for name in COMMANDS:
                self.get_command(ctx, name)
            return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Click's list of commands and their short help, which comes from ``COMMANDS`` for
        those not loaded."""
        commands = [
            (name, self.commands.get(name) or click.Command(name, help=COMMANDS[name][1]))
            for name in self.list_commands(ctx)
        ]
        commands = [(name, command) for name, command in commands if not command.hidden]
        limit = formatter.width - 6 - max(len(name) for name, _command in commands)
        rows = [(name, command.get_short_help_str(limit)) for name, command in commands]
        with formatter.section(_("Commands")):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        # SQLAlchemy (and the context module, which loads Flask) only once a command runs:
        # --help and --version end before this.
        from sqlalchemy.exc import SQLAlchemyError

        from authserver.cli.context import describe_database_error

        try:
            return super().invoke(ctx)
        except AuthServerError as exc:
            raise click.ClickException(str(exc)) from None
        except SQLAlchemyError as exc:
            raise click.ClickException(describe_database_error(exc)) from None


@click.group(cls=AuthServerGroup)
@click.version_option(package_name="authserver")
@click.pass_context
def main(ctx: click.Context) -> None:
    """OAuth 2.0 authorization server for service-to-service auth."""
    from authserver.cli.context import load_settings  # not needed by --help and --version

    configure_json_logs("authserver.audit")
    ctx.obj = load_settings()
