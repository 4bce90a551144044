"""The FastAPI dependency: the claims of a valid token granting the route's scopes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import HTTPException, Request

from authserver.resource.bearer import BearerError, authorize_header
from authserver.resource.verifier import JWTVerifier


def require_scope(
    verifier: JWTVerifier, *scopes: str, realm: str | None = None
) -> Callable[..., dict[str, Any]]:
    """A FastAPI dependency (``Depends(require_scope(verifier, "x"))``) returning the
    claims of a valid token granting all ``scopes``; otherwise ``HTTPException`` with the
    RFC 6750 status and headers (body: ``{"detail": {"error", "error_description"}}``). It is a
    plain ``def``, so FastAPI runs the blocking key fetch in its threadpool."""

    def dependency(request: Request) -> dict[str, Any]:
        try:
            return authorize_header(verifier, request.headers.get("Authorization"), scopes, realm)
        except BearerError as error:
            raise HTTPException(error.status, detail=error.body, headers=error.headers) from None

    return dependency
