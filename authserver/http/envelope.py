"""What every response gets, whichever part of the app answers it: the request id, the
security headers and one access-log line.

A WSGI middleware rather than Flask hooks, because the OAuth endpoints are served outside
Flask's request machinery (see ``authserver.http.oauth``) and must get exactly the same.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from authserver.http import request_ids
from authserver.http.access_log import log_request
from authserver.http.errors import body_incomplete, body_too_large, busy, request_timeout
from authserver.http.gateway import REFUSED

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

#: The answers to requests the server front refused before reading them whole.
REFUSALS: dict[int, Callable[[], WSGIApplication]] = {
    400: body_incomplete,
    408: request_timeout,
    413: body_too_large,
    503: busy,
}


class Envelope:
    def __init__(self, app: WSGIApplication, headers: Iterable[tuple[str, str]]) -> None:
        self._app = app
        self._headers = tuple(headers)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        request_id = request_ids.assign(environ.get(request_ids.WSGI_HEADER, ""))

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            # A response that set one of them itself keeps its own value.
            present = {name.lower() for name, _ in headers}
            headers.extend(h for h in self._headers if h[0].lower() not in present)
            headers.append((request_ids.HEADER, request_id))
            log_request(
                request_id=request_id,
                method=environ.get("REQUEST_METHOD", ""),
                path=environ.get("PATH_INFO", ""),
                status=int(status.split(" ", 1)[0]),
                started=started,
                remote_addr=environ.get("REMOTE_ADDR"),
            )
            return start_response(status, headers, exc_info)

        refused = environ.get(REFUSED)
        if refused is not None:
            return REFUSALS[refused]()(environ, start)
        return self._app(environ, start)
