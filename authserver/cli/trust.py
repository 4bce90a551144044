"""``authserver trust ...``: workload identity trusts (platform issuers whose tokens
authenticate as a registered client, without a stored secret)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import IO, Any

import click
from joserfc.jwk import KeySet
from sqlalchemy.orm import Session

from authserver.cli.context import app_context, audit, emit_json, output_object
from authserver.database_backend import oauth_client, trust_rule
from authserver.extensions import db
from authserver.oauth.clients import OAuthClient
from authserver.oauth.federation import (
    FederationRejected,
    WorkloadAssertionVerifier,
    WorkloadIdentity,
)
from authserver.oauth.trusts import TrustRule
from authserver.oauth.unverified import read_unverified
from authserver.security.issuer_keys import IssuerKeys
from authserver.services import assertions, registrations, trusts
from authserver.services.formatting import printable, trust_view

#: A platform token is a few KB; a file far larger is not one.
MAX_ASSERTION_FILE_BYTES = 64 * 1024

JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.group("trust")
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


@group.command("test")
@click.option(
    "--assertion-file",
    type=click.File("r"),
    required=True,
    help="A platform token (a JWT) as the workload would send it; - reads stdin.",
)
@JSON_OPTION
def test(assertion_file: IO[str], as_json: bool) -> None:
    """Show which trust a platform token matches, or each trust considered and the check it
    failed, as the token endpoint would judge it now; issues no token and spends no jti.

    Exit 0 when the token endpoint would accept the token, 1 otherwise.
    """
    assertion = assertion_file.read(MAX_ASSERTION_FILE_BYTES + 1).strip()
    if len(assertion) > MAX_ASSERTION_FILE_BYTES:
        raise click.ClickException(f"the file is over {MAX_ASSERTION_FILE_BYTES} bytes: not a JWT")
    token = read_unverified(assertion)
    if token is None:
        raise click.ClickException(
            "the file does not hold a JWT (three base64url parts, a JSON object as payload)"
        )
    if token.issuer is None:
        raise click.ClickException("the token has no iss claim")
    keys = IssuerKeys()
    try:
        with app_context():
            session = db.session()
            source = _StoredTrusts(session, keys)
            candidates = source.trusts_for(token.issuer)
            if not candidates:
                raise click.ClickException(f"no trust names the issuer {token.issuer!r}")
            try:
                identity = WorkloadAssertionVerifier(source).verify(token, assertion, candidates)
            except FederationRejected as rejected:
                _report_refusal(rejected, as_json)
                raise SystemExit(1) from None
            spent = identity.jti is not None and assertions.was_used(
                session, identity.trust.issuer, identity.jti, datetime.now(UTC)
            )
    finally:
        keys.close()
    _report_match(identity, spent, as_json)
    if spent:
        raise SystemExit(1)


class _StoredTrusts:
    """What verification needs, read straight from the database (the server caches it)."""

    def __init__(self, session: Session, keys: IssuerKeys) -> None:
        self._session = session
        self._keys = keys

    def trusts_for(self, issuer: str) -> Sequence[TrustRule]:
        return [trust_rule(t) for t in trusts.trusts_of(self._session, issuer)]

    def trust_keys(self, trust: TrustRule, kid: str | None) -> KeySet:
        return self._keys.key_set(trust.issuer, trust.jwks_uri, kid)

    def find_client(self, client_id: str) -> OAuthClient | None:
        found = registrations.registration(self._session, client_id)
        return oauth_client(found) if found is not None and found.enabled else None


def _report_refusal(rejected: FederationRejected, as_json: bool) -> None:
    considered = [
        {"trust_id": c.trust.trust_id, "client_id": c.trust.client_id, "check": c.check}
        for c in rejected.considered
    ]
    if as_json:
        emit_json({"accepted": False, "trust_id": None, "considered": considered})
        return
    for entry in considered:
        click.echo(f"{entry['trust_id']}  {entry['client_id']}  {printable(entry['check'] or '')}")
    click.echo("refused: no trust accepts this token", err=True)


def _report_match(identity: WorkloadIdentity, spent: bool, as_json: bool) -> None:
    trust, actor = identity.trust, identity.client.actor
    jti = (
        "reusable: the trust accepts the token again until it expires"
        if identity.jti is None
        else "already used: the token endpoint refuses it"
        if spent
        else "not used yet: the token endpoint accepts it once"
    )
    report: dict[str, Any] = {
        "accepted": not spent,
        "trust_id": trust.trust_id,
        "client_id": trust.client_id,
        "act": actor.as_claim() if actor else None,
        "jti": jti,
    }
    if as_json:
        emit_json(report)
        return
    click.echo(f"{trust.trust_id}  {trust.client_id}  matched")
    click.echo(f"act: sub={printable(actor.sub if actor else '')} iss={printable(trust.issuer)}")
    click.echo(f"jti: {jti}")
