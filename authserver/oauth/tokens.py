"""RFC 9068 JWT access tokens: Authlib's bearer-token response around our signed JWT."""

from __future__ import annotations

import functools
import secrets
import time
import warnings
from collections.abc import Callable
from typing import Any

from authlib.oauth2.rfc6750 import BearerTokenGenerator
from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jws import JWSRegistry

from authserver.oauth.clients import OAuthClient
from authserver.oauth.errors import TemporarilyUnavailableError
from authserver.security.keys import SigningKey

# RFC 9864 deprecates the polymorphic "EdDSA" name, and joserfc warns on every use; it is still
# the name resource servers' libraries understand, and operators choose it deliberately.
warnings.filterwarnings("ignore", message="EdDSA is deprecated", category=SecurityWarning)


@functools.cache
def _registry(alg: str) -> JWSRegistry:
    """joserfc's registry allowing exactly the key's algorithm, made once per algorithm (joserfc
    builds one per call when given an algorithm list)."""
    return JWSRegistry(algorithms=[alg])


#: What a client told "no signing key yet" should wait: the key ring's poll interval.
NO_KEY_RETRY_AFTER_SECONDS = 1


class AccessTokenGenerator(BearerTokenGenerator):
    """Issues RFC 9068 access tokens signed by the key active at that moment.

    Authlib's ``JWTBearerTokenGenerator`` is not used because it signs through a randomly
    chosen key of a key set, and with joserfc's default algorithm list, which refuses EdDSA.
    Here the header names exactly the signing key (``kid``) and its algorithm.
    """

    def __init__(
        self,
        issuer: str,
        signing_key: Callable[[], SigningKey | None],
        default_ttl: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(self._access_token, expires_generator=self._expires_in)
        self.issuer = issuer
        self._signing_key = signing_key
        self._default_ttl = default_ttl
        self._clock = clock

    def _access_token(self, client: OAuthClient, grant_type: str, user: object, scope: str) -> str:
        key = self._signing_key()
        if key is None:
            # The key ring is polled every second: the first key is there that soon.
            raise TemporarilyUnavailableError(
                "No signing key is loaded yet.", retry_after=NO_KEY_RETRY_AFTER_SECONDS
            )
        now = int(self._clock())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            # RFC 9068 §2.2: without a resource owner, sub identifies the client.
            "sub": client.client_id,
            "aud": client.granted_audience,
            "exp": now + self._expires_in(client, grant_type),
            "iat": now,
            "jti": secrets.token_urlsafe(16),
            "client_id": client.client_id,
            "scope": scope,
        }
        if client.actor is not None:
            claims["act"] = client.actor.as_claim()
        header = {"typ": "at+jwt", "alg": key.alg, "kid": key.kid}
        return jwt.encode(header, claims, key.jwk, registry=_registry(key.alg))

    def _expires_in(self, client: OAuthClient, grant_type: str) -> int:
        return client.token_ttl or self._default_ttl
