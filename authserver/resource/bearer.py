"""RFC 6750 for any web framework: the ``Authorization: Bearer`` header in, claims or a
framework-neutral refusal (status, ``WWW-Authenticate``, JSON body) out."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from authserver.resource.verifier import InvalidToken, JWTVerifier, VerifierUnavailable


class BearerError(Exception):  # noqa: N818
    """An RFC 6750 refusal, framework-neutral: the HTTP status, headers and a JSON body."""

    def __init__(self, status: int, headers: dict[str, str], body: dict[str, str]) -> None:
        super().__init__(body.get("error_description", ""))
        self.status = status
        self.headers = headers
        self.body = body


def _quoted(value: str) -> str:
    """An RFC 7235 quoted-string from text limited to what RFC 6750 §3 allows."""
    safe = "".join(c for c in value if " " <= c <= "~" and c not in '"\\')
    return f'"{safe}"'


def _challenge(
    status: int, realm: str, error: str | None, description: str, **extra: str
) -> BearerError:
    params = {"realm": realm}
    if error:
        params |= {"error": error, "error_description": description, **extra}
    header = "Bearer " + ", ".join(f"{name}={_quoted(value)}" for name, value in params.items())
    body = {"error": error or "unauthorized", "error_description": description}
    return BearerError(status, {"WWW-Authenticate": header}, body)


def _bearer_token(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def authorize_header(
    verifier: JWTVerifier,
    authorization: str | None,
    scopes: Iterable[str] = (),
    realm: str | None = None,
) -> dict[str, Any]:
    """The claims of the ``Authorization: Bearer`` token if it is valid and grants every scope
    in ``scopes``; otherwise :class:`BearerError` describing the RFC 6750 answer. The realm
    defaults to the verifier's audience."""
    realm = realm or verifier.audience
    scopes = list(scopes)
    token = _bearer_token(authorization)
    if token is None:
        # RFC 6750 §3.1: a request with no credentials gets a challenge without an error code.
        raise _challenge(401, realm, None, "a Bearer access token is required")
    try:
        claims = verifier.verify(token)
    except InvalidToken as error:
        raise _challenge(401, realm, "invalid_token", str(error)) from None
    except VerifierUnavailable:
        body = {
            "error": "temporarily_unavailable",
            "error_description": "the token cannot be checked right now",
        }
        raise BearerError(503, {"Retry-After": "5"}, body) from None
    granted = set(claims.get("scope", "").split())
    if not granted.issuperset(scopes):
        description = "the token lacks a required scope"
        raise _challenge(403, realm, "insufficient_scope", description, scope=" ".join(scopes))
    return claims
