"""The Flask decorator: a view runs only for a valid token granting its scopes."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import g, jsonify, request

from authserver.resource.bearer import BearerError, authorize_header
from authserver.resource.verifier import JWTVerifier

ViewT = TypeVar("ViewT", bound=Callable[..., Any])


def require_scope(
    verifier: JWTVerifier, *scopes: str, realm: str | None = None
) -> Callable[[ViewT], ViewT]:
    """Decorator for a (sync) Flask view: runs the view only for a valid token granting all
    ``scopes``, with the claims in ``flask.g.token_claims``; otherwise answers RFC 6750 JSON."""

    def decorator(view: ViewT) -> ViewT:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                claims = authorize_header(
                    verifier, request.headers.get("Authorization"), scopes, realm
                )
            except BearerError as error:
                response = jsonify(error.body)
                response.status_code = error.status
                response.headers.update(error.headers)
                return response
            g.token_claims = claims
            return view(*args, **kwargs)

        return cast(ViewT, wrapper)

    return decorator
