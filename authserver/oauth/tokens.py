"""RFC 9068 JWT access tokens: Authlib's bearer-token response around our signed JWT."""

from __future__ import annotations

import json
import secrets
import time
import warnings
from collections.abc import Callable
from functools import cache
from typing import Any

from authlib.oauth2.rfc6750 import BearerTokenGenerator
from joserfc.errors import SecurityWarning
from joserfc.jws import JWSRegistry
from joserfc.util import json_b64encode, urlsafe_b64encode

from authserver.oauth.clients import OAuthClient
from authserver.oauth.errors import TemporarilyUnavailableError
from authserver.security.keys import SigningKey

# RFC 9864 deprecates the polymorphic "EdDSA" name, and joserfc warns on every use; it is still
# the name resource servers' libraries understand, and operators choose it deliberately.
warnings.filterwarnings("ignore", message="EdDSA is deprecated", category=SecurityWarning)


class AccessTokenGenerator(BearerTokenGenerator):  # type: ignore[misc]
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
    ) -> None:
        super().__init__(self._access_token, expires_generator=self._expires_in)
        self.issuer = issuer
        self._signing_key = signing_key
        self._default_ttl = default_ttl

    def _access_token(self, client: OAuthClient, grant_type: str, user: object, scope: str) -> str:
        key = self._signing_key()
        if key is None:
            raise TemporarilyUnavailableError(description="No signing key is loaded yet.")
        now = int(time.time())
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
        return _sign_compact(key, claims)

    def _expires_in(self, client: OAuthClient, grant_type: str) -> int:
        return client.token_ttl or self._default_ttl


@cache
def _header_segment(kid: str, alg: str) -> bytes:
    """The protected header is the same for every token a key signs: encode it once per key."""
    return json_b64encode({"typ": "at+jwt", "alg": alg, "kid": kid})


def _sign_compact(key: SigningKey, claims: dict[str, Any]) -> str:
    """RFC 7515 compact serialization through joserfc's algorithm and encoders.

    ``joserfc.jwt.encode`` re-validates and re-encodes the constant header for every token,
    which cost about a tenth of a token request beside the signature itself
    (docs/performance.md); the algorithm, the key handling and the signature encoding (raw
    ``r || s`` for ECDSA) stay joserfc's.
    """
    payload = urlsafe_b64encode(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = _header_segment(key.kid, key.alg) + b"." + payload
    signature = JWSRegistry.algorithms[key.alg].sign(signing_input, key.jwk)
    return (signing_input + b"." + urlsafe_b64encode(signature)).decode("ascii")
