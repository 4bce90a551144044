"""``authserver keys ...``: inspect, rotate, revoke, import and rewrap the signing keys."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import click
from sqlalchemy.exc import SQLAlchemyError

from authserver.cli.context import (
    app_context,
    audit,
    current_settings,
    describe_database_error,
    emit_json,
)
from authserver.extensions import db
from authserver.security.keyring import KeyStatus
from authserver.services import keys as key_service
from authserver.services.key_retention import longest_token_ttl

JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.group("keys")
def group() -> None:
    """Inspect, rotate, revoke, import and rewrap signing keys."""


def _longest_token_ttl() -> int | None:
    """The longest token lifetime in use, or None when the database cannot tell.

    Key commands must work without a database (a fresh install, an outage during an
    emergency revoke); they then assume the default lifetime and say so.
    """
    settings = current_settings()
    try:
        with app_context():
            return longest_token_ttl(db.session(), settings.access_token_ttl)
    except SQLAlchemyError as exc:
        click.echo(
            f"warning: {describe_database_error(exc)} Assuming no client has a token "
            f"lifetime above AUTHSERVER_ACCESS_TOKEN_TTL ({settings.access_token_ttl} s).",
            err=True,
        )
        return None


def _retention() -> timedelta:
    """How long retired keys stay published, from the longest token lifetime in use."""
    settings = current_settings()
    longest = _longest_token_ttl()
    return key_service.retention(settings, longest or settings.access_token_ttl)


@group.command("list")
@JSON_OPTION
def list_(as_json: bool) -> None:
    """List published signing keys with their state and schedule."""
    views = [key_service.key_view(s) for s in _statuses()]
    if as_json:
        emit_json(views)
        return
    if not views:
        click.echo("No signing keys yet; `authserver serve` creates the first one.", err=True)
    for view in views:
        click.echo(
            f"{view['kid']}  {view['alg']:5}  {view['state']:7}  "
            f"signs {view['activates_at']} to {view['retires_at'] or '-'}"
        )


@group.command("rotate")
@click.option("--now", "immediate", is_flag=True, help="Sign with the new key at once.")
@JSON_OPTION
def rotate(immediate: bool, as_json: bool) -> None:
    """Stage a new key: published at once, signing after AUTHSERVER_KEY_PROPAGATION_DELAY."""
    settings = current_settings()
    longest = _longest_token_ttl()
    key = key_service.rotate_key(
        settings,
        key_service.retention(settings, longest or settings.access_token_ttl),
        immediate=immediate,
        prune=longest is not None,
    )
    audit("key.rotated", kid=key.kid, immediate=immediate)
    view = next(key_service.key_view(s) for s in _statuses() if s.key.kid == key.kid)
    if as_json:
        emit_json(view)
        return
    click.echo(f"{key.kid}  {key.alg}  signs from {view['activates_at']}")


@group.command("revoke")
@click.argument("kid")
def revoke(kid: str) -> None:
    """Emergency: drop a key from signing and from the JWKS at once."""
    signer = key_service.revoke_key(current_settings(), kid, _retention())
    audit("key.revoked", kid=kid, signing_kid=signer.kid if signer else None)
    click.echo(f"revoked {kid}; signing with {signer.kid if signer else 'no key'}", err=True)


@group.command("import")
@click.argument(
    "directory", type=click.Path(exists=True, file_okay=False, path_type=Path), metavar="DIR"
)
def import_(directory: Path) -> None:
    """Copy the key files of a keys folder into the database key store."""
    settings = current_settings()
    imported = key_service.import_keys(settings, directory)
    for key in imported:
        audit("key.imported", kid=key.kid)
    statuses = key_service.statuses_of(settings, {k.kid for k in imported}, _retention())
    emit_json([key_service.key_view(s) for s in statuses])


@group.command("rewrap")
def rewrap() -> None:
    """Re-encrypt every stored private key under AUTHSERVER_KEY_PASSPHRASE."""
    rewrapped, total = key_service.rewrap_keys(current_settings())
    if rewrapped:
        audit("key.rewrapped", count=rewrapped)
    click.echo(f"rewrapped {rewrapped} of {total} signing keys", err=True)


def _statuses() -> list[KeyStatus]:
    return key_service.key_statuses(current_settings(), _retention())
