"""gunicorn embedded as a library, so ``authserver serve`` needs no separate config file."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.workers.sync import SyncWorker

from authserver import create_app
from authserver.config import Settings
from authserver.maintenance import Maintenance


class FinishingSyncWorker(SyncWorker):  # type: ignore[misc]
    """On Ctrl-C, finish the request in hand, then exit.

    gunicorn's own worker exits from inside the signal handler, cutting a response mid-write
    (the client gets a broken answer, the log a traceback). Stopping between requests still
    ends within moments: the master kills any worker still busy after the graceful timeout.
    """

    def handle_quit(self, sig: int, frame: Any) -> None:
        self.alive = False


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
