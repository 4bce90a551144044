"""Workload identity federation: a token a platform issued to a workload (a Kubernetes
service-account token, a GitHub Actions OIDC token, a SPIFFE JWT-SVID), sent as the
``client_assertion`` (RFC 7521 §4.2, RFC 7523 §2.2), authenticates as the client an admin's
trust names.

A platform's token is not a client assertion: its ``iss`` is the platform and its ``sub`` the
workload, so Authlib's ``JWTBearerClientAssertion`` (which requires ``iss == sub == client``)
does not apply; joserfc verifies it here, under the same algorithm allow-list and key rules.

The trust is chosen from the claims as sent, before anything is verified: of the issuer's
trusts whose subject pattern matches ``sub`` and whose audience ``aud`` contains, an exact
subject wins, then the most specific pattern. Only that trust's keys then verify the
signature, and its rules the rest (expiry, lifetime, ``jti``), so a claim that chose the
trust is always a claim the signature covers. The ``jti`` is spent by the caller, last.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from authserver.oauth.client_assertion import (
    LEEWAY_SECONDS,
    MAX_JTI_LENGTH,
    AssertionRejected,
    header_key,
)
from authserver.oauth.clients import Actor, OAuthClient
from authserver.oauth.trusts import TrustRule
from authserver.oauth.unverified import Unverified
from authserver.security.client_keys import ASSERTION_ALGORITHMS

#: The audit log's name for this way of authenticating.
WORKLOAD_IDENTITY = "workload_identity"


@dataclass(frozen=True)
class Considered:
    """One trust looked at for an assertion, and the check it failed (None: it matched)."""

    trust: TrustRule
    check: str | None


class FederationRejected(AssertionRejected):
    """The assertion authenticates as no client: ``considered`` says, trust by trust, why;
    ``chosen`` is the trust whose rules it failed, when one matched its ``sub`` and ``aud``."""

    def __init__(
        self, check: str, considered: Sequence[Considered], chosen: TrustRule | None = None
    ) -> None:
        super().__init__(check)
        self.considered = tuple(considered)
        self.chosen = chosen


class TrustSource(Protocol):
    """What verification needs from storage (the backend, or the CLI's direct reads)."""

    def trusts_for(self, issuer: str) -> Sequence[TrustRule]:
        """The trusts naming ``issuer``, as current as the caller can have them."""

    def trust_keys(self, trust: TrustRule, kid: str | None) -> KeySet:
        """The issuer's keys for ``trust`` (its ``jwks_uri``, or discovered). Raises
        :class:`KeySetUnavailable` or :class:`~authserver.security.pending.ResultPending`."""

    def find_client(self, client_id: str) -> OAuthClient | None:
        """The registered, enabled client, else None."""


@dataclass(frozen=True)
class WorkloadIdentity:
    """A verified platform token and the client it authenticates as (whose ``actor`` names
    the workload, for the access token's ``act``, RFC 8693 §4.1)."""

    trust: TrustRule
    client: OAuthClient
    claims: Mapping[str, Any] = field(repr=False)

    @property
    def jti(self) -> str | None:
        """The ``jti`` to spend; None when the trust accepts the token again."""
        return None if self.trust.allow_reuse else str(self.claims["jti"])

    @property
    def spendable_until(self) -> float:
        """The last moment the token passes the expiry check: its ``jti`` is kept till then."""
        exp: float = self.claims["exp"]
        return exp + LEEWAY_SECONDS


class WorkloadAssertionVerifier:
    """Checks one platform token against the trusts of its issuer; ``clock``: wall-clock
    seconds, compared with the token's ``exp``, ``nbf`` and ``iat``."""

    def __init__(self, source: TrustSource, clock: Callable[[], float] = time.time) -> None:
        self._source = source
        self._clock = clock

    def verify(
        self, token: Unverified, assertion: str, trusts: Sequence[TrustRule]
    ) -> WorkloadIdentity:
        """The identity ``assertion`` proves under the best-matching of ``trusts`` (the
        issuer's, non-empty); raises :class:`FederationRejected`."""
        considered = _ranked(token, trusts)
        chosen = next((c.trust for c in considered if c.check is None), None)
        if chosen is None:
            raise FederationRejected("no trust of this issuer matches the sub and aud", considered)
        considered = [c for c in considered if c.check is not None]

        def rejected(check: str) -> FederationRejected:
            return FederationRejected(check, [*considered, Considered(chosen, check)], chosen)

        client = self._source.find_client(chosen.client_id)
        if client is None:
            raise rejected("the trust's client is disabled")
        claims = self._verified_claims(assertion, token, chosen, rejected)
        actor = Actor(sub=str(claims["sub"]), iss=chosen.issuer)
        return WorkloadIdentity(chosen, replace(client, actor=actor), claims)

    def _verified_claims(
        self,
        assertion: str,
        token: Unverified,
        trust: TrustRule,
        rejected: Callable[[str], FederationRejected],
    ) -> dict[str, Any]:
        try:
            key = header_key(
                token.header,
                lambda kid: self._source.trust_keys(trust, kid),
                keys_named="key of the issuer",
                unavailable="keys",
            )
        except AssertionRejected as exc:
            raise rejected(exc.check) from None
        try:
            claims: dict[str, Any] = jwt.decode(
                assertion, key, algorithms=list(ASSERTION_ALGORITHMS)
            ).claims
        except JoseError as exc:
            raise rejected(f"signature: {exc.description or exc.error}") from None
        now = self._clock()
        registry = jwt.JWTClaimsRegistry(
            now=lambda: int(now),
            leeway=LEEWAY_SECONDS,
            iss={"essential": True, "value": trust.issuer},
            sub={"essential": True},
            aud={"essential": True},
            exp={"essential": True},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            claim = getattr(exc, "claim", "?")
            raise rejected(f"claims: {claim}: {exc.description or exc.error}") from None
        problem = _lifetime_problem(claims, trust, now) or _jti_problem(claims, trust)
        if problem is not None:
            raise rejected(problem)
        return claims


def _ranked(token: Unverified, trusts: Sequence[TrustRule]) -> list[Considered]:
    """Every trust with why it does not fit, the fitting ones last and the best of them first
    among those (exact subject, then the most specific pattern, then the oldest id)."""
    subject, audiences = token.subject, token.audiences
    considered = []
    for trust in sorted(
        trusts, key=lambda t: (not t.specificity[0], -t.specificity[1], t.trust_id)
    ):
        if subject is None:
            check: str | None = "sub: missing or not a string"
        elif not trust.matches_subject(subject):
            check = f"sub: does not match {trust.subject!r}"
        elif trust.audience not in audiences:
            check = f"aud: does not contain {trust.audience!r}"
        else:
            check = None
        considered.append(Considered(trust, check))
    return sorted(considered, key=lambda c: c.check is None)


def _lifetime_problem(claims: Mapping[str, Any], trust: TrustRule, now: float) -> str | None:
    """``exp - iat`` at most the trust's maximum; a token without ``iat`` (a SPIFFE JWT-SVID
    may omit it) is held to the same bound from now."""
    exp, iat = claims["exp"], claims.get("iat")
    lifetime = exp - (iat if iat is not None else now)
    if lifetime > trust.max_lifetime:
        return f"lifetime: exp - iat is {int(lifetime)} s, over the trust's {trust.max_lifetime} s"
    return None


def _jti_problem(claims: Mapping[str, Any], trust: TrustRule) -> str | None:
    if trust.allow_reuse:
        return None
    jti = claims.get("jti")
    if not (isinstance(jti, str) and 1 <= len(jti) <= MAX_JTI_LENGTH):
        return (
            f"jti: the trust accepts each token once, and needs a jti of 1 to "
            f"{MAX_JTI_LENGTH} characters"
        )
    return None
