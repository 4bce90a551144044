"""``private_key_jwt`` client authentication (RFC 7523 §2.2 and §3, RFC 7521 §4.2), on
Authlib's :class:`JWTBearerClientAssertion`.

Authlib drives the steps (read the assertion unverified, look the client up by ``sub``,
resolve its key, verify signature and claims, the ``jti`` check last); this subclass supplies
what Authlib leaves to the server and tightens what it leaves open:

- the algorithm allow-list (Authlib decodes with joserfc's default list, which has HS256 and
  lacks PS256 and EdDSA), each algorithm matched to the key that verifies it;
- the key picked by the header's ``kid`` and ``alg`` from the client's registered set or its
  ``jwks_uri`` (fetched by the backend, never on another client's request);
- ``exp`` at most an hour ahead (an assertion is a bearer credential until it expires), and a
  ``jti`` that is a bounded string;
- every rejection as :class:`AssertionRejected` naming the check, for the server log.

The steps that can fail before anything is recorded (lookup, key) run before the ``jti`` is
spent, so only an assertion that passed every other check uses up its ``jti``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from authlib.oauth2.rfc6749.errors import InvalidClientError as AuthlibInvalidClientError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc import jwt
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import Key, KeySet
from joserfc.jws import CompactSignature, JWSRegistry, validate_compact

from authserver.oauth.backend import Backend
from authserver.oauth.clients import PRIVATE_KEY_JWT, OAuthClient
from authserver.oauth.requests import OAuthFormRequest
from authserver.oauth.unverified import Unverified
from authserver.security.client_keys import ASSERTION_ALGORITHMS, verification_key
from authserver.security.remote_jwks import KeySetUnavailable

#: RFC 7523 §2.2's ``client_assertion_type``.
JWT_BEARER = JWTBearerClientAssertion.CLIENT_ASSERTION_TYPE
#: Clock skew allowed on ``exp``, ``nbf`` and ``iat`` (the contract's 60 s).
LEEWAY_SECONDS = 60
#: The furthest ahead ``exp`` may be: Authlib's own client signs for an hour.
MAX_LIFETIME_SECONDS = 3600
MAX_JTI_LENGTH = 256
#: Cut for the log: a check may quote a header value the client chose.
MAX_CHECK_LENGTH = 200
#: The algorithms an assertion may use, as joserfc's registry (made once, not per request).
_REGISTRY = JWSRegistry(algorithms=list(ASSERTION_ALGORITHMS))


class AssertionRejected(Exception):
    """One check of the assertion failed; ``check`` says which, for the server log only
    (the client gets the same ``invalid_client`` whatever failed)."""

    def __init__(self, check: str) -> None:
        super().__init__(check)
        self.check = check[:MAX_CHECK_LENGTH]


class ClientAssertionVerifier(JWTBearerClientAssertion):
    """One request's verifier: ``audiences`` are the values its ``aud`` may hold (the issuer,
    the token endpoint and the endpoint receiving the request, RFC 7523 §3 item 3)."""

    CLIENT_AUTH_METHOD = PRIVATE_KEY_JWT

    def __init__(
        self, backend: Backend, audiences: Sequence[str], read: Unverified | None = None
    ) -> None:
        """``read``: the assertion as client authentication already read it, if it could."""
        super().__init__(validate_jti=True, leeway=LEEWAY_SECONDS)
        self._backend = backend
        self._audiences = list(audiences)
        self._read = read

    def verify(self, request: OAuthFormRequest) -> OAuthClient:
        """The client the request's assertion authenticates; raises :class:`AssertionRejected`."""
        try:
            client: OAuthClient | None = self(self._find_client, request)
        except AuthlibInvalidClientError as exc:
            raise AssertionRejected(exc.description or exc.error) from None
        if client is None:  # Authlib found no assertion; the caller checked there is one
            raise AssertionRejected("no client_assertion")
        return client

    def _find_client(self, client_id: str) -> OAuthClient:
        client = self._backend.find_client(client_id)
        if client is None:
            raise AssertionRejected("sub names no enabled client")
        if client.auth_method != PRIVATE_KEY_JWT:
            raise AssertionRejected("the client authenticates with a secret, not private_key_jwt")
        return client

    def extract_assertion(self, assertion: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The header and claims read once already; Authlib's own reading (and its words)
        only for an assertion that could not be read."""
        if self._read is None:
            header, claims = super().extract_assertion(assertion)
            return header, claims
        return dict(self._read.header), dict(self._read.claims)

    def get_audiences(self) -> list[str]:
        return self._audiences

    def resolve_client_public_key(self, client: OAuthClient) -> Callable[[Any], Key]:
        """joserfc calls the returned function with the token, whose header names the key."""

        def key_for(token: CompactSignature) -> Key:
            return header_key(
                token.headers(),
                lambda kid: self._backend.client_keys(client, kid),
                keys_named="registered key",
                unavailable="jwks_uri",
            )

        return key_for

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> dict[str, Any]:
        """The claims once the signature verifies. The assertion read already (``read``) is
        checked as joserfc read it, rather than read a second time by ``jwt.decode``."""
        try:
            if self._read is not None:
                if not validate_compact(self._read.compact, resolve_key, registry=_REGISTRY):
                    raise BadSignatureError()
                claims: dict[str, Any] = dict(self._read.claims)
            else:
                token = jwt.decode(assertion, resolve_key, registry=_REGISTRY)
                claims = token.claims
        except JoseError as exc:
            raise AssertionRejected(f"signature: {exc.description or exc.error}") from None
        self.verify_claims(claims)
        return claims

    def verify_claims(self, claims: dict[str, Any]) -> None:
        """Ours first (lifetime, ``jti`` shape), then Authlib's: ``iss``, ``sub``, ``aud``,
        ``exp`` (required), ``nbf`` and ``iat`` (not in the future), ``iss == sub``, and the
        ``jti`` spent last."""
        exp = claims.get("exp")
        # Wall-clock time, as Authlib's claims registry (which checks exp, nbf, iat) uses.
        if _is_number(exp) and exp > time.time() + MAX_LIFETIME_SECONDS + self.leeway:
            raise AssertionRejected(f"exp: more than {MAX_LIFETIME_SECONDS} s in the future")
        jti = claims.get("jti")
        if jti is not None and not (isinstance(jti, str) and 1 <= len(jti) <= MAX_JTI_LENGTH):
            raise AssertionRejected(f"jti: not a string of 1 to {MAX_JTI_LENGTH} characters")
        super().verify_claims(claims)

    def validate_jti(self, claims: dict[str, Any], jti: str) -> bool:
        """Spend the ``jti`` until the assertion can no longer be accepted anyway."""
        expires_at = datetime.fromtimestamp(claims["exp"] + self.leeway, UTC)
        return self._backend.accept_assertion(
            claims["iss"], jti, expires_at, client_id=claims["sub"]
        )

    def authenticate_client(self, client: OAuthClient) -> OAuthClient:
        """The method was checked on lookup, before any key was fetched."""
        return client

    def claimed_subject(self, assertion: str) -> str | None:
        """The assertion's ``sub`` as it claims, unverified: the id a failure counts against."""
        try:
            _, claims = self.extract_assertion(assertion)
        except AuthlibInvalidClientError:
            return None
        subject = claims.get("sub")
        return subject if isinstance(subject, str) else None


def header_key(
    headers: Mapping[str, Any],
    key_set_for: Callable[[str | None], KeySet],
    *,
    keys_named: str,
    unavailable: str,
) -> Key:
    """The key that verifies a JWS with these header members, or :class:`AssertionRejected`:
    ``kid``, if present, a string; ``alg`` on the allow-list; exactly one key of
    ``key_set_for(kid)`` fitting both. ``keys_named`` and ``unavailable`` word the checks
    for the log ("no {keys_named} has kid ...", "{unavailable}: why the keys are missing")."""
    kid, alg = headers.get("kid"), headers.get("alg")
    if kid is not None and not isinstance(kid, str):
        raise AssertionRejected("kid: not a string")
    if alg not in ASSERTION_ALGORITHMS:
        raise AssertionRejected(f"alg: {alg!r} is not one of {ASSERTION_ALGORITHMS}")
    try:
        key_set = key_set_for(kid)
    except KeySetUnavailable as exc:
        raise AssertionRejected(f"{unavailable}: {exc}") from None
    key = verification_key(key_set, kid, alg)
    if key is None:
        raise AssertionRejected(
            f"kid: no {keys_named} has kid {kid!r} and verifies {alg}"
            if kid is not None
            else f"kid: none given, and not exactly one {keys_named} verifies {alg}"
        )
    return key


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
