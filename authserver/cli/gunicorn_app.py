"""gunicorn embedded as a library, so ``authserver serve`` needs no separate config file."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from gunicorn import util
from gunicorn.app.base import BaseApplication
from gunicorn.http.errors import (
    ConfigurationProblem,
    InvalidResponseHeader,
    InvalidResponseHeaderName,
    LimitRequestHeaders,
    LimitRequestLine,
    ParseException,
)
from gunicorn.workers.sync import SyncWorker

from authserver import create_app
from authserver.config import Settings
from authserver.maintenance import Maintenance

#: Parse errors that are the server's or the app's doing: gunicorn's own answer stands.
_NOT_THE_CLIENTS_FAULT = (ConfigurationProblem, InvalidResponseHeader, InvalidResponseHeaderName)
_CLIENT_ERROR_STATUS = {
    LimitRequestLine: (414, "URI Too Long"),
    LimitRequestHeaders: (431, "Request Header Fields Too Large"),
}


class FinishingSyncWorker(SyncWorker):  # type: ignore[misc]
    """gunicorn's sync worker, finishing requests on Ctrl-C and answering bad HTTP in JSON.

    On Ctrl-C it finishes the request in hand, then exits. gunicorn's own worker exits from
    inside the signal handler, cutting a response mid-write (the client gets a broken answer,
    the log a traceback). Stopping between requests still ends within moments: the master
    kills any worker still busy after the graceful timeout.
    """

    def handle_quit(self, sig: int, frame: Any) -> None:
        self.alive = False

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        """Requests gunicorn cannot parse get our JSON error, not its HTML page.

        These never reach the app (a request line over 4094 bytes, a header over 8190, more
        than 100 headers, an unsupported transfer coding, a malformed line); clients still
        deserve an RFC 6749 error body and a 4xx, never gunicorn's 501 for their input.
        """
        if not isinstance(exc, ParseException) or isinstance(exc, _NOT_THE_CLIENTS_FAULT):
            super().handle_error(req, client, addr, exc)
            return
        status, reason = _CLIENT_ERROR_STATUS.get(type(exc), (400, "Bad Request"))
        self.log.warning("Invalid request from ip=%s: %s", (addr or ("",))[0], exc)
        body = json.dumps(
            {
                "error": "invalid_request",
                "error_description": f"{reason}: the request is malformed.",
            }
        ).encode()
        head = (
            f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
            "Content-Type: application/json\r\nCache-Control: no-store\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        with contextlib.suppress(OSError):
            util.write_nonblock(client, head.encode("latin-1") + body)


class GunicornServer(BaseApplication):  # type: ignore[misc]
    """Runs gunicorn in-process with our options; each worker builds its own app after fork."""

    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self._settings = settings
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for name, value in self._options.items():
            self.cfg.set(name, value)
        self.cfg.set("worker_class", FinishingSyncWorker)
        self.cfg.set("post_worker_init", _start_worker_background_tasks)
        self.cfg.set("child_exit", _forget_worker_metrics)

    def load(self) -> Any:
        return create_app(self._settings)


def _start_worker_background_tasks(worker: Any) -> None:
    """In each worker, after its app is loaded: threads started before fork would not survive."""
    Maintenance(worker.wsgi).start()


def _forget_worker_metrics(server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges from the shared metrics (prometheus_client's rule)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
