"""The audit trail: one JSON line per security-relevant event, on stderr.

Events name the client, the outcome and the request id; they never carry a secret, a
token, or the raw request. Values that come from the network are JSON-escaped and cut, so a
hostile client id cannot forge or break log lines.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from authserver.compact_json import compact_json

logger = logging.getLogger("authserver.audit")

MAX_FIELD_LENGTH = 128


def audit_event(
    event: str,
    *,
    outcome: str,
    client_id: str | None = None,
    request_id: str | None = None,
    **details: Any,
) -> None:
    record = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "event": event,
        "outcome": outcome,
        "client_id": _cut(client_id),
        "request_id": request_id,
        **{name: _cut(value) for name, value in details.items()},
    }
    logger.info(compact_json(record))


def _cut(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_FIELD_LENGTH:
        return value[:MAX_FIELD_LENGTH] + "…"
    return value
