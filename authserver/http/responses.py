"""JSON responses in the shapes the contract fixes."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from flask import Response

#: RFC 6749 §5.1/§5.2: token and error responses must never be cached.
NO_STORE = (("Cache-Control", "no-store"), ("Pragma", "no-cache"))


def json_response(
    status: int, body: dict[str, Any], headers: Iterable[tuple[str, str]] = ()
) -> Response:
    response = Response(
        json.dumps(body, separators=(",", ":")), status=status, mimetype="application/json"
    )
    for name, value in headers:
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def error_response(
    status: int, error: str, description: str, headers: Iterable[tuple[str, str]] = ()
) -> Response:
    """An RFC 6749 §5.2 error body; uncacheable like every OAuth error."""
    return json_response(
        status, {"error": error, "error_description": description}, (*NO_STORE, *headers)
    )
