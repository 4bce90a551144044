"""One JSON line per request, with the request id, for the operator's log pipeline.

No query string, header or body is logged: they may carry credentials.
"""

from __future__ import annotations

import json
import logging
import time

from flask import Flask, Response, g, request

from authserver.http.request_ids import current_request_id

logger = logging.getLogger("authserver.access")


def init_app(app: Flask) -> None:
    app.before_request(_start_clock)
    app.after_request(_log)


def _start_clock() -> None:
    g.started = time.perf_counter()


def _log(response: Response) -> Response:
    if logger.isEnabledFor(logging.INFO):
        started = g.get("started")
        record = {
            "event": "http.request",
            "request_id": current_request_id(),
            "method": request.method,
            "path": request.path[:200],
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2) if started else None,
            "remote_addr": request.remote_addr,
        }
        logger.info(json.dumps(record, separators=(",", ":")))
    return response
