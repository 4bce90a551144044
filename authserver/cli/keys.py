"""``authserver keys ...``: inspect the signing keys."""

from __future__ import annotations

import click

from authserver.cli.context import current_settings, emit_json
from authserver.security.keys import KeyStore
from authserver.services.keys import key_statuses, key_view


@click.group("keys")
def group() -> None:
    """Inspect signing keys."""


@group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(as_json: bool) -> None:
    """List signing keys with their state and schedule."""
    settings = current_settings()
    views = [
        key_view(s) for s in key_statuses(KeyStore(settings.keys_dir, settings.key_passphrase))
    ]
    if as_json:
        emit_json(views)
        return
    if not views:
        click.echo("No signing keys yet; `authserver serve` creates the first one.", err=True)
    for view in views:
        click.echo(f"{view['kid']}  {view['alg']}  {view['state']:7}  since {view['activates_at']}")
