"""Warnings for the operator: one JSON line each on stderr, like the audit trail.

This is where the detail goes that must not reach HTTP answers (file paths, OS errors):
``/readyz`` says "a signing key file could not be loaded" to anyone, the log says which.
Without a configured handler, Python's last-resort handler writes the bare line to stderr,
in the CLI and in every server worker alike.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from authserver.compact_json import compact_json

logger = logging.getLogger("authserver.operator")


def warn(event: str, message: str, **details: str | int) -> None:
    """Log ``message`` (written for the person who has to act) with machine-readable fields."""
    record = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": "warning",
        "event": event,
        "message": message,
        **details,
    }
    logger.warning(compact_json(record))
