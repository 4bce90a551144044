"""The ``authserver`` command: JSON to stdout, messages to stderr, one line per error.

Exit status: 0 success; 1 an error found after parsing (unknown client, bad configuration,
unreachable database); 2 a usage error, as Click reports it.
"""

from __future__ import annotations

from typing import Any

import click
from sqlalchemy.exc import SQLAlchemyError

from authserver.cli import apply, clients, db, keys, serve, trust
from authserver.cli.context import describe_database_error, load_settings
from authserver.errors import AuthServerError
from authserver.json_logs import configure_json_logs


class AuthServerGroup(click.Group):
    """Turns domain and database errors into Click's one-line ``Error: ...`` with exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
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
    configure_json_logs("authserver.audit")
    ctx.obj = load_settings()


main.add_command(db.group)
main.add_command(serve.command)
main.add_command(clients.group)
main.add_command(keys.group)
main.add_command(trust.group)
main.add_command(apply.apply_command)
main.add_command(apply.export_command)
