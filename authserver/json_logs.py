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
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        json_logger.addHandler(handler)
        json_logger.setLevel(logging.INFO)
        json_logger.propagate = False
