"""One JSON line per request, with the request id, for the operator's log pipeline.

No query string, header or body is logged: they may carry credentials.
"""

from __future__ import annotations

import logging
import time

from authserver.compact_json import compact_json

logger = logging.getLogger("authserver.access")

MAX_PATH_LENGTH = 200


def log_request(
    *,
    request_id: str,
    method: str,
    path: str,
    status: int,
    started: float,
    remote_addr: str | None,
) -> None:
    if not logger.isEnabledFor(logging.INFO):
        return
    record = {
        "event": "http.request",
        "request_id": request_id,
        "method": method,
        "path": path[:MAX_PATH_LENGTH],
        "status": status,
        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
        "remote_addr": remote_addr,
    }
    logger.info(compact_json(record))
