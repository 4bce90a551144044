"""``authserver clients ...``: register and manage the services that may obtain tokens."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from authserver.cli.context import app_context, audit, emit_json, output_object, print_object
from authserver.config import MAX_ACCESS_TOKEN_TTL
from authserver.errors import InvalidClientData
from authserver.extensions import db
from authserver.services import registry
from authserver.services.client_fields import (
    AUTH_METHODS,
    KEY_AUTH_METHOD,
    MAX_GRACE,
    MAX_JWKS_BYTES,
    MAX_SECRET_LIFETIME,
    MAX_TOKENS_PER_HOUR,
    SECRET_AUTH_METHOD,
)
from authserver.services.formatting import client_view, printable

JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
AUDIENCE_OPTION = click.option(
    "--audience",
    "audiences",
    multiple=True,
    metavar="URI",
    help="A resource (RFC 8707) tokens may be issued for; repeat for several.",
)
EXPIRES_IN_OPTION = click.option(
    "--expires-in",
    type=click.IntRange(1, MAX_SECRET_LIFETIME),
    metavar="SECONDS",
    help="The new secret stops working by itself after this many seconds (at most ten years).",
)
JWKS_FILE_OPTION = click.option(
    "--jwks-file",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="PATH",
    help="A JSON file holding the client's public JWK Set (private_key_jwt clients).",
)
JWKS_URI_OPTION = click.option(
    "--jwks-uri",
    metavar="URL",
    help="Where the client serves its public JWK Set: https (http only on loopback).",
)


def _checked_quota_option(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> int | str | None:
    """A number of tokens an hour (in range, else a usage error), or ``unlimited``."""
    if value is None or value == UNLIMITED:
        return value
    try:
        quota = int(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is neither a number nor {UNLIMITED!r}") from None
    if not 1 <= quota <= MAX_TOKENS_PER_HOUR:
        raise click.BadParameter(f"{quota} is not in the range 1<=x<={MAX_TOKENS_PER_HOUR}")
    return quota


UNLIMITED = "unlimited"
QUOTA_OPTION = click.option(
    "--max-tokens-per-hour",
    "max_tokens_per_hour",
    callback=_checked_quota_option,
    metavar="N|unlimited",
    help=f"At most N tokens an hour for this client (1 to {MAX_TOKENS_PER_HOUR}); beyond it "
    "the token endpoint answers 429. 'unlimited' lifts it.",
)
TOKEN_TTL_OPTION = click.option(
    "--token-ttl",
    type=click.IntRange(1, MAX_ACCESS_TOKEN_TTL),
    metavar="SECONDS",
    help="Access-token lifetime for this client, at most a day "
    "(default: AUTHSERVER_ACCESS_TOKEN_TTL).",
)


@click.group("clients")
def group() -> None:
    """Register and manage OAuth clients."""


@group.command("create")
@click.option("--name", required=True, help="A name for people to recognise the client by.")
@click.option("--scope", required=True, help='Space-separated scopes, e.g. "api tasks:read".')
@AUDIENCE_OPTION
@TOKEN_TTL_OPTION
@click.option(
    "--auth-method",
    type=click.Choice(AUTH_METHODS),
    default=SECRET_AUTH_METHOD,
    show_default=True,
    help="How the client authenticates: with a secret, or with assertions signed by its "
    "private key (RFC 7523; give its public keys with --jwks-file or --jwks-uri).",
)
@JWKS_FILE_OPTION
@JWKS_URI_OPTION
@QUOTA_OPTION
@click.option(
    "--secret-stdin",
    is_flag=True,
    help="Read the secret from standard input instead of generating one (for migrations).",
)
@EXPIRES_IN_OPTION
@JSON_OPTION
def create(
    name: str,
    scope: str,
    audiences: tuple[str, ...],
    token_ttl: int | None,
    auth_method: str,
    jwks_file: Path | None,
    jwks_uri: str | None,
    max_tokens_per_hour: int | str | None,
    secret_stdin: bool,
    expires_in: int | None,
    as_json: bool,
) -> None:
    """Register a client and print its secret, which is shown this once (a private_key_jwt
    client has no secret)."""
    if auth_method == KEY_AUTH_METHOD and (jwks_file is None) == (jwks_uri is None):
        raise click.UsageError("--auth-method private_key_jwt needs --jwks-file or --jwks-uri")
    if auth_method != KEY_AUTH_METHOD and (jwks_file is not None or jwks_uri is not None):
        raise click.UsageError("--jwks-file and --jwks-uri need --auth-method private_key_jwt")
    if auth_method == KEY_AUTH_METHOD and (secret_stdin or expires_in is not None):
        raise click.UsageError(
            "--secret-stdin and --expires-in are for secret clients, not private_key_jwt"
        )
    chosen_secret = _read_secret_from_stdin() if secret_stdin else None
    jwks = _read_jwks(jwks_file) if jwks_file is not None else None
    with app_context():
        created = registry.create_client(
            db.session(),
            name=name,
            scope=scope,
            audiences=audiences,
            token_ttl=token_ttl,
            chosen_secret=chosen_secret,
            secret_expires_in=expires_in,
            auth_method=auth_method,
            jwks=jwks,
            jwks_uri=jwks_uri,
            max_tokens_per_hour=_quota(max_tokens_per_hour),
        )
        db.session.commit()
        audit("client.created", created.client.client_id)
        view = client_view(created.client)
    if created.client_secret is None:
        output_object(view, as_json)
    else:
        _print_secret({**view, "client_secret": created.client_secret}, as_json)


@group.command("rotate-secret")
@click.argument("client_id")
@click.option(
    "--grace",
    type=click.IntRange(0, MAX_GRACE),
    default=0,
    show_default=True,
    metavar="SECONDS",
    help="How long the old secret keeps working, at most a week (0: it stops at once).",
)
@EXPIRES_IN_OPTION
@JSON_OPTION
def rotate_secret(client_id: str, grace: int, expires_in: int | None, as_json: bool) -> None:
    """Give a client a new secret, shown this once; the old one ends after --grace."""
    with app_context():
        rotated = registry.rotate_secret(
            db.session(), client_id, grace=grace, expires_in=expires_in
        )
        db.session.commit()
        audit("client.secret_rotated", client_id, grace=grace)
        document = {**client_view(rotated.client), "client_secret": rotated.client_secret}
    _print_secret(document, as_json)


def _print_secret(document: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(document)
        return
    print_object(document)
    click.echo(f"client_secret: {document['client_secret']}")
    click.echo("Store the secret now: it is shown only this once.", err=True)


@group.command("list")
@JSON_OPTION
def list_(as_json: bool) -> None:
    """List all clients."""
    with app_context():
        views = [client_view(c) for c in registry.list_clients(db.session())]
    if as_json:
        emit_json(views)
        return
    if not views:
        click.echo(
            "No clients. Create one with: authserver clients create --name NAME --scope SCOPE",
            err=True,
        )
    for view in views:
        state = "enabled" if view["enabled"] else "disabled"
        client_id, name, scope = (printable(view[f]) for f in ("client_id", "name", "scope"))
        click.echo(f"{client_id}  {state:8}  {name}  [{scope}]")


@group.command("show")
@click.argument("client_id")
@JSON_OPTION
def show(client_id: str, as_json: bool) -> None:
    """Show one client."""
    with app_context():
        view = client_view(registry.get_client(db.session(), client_id))
    output_object(view, as_json)


@group.command("update")
@click.argument("client_id")
@click.option("--name", help="New name.")
@click.option("--scope", help="New space-separated scopes (replaces the old ones).")
@AUDIENCE_OPTION
@TOKEN_TTL_OPTION
@JWKS_FILE_OPTION
@JWKS_URI_OPTION
@QUOTA_OPTION
@JSON_OPTION
def update(
    client_id: str,
    name: str | None,
    scope: str | None,
    audiences: tuple[str, ...],
    token_ttl: int | None,
    jwks_file: Path | None,
    jwks_uri: str | None,
    max_tokens_per_hour: int | str | None,
    as_json: bool,
) -> None:
    """Change a client's name, scopes, audiences (the list is replaced), token lifetime,
    token quota or, for a private_key_jwt client, its keys (--jwks-file or --jwks-uri
    replaces them)."""
    given = (name, scope, token_ttl, jwks_file, jwks_uri, max_tokens_per_hour)
    if not audiences and all(value is None for value in given):
        raise click.UsageError(
            "give at least one of --name, --scope, --audience, --token-ttl, --jwks-file, "
            "--jwks-uri, --max-tokens-per-hour"
        )
    if jwks_file is not None and jwks_uri is not None:
        raise click.UsageError("give --jwks-file or --jwks-uri, not both")
    jwks = _read_jwks(jwks_file) if jwks_file is not None else None
    with app_context():
        client = registry.update_client(
            db.session(),
            client_id,
            name=name,
            scope=scope,
            audiences=audiences or None,
            token_ttl=registry.KEEP if token_ttl is None else token_ttl,
            jwks=jwks,
            jwks_uri=jwks_uri,
            max_tokens_per_hour=(
                registry.KEEP if max_tokens_per_hour is None else _quota(max_tokens_per_hour)
            ),
        )
        db.session.commit()
        audit("client.updated", client_id)
        view = client_view(client)
    output_object(view, as_json)


def _quota(value: int | str | None) -> int | None:
    """The option's value as the service takes it: ``unlimited`` is None."""
    return None if value == UNLIMITED or value is None else int(value)


def _set_enabled(client_id: str, enabled: bool) -> None:
    with app_context():
        registry.set_enabled(db.session(), client_id, enabled)
        db.session.commit()
        audit("client.enabled" if enabled else "client.disabled", client_id)
    click.echo(f"{'enabled' if enabled else 'disabled'} {client_id}", err=True)


@group.command("disable")
@click.argument("client_id")
def disable(client_id: str) -> None:
    """Stop a client from obtaining tokens (reversible)."""
    _set_enabled(client_id, False)


@group.command("enable")
@click.argument("client_id")
def enable(client_id: str) -> None:
    """Let a disabled client obtain tokens again."""
    _set_enabled(client_id, True)


@group.command("delete")
@click.argument("client_id")
def delete(client_id: str) -> None:
    """Delete a client and its secrets for good."""
    with app_context():
        registry.delete_client(db.session(), client_id)
        db.session.commit()
        audit("client.deleted", client_id)
    click.echo(f"deleted {client_id}", err=True)


def _read_secret_from_stdin() -> str:
    """The whole of standard input, less one trailing newline (as ``echo`` adds)."""
    secret = sys.stdin.read()
    if secret.endswith("\r\n"):
        secret = secret[:-2]
    elif secret.endswith("\n"):
        secret = secret[:-1]
    if not secret:
        raise InvalidClientData("--secret-stdin: standard input is empty")
    return secret


def _read_jwks(path: Path) -> Any:
    """The JSON document in ``path``; its keys are checked by the registry."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidClientData(f"--jwks-file {str(path)!r}: cannot read it ({exc})") from None
    if len(text) > MAX_JWKS_BYTES:
        raise InvalidClientData(
            f"--jwks-file {str(path)!r}: a JWK Set is at most {MAX_JWKS_BYTES} bytes"
        )
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidClientData(f"--jwks-file {str(path)!r}: not JSON ({exc})") from None
