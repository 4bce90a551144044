"""Who may use the admin API: the bearer of one of our own access tokens with the admin scope.

The token is checked as any resource server checks it (``docs/http-api.md``, "Verifying
tokens in a resource server"): signature against the keys we publish, ``typ`` ``at+jwt``,
``iss``, ``aud`` holding the issuer identifier (the admin API is the issuer's own resource),
``exp``, and the scope. Being the issuer, it also sees what an offline resource server cannot:
a token revoked through RFC 7009 (this worker's copy of the deny-list), and a client disabled,
deleted or no longer registered with the admin scope since the token was issued (the
registration cache, at most a second old): taking the scope away takes the API away at once.

Failures follow RFC 6750 §3: 401 with a ``Bearer`` challenge (``error="invalid_token"`` when a
token was sent), 403 ``insufficient_scope`` naming the scope. Only the token's claims are
read here, never the database directly, so a flood of bad tokens costs signature checks only.
"""

from __future__ import annotations

from dataclasses import dataclass

from authserver.http.problems import Problem
from authserver.oauth.access_tokens import read_access_token
from authserver.oauth.errors import TemporarilyUnavailableError
from authserver.oauth.server import AuthorizationServer

ADMIN_SCOPE = "authserver:admin"
REALM = "authserver"


@dataclass(frozen=True)
class AdminCaller:
    """The authorised caller: the client its token was issued to."""

    client_id: str


def _challenge(error: str | None = None, description: str | None = None) -> str:
    """An RFC 6750 §3 ``WWW-Authenticate`` value; the descriptions are fixed ASCII text."""
    parts = [f'realm="{REALM}"']
    if error is not None:
        parts.append(f'error="{error}"')
    if description is not None:
        parts.append(f'error_description="{description}"')
    if error == "insufficient_scope":
        parts.append(f'scope="{ADMIN_SCOPE}"')
    return "Bearer " + ", ".join(parts)


def _invalid_token(description: str) -> Problem:
    return Problem(
        401,
        f"The access token is not accepted: {description}.",
        headers=[("WWW-Authenticate", _challenge("invalid_token", description))],
    )


class AdminAuthorizer:
    """Checks the ``Authorization`` header of an admin request against ``server``'s keys,
    issuer, clock and backend (deny-list, registrations)."""

    def __init__(self, server: AuthorizationServer) -> None:
        self._server = server

    def caller(self, authorization: str | None) -> AdminCaller:
        """The caller, or a :class:`Problem` (401, 403, or 503 when the deny-list or the
        registrations cannot be read)."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer":
            raise Problem(
                401,
                "This API needs an access token with the authserver:admin scope "
                "(Authorization: Bearer).",
                headers=[("WWW-Authenticate", _challenge())],
            )
        token = token.strip()
        if not token:
            raise _invalid_token("the Bearer credentials are empty")
        server = self._server
        backend = server.backend
        read = read_access_token(token, backend.published_keys(), server.issuer)
        if read is None:
            raise _invalid_token("not an access token signed by this server")
        audience = read.claims["aud"]
        audiences = audience if isinstance(audience, list) else [audience]
        if server.issuer not in audiences:
            raise _invalid_token("its audience does not include this server")
        if read.claims["exp"] <= server.clock():
            raise _invalid_token("it has expired")
        try:
            if backend.is_revoked(read.jti):
                raise _invalid_token("it has been revoked")
            client = backend.find_client(read.client_id)
        except TemporarilyUnavailableError:
            raise Problem(
                503,
                "The server cannot check the token now (the database is unreachable); "
                "retry shortly.",
                headers=[("Retry-After", "1")],
            ) from None
        if client is None:
            raise _invalid_token("its client is disabled or deleted")
        scope = read.claims["scope"]
        if not isinstance(scope, str) or ADMIN_SCOPE not in scope.split():
            raise _insufficient_scope("The access token does not hold")
        if ADMIN_SCOPE not in client.scopes:
            raise _insufficient_scope("The access token's client no longer holds")
        return AdminCaller(read.client_id)


def _insufficient_scope(whose: str) -> Problem:
    return Problem(
        403,
        f"{whose} the {ADMIN_SCOPE} scope.",
        headers=[("WWW-Authenticate", _challenge("insufficient_scope"))],
    )
