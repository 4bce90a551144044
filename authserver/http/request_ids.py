"""A request id on every request: taken from ``X-Request-ID`` when sane, else generated.

It is echoed in the response and stamped on every audit event, so one request can be
followed from a client's log through ours. It lives in a context variable because the OAuth
endpoints run outside Flask's request context (see ``authserver.http.oauth``).
"""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar

HEADER = "X-Request-ID"
WSGI_HEADER = "HTTP_X_REQUEST_ID"
_SANE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_current: ContextVar[str | None] = ContextVar("request_id", default=None)


def assign(supplied: str) -> str:
    """Make the request id current for this request: the client's when sane, else a new one."""
    request_id = supplied if _SANE.fullmatch(supplied) else secrets.token_hex(16)
    _current.set(request_id)
    return request_id


def current_request_id() -> str | None:
    return _current.get()
