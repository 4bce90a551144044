"""Reading back the access tokens this server issued (for introspection and revocation)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from authserver.config import SUPPORTED_ALGS
from authserver.security.keys import SigningKey

REQUIRED_CLAIMS = ("iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope")


@dataclass(frozen=True)
class AccessToken:
    """A token whose signature verified with one of our published keys."""

    claims: dict[str, Any]
    revoked: bool = False
    #: Seconds since the epoch; the server's clock, injected so tests need not wait.
    clock: Callable[[], float] = field(default=time.time, compare=False)

    @property
    def jti(self) -> str:
        return str(self.claims["jti"])

    @property
    def client_id(self) -> str:
        return str(self.claims["client_id"])

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(self.claims["exp"], UTC)

    def is_expired(self) -> bool:
        expires_at: int = self.claims["exp"]
        return expires_at <= self.clock()

    def is_revoked(self) -> bool:
        return self.revoked


def read_access_token(token: str, keys: Sequence[SigningKey], issuer: str) -> AccessToken | None:
    """The token's claims if it is one of ours (RFC 9068 shape, our issuer, a published key).

    Anything else (malformed, foreign, signed by a revoked or unpublished key) gives None:
    introspection and revocation answer such tokens without an error (RFC 7662 §2.2,
    RFC 7009 §2.2).
    """
    if not keys:
        return None
    try:
        decoded = jwt.decode(token, KeySet([k.jwk for k in keys]), algorithms=list(SUPPORTED_ALGS))
    except (JoseError, ValueError, TypeError, KeyError):
        return None
    claims = decoded.claims
    if decoded.header.get("typ") != "at+jwt" or claims.get("iss") != issuer:
        return None
    if any(name not in claims for name in REQUIRED_CLAIMS):
        return None
    if not isinstance(claims["exp"], int) or not isinstance(claims["jti"], str):
        return None
    return AccessToken(claims)
