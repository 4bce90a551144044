"""Verifying this server's access tokens in a Python resource server (Flask or FastAPI).

Tokens are RFC 9068 JWTs, so an API checks them offline against the issuer's published keys;
nothing here calls the authorization server per request. ::

    verifier = JWTVerifier("https://auth.example.com", audience="https://tasks.example.com")

    # Flask: the claims are in flask.g.token_claims
    from authserver.resource.flask import require_scope

    @app.get("/tasks")
    @require_scope(verifier, "tasks:read")
    def tasks(): ...

    # FastAPI: the dependency returns the claims
    from authserver.resource.fastapi import require_scope

    @app.get("/tasks")
    def tasks(claims: dict = Depends(require_scope(verifier, "tasks:read"))): ...

Failures follow RFC 6750 §3: no token → 401 with a bare ``Bearer realm=…`` challenge, a bad
token → 401 ``invalid_token``, a missing scope → 403 ``insufficient_scope``, and keys that
cannot be fetched → 503 (the API's problem, not the caller's). Other frameworks can call
:func:`authorize_header` and turn :class:`BearerError` into their own response.

Flask and FastAPI are imported only by their own submodules, so this package works with
either installed (and neither); JOSE is joserfc and HTTP is httpx.
"""

from authserver.resource.bearer import BearerError, authorize_header
from authserver.resource.verifier import (
    InvalidToken,
    JWTVerifier,
    VerifierUnavailable,
    cache_max_age,
)

__all__ = [
    "BearerError",
    "InvalidToken",
    "JWTVerifier",
    "VerifierUnavailable",
    "authorize_header",
    "cache_max_age",
]
