"""A request id on every request: taken from ``X-Request-ID`` when sane, else generated.

It is echoed in the response and stamped on every audit event, so one request can be
followed from a client's log through ours.
"""

from __future__ import annotations

import re
import uuid

from flask import Flask, Response, g, request

HEADER = "X-Request-ID"
_SANE = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def init_app(app: Flask) -> None:
    app.before_request(_assign)
    app.after_request(_echo)


def current_request_id() -> str | None:
    return g.get("request_id")


def _assign() -> None:
    supplied = request.headers.get(HEADER, "")
    g.request_id = supplied if _SANE.fullmatch(supplied) else uuid.uuid4().hex


def _echo(response: Response) -> Response:
    request_id = current_request_id()
    if request_id:
        response.headers[HEADER] = request_id
    return response
