"""A client assertion read without checking anything, once per request: to choose how to check
it (the client's own ``private_key_jwt``, or a trusted platform's token) and, for the first,
handed to Authlib instead of a second parse."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from joserfc.errors import JoseError
from joserfc.jws import CompactSignature, extract_compact


@dataclass(frozen=True)
class Unverified:
    """A compact JWS read without checking anything: only to choose how to check it."""

    header: Mapping[str, Any]
    claims: Mapping[str, Any]
    #: joserfc's reading of it, which its signature can be checked on without a second parse.
    compact: CompactSignature = field(compare=False, repr=False)

    @property
    def issuer(self) -> str | None:
        iss = self.claims.get("iss")
        return iss if isinstance(iss, str) else None

    @property
    def subject(self) -> str | None:
        sub = self.claims.get("sub")
        return sub if isinstance(sub, str) else None

    @property
    def audiences(self) -> tuple[str, ...]:
        aud = self.claims.get("aud")
        if isinstance(aud, str):
            return (aud,)
        if isinstance(aud, list):
            return tuple(value for value in aud if isinstance(value, str))
        return ()


def read_unverified(assertion: str) -> Unverified | None:
    """The header and claims as sent, or None if this is no JWS with a JSON object payload."""
    try:
        token = extract_compact(assertion.encode("ascii"))
        claims = json.loads(token.payload)
    except (JoseError, ValueError, UnicodeError, RecursionError):
        return None
    if not isinstance(claims, dict):
        return None
    return Unverified(token.headers(), claims, token)
