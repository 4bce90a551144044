"""``authserver trust test``: a platform token judged as the token endpoint would judge it,
through the OAuth layer's own verification (a module of its own: the other ``trust``
commands need none of it)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import IO, Any

import click
from joserfc.jwk import KeySet
from sqlalchemy.orm import Session

from authserver.cli.context import app_context, emit_json
from authserver.cli.trust import JSON_OPTION
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
from authserver.services.formatting import printable

#: A platform token is a few KB; a file far larger is not one.
MAX_ASSERTION_FILE_BYTES = 64 * 1024


@click.command("test")
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
