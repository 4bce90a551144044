"""The ``authserver`` command: JSON to stdout, messages to stderr, one line per error.

Exit status: 0 success; 1 an error found after parsing (unknown client, bad configuration,
unreachable database); 2 a usage error, as Click reports it.

Each command's module is imported only when that command runs (Click's lazy loading of
subcommands, authserver/cli/lazy.py): ``apply`` alone needs jsonschema and YAML, ``trust
test`` the federation code, ``serve`` granian, and every command paid for all of them at
start-up.
"""

from __future__ import annotations

from typing import Any

import click

from authserver.cli.lazy import LazyCommands, LazyGroup
from authserver.errors import AuthServerError
from authserver.json_logs import configure_json_logs

#: Every command: where it is defined, and the first sentence of its docstring (see
#: authserver/cli/lazy.py).
COMMANDS: LazyCommands = {
    "apply": (
        "authserver.cli.apply:apply_command",
        "Make the registry hold the clients and trusts FILE declares (YAML or JSON; - reads "
        "stdin): create what is missing, update what differs and, with --prune, delete the "
        "rest.",
    ),
    "clients": ("authserver.cli.clients:group", "Register and manage OAuth clients."),
    "db": ("authserver.cli.db:group", "Manage the database schema."),
    "export": (
        "authserver.cli.export:export_command",
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


class AuthServerGroup(LazyGroup):
    """Turns domain and database errors into Click's one-line ``Error: ...`` with exit 1."""

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


@click.group(cls=AuthServerGroup, lazy_commands=COMMANDS)
@click.version_option(package_name="authserver")
@click.pass_context
def main(ctx: click.Context) -> None:
    """OAuth 2.0 authorization server for service-to-service auth."""
    from authserver.cli.context import load_settings  # not needed by --help and --version

    configure_json_logs("authserver.audit")
    ctx.obj = load_settings()
