"""``authserver trust ...``: workload identity trusts (platform issuers whose tokens
authenticate as a registered client, without a stored secret)."""

from __future__ import annotations

import click

from authserver.cli.context import app_context, audit, emit_json, output_object
from authserver.cli.lazy import LazyCommands, LazyGroup
from authserver.extensions import db
from authserver.services import trusts
from authserver.services.formatting import printable, trust_view

#: ``trust test`` verifies a token as the token endpoint would: it alone needs the OAuth
#: layer, the federation code and the fetching of issuers' keys (httpx).
COMMANDS: LazyCommands = {
    "test": (
        "authserver.cli.trust_test:test",
        "Show which trust a platform token matches, or each trust considered and the check "
        "it failed, as the token endpoint would judge it now; issues no token and spends no "
        "jti.",
    ),
}

JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.group("trust", cls=LazyGroup, lazy_commands=COMMANDS)
def group() -> None:
    """Trust a platform's workload tokens (Kubernetes, GitHub Actions, SPIFFE, ...)."""


@group.command("add")
@click.option("--client", "client_id", required=True, help="The client the workload becomes.")
@click.option("--issuer", required=True, metavar="URL", help="The platform token's iss.")
@click.option(
    "--subject",
    required=True,
    metavar="PATTERN",
    help="The token's sub: exact, or a pattern where * matches any run of characters.",
)
@click.option("--audience", required=True, help="A value the token's aud must contain.")
@click.option(
    "--jwks-uri",
    metavar="URL",
    help="Where the issuer's keys are (default: its OpenID discovery document's jwks_uri).",
)
@click.option(
    "--allow-reuse",
    is_flag=True,
    help="Accept the same token until it expires (Kubernetes and SPIFFE tokens are reused).",
)
@click.option(
    "--max-lifetime",
    type=click.IntRange(1, trusts.MAX_LIFETIME),
    default=trusts.DEFAULT_MAX_LIFETIME,
    show_default=True,
    metavar="SECONDS",
    help="The longest exp - iat a token may have.",
)
@JSON_OPTION
def add(
    client_id: str,
    issuer: str,
    subject: str,
    audience: str,
    jwks_uri: str | None,
    allow_reuse: bool,
    max_lifetime: int,
    as_json: bool,
) -> None:
    """Trust an issuer's tokens for a subject to authenticate as a client."""
    with app_context():
        trust = trusts.add_trust(
            db.session(),
            client_id=client_id,
            issuer=issuer,
            subject=subject,
            audience=audience,
            jwks_uri=jwks_uri,
            allow_reuse=allow_reuse,
            max_lifetime=max_lifetime,
        )
        db.session.commit()
        audit("trust.added", client_id, trust_id=trust.trust_id)
        view = trust_view(trust)
    output_object(view, as_json)


@group.command("list")
@JSON_OPTION
def list_(as_json: bool) -> None:
    """List all trusts."""
    with app_context():
        views = [trust_view(t) for t in trusts.list_trusts(db.session())]
    if as_json:
        emit_json(views)
        return
    if not views:
        click.echo("No trusts. Add one with: authserver trust add --client ID --issuer URL "
                   "--subject PATTERN --audience AUD", err=True)  # fmt: skip
    for view in views:
        fields = ("trust_id", "client_id", "issuer", "subject")
        click.echo("  ".join(printable(view[f]) for f in fields))


@group.command("show")
@click.argument("trust_id")
@JSON_OPTION
def show(trust_id: str, as_json: bool) -> None:
    """Show one trust."""
    with app_context():
        view = trust_view(trusts.get_trust(db.session(), trust_id))
    output_object(view, as_json)


@group.command("delete")
@click.argument("trust_id")
def delete(trust_id: str) -> None:
    """Delete a trust: its workloads can no longer authenticate with it."""
    with app_context():
        client_id = trusts.get_trust(db.session(), trust_id).client_id
        trusts.delete_trust(db.session(), trust_id)
        db.session.commit()
        audit("trust.deleted", client_id, trust_id=trust_id)
    click.echo(f"deleted {trust_id}", err=True)
