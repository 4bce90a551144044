"""The server's own logs (audit trail, access log) are JSON lines on stderr."""

from __future__ import annotations

import logging
import sys


def configure_json_logs(*names: str) -> None:
    """Send these JSON-line loggers, bare, to stderr (the CLI calls this once).

    Our lines carry their own fields, so the logging module need not look up the caller's
    frame, thread and process for every record (the logging HOWTO's "Optimization" switches;
    two lines per token request made these a few percent of its CPU).
    """
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    for name in names:
        json_logger = logging.getLogger(name)
        if json_logger.handlers:
            continue
        json_logger.addHandler(JsonLineHandler(sys.stderr))
        json_logger.setLevel(logging.INFO)
        json_logger.propagate = False


class JsonLineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes each record's message as it is, one line: our messages are complete JSON lines.

    A formatter would only copy the message into itself; skipping it saved about a fifth of
    each line's cost (two lines per token request, see docs/performance.md).
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.stream.write(record.getMessage() + self.terminator)
            self.flush()
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001 (logging must never fail the request; as StreamHandler)
            self.handleError(record)
