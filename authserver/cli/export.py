"""``authserver export``: the registry as a file for ``authserver apply`` (services/export.py).

A module apart from ``apply``'s, which loads the declaration's checks (jsonschema) that
exporting does not need.
"""

from __future__ import annotations

import json

import click
import yaml

from authserver.cli.context import app_context
from authserver.extensions import db
from authserver.services import export
from authserver.services.formatting import printable


@click.command("export")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of YAML.")
def export_command(as_json: bool) -> None:
    """Print the clients and trusts as a file for `authserver apply` (YAML; no secrets, ids
    or times): applying it changes nothing."""
    with app_context():
        document, warnings = export.export(db.session())
    for warning in warnings:
        click.echo(f"Warning: {printable(warning)}", err=True)
    if as_json:
        click.echo(json.dumps(document, indent=2))
    else:
        click.echo(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), nl=False)
