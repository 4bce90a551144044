"""RFC 9457 problem details: how the admin API says what went wrong.

The OAuth endpoints answer in RFC 6749 §5.2's shape, which their clients expect; the admin
API is a plain JSON API, whose callers (scripts, CI jobs, other services) are better served by
the generic format with a title and a human-readable detail. Every failure of the admin API
leaves through :class:`Problem`, so no other shape (nor a traceback) can reach its callers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from flask import Response
from werkzeug.http import HTTP_STATUS_CODES

PROBLEM_MIMETYPE = "application/problem+json"
#: RFC 9457 §4.2.1: ``about:blank`` says the status code's own meaning is the whole story, and
#: the title is then its reason phrase. Every problem here is one: the status and the detail
#: say all a caller can act on (an RFC 6750 error code travels in ``WWW-Authenticate``).
BLANK = "about:blank"


class Problem(Exception):  # noqa: N818 - RFC 9457's own name for the thing
    """An admin API failure; raised anywhere below a view, answered by the API's handler."""

    def __init__(
        self,
        status: int,
        detail: str,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = tuple(headers)

    def response(self) -> Response:
        body = json.dumps(
            {
                "type": BLANK,
                "title": HTTP_STATUS_CODES.get(self.status, "Error"),
                "status": self.status,
                "detail": self.detail,
            },
            separators=(",", ":"),
        ).encode()
        response = Response(body, status=self.status, mimetype=PROBLEM_MIMETYPE)
        # An admin answer may name clients and keys: no shared cache keeps it.
        response.headers["Cache-Control"] = "no-store"
        for name, value in self.headers:
            response.headers[name] = value
        return response
