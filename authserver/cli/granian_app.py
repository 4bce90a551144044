"""granian embedded as a library: the HTTP server behind ``authserver serve``.

Chosen by measurement (docs/performance.md): its Rust HTTP/1.1 layer keeps connections alive
and parses requests outside Python, which leaves the workers' CPU to signing tokens. Each
worker process builds its own app (and its maintenance thread) after the fork.
"""

from __future__ import annotations

import os
import signal
import threading

from flask import Flask
from granian.constants import HTTPModes, Interfaces
from granian.log import LogLevels
from granian.server import Server

from authserver.app import create_app
from authserver.maintenance import Maintenance

#: Ctrl-C or SIGTERM: workers get this long to finish in-flight requests (contract: stop < 10 s).
GRACEFUL_TIMEOUT_SECONDS = 5
#: One request at a time per worker, like a sync worker: signing is CPU-bound, so more
#: threads would only contend for the GIL, and the app needs no thread-safety for requests.
THREADS_PER_WORKER = 1


#: granian's own messages (worker exits, bind errors) go where ours do, not to stdout.
_LOGS_ON_STDERR = {
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "generic",
            "stream": "ext://sys.stderr",
        },
        "access": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"},
    },
}


#: What stops a worker: the master's SIGTERM, and Ctrl-C's SIGINT sent to the process group.
STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


def load_worker_app() -> Flask:
    """Runs in each worker: the app, and the background work that belongs to this process."""
    _relay_stop_signals_from_one_thread()
    app = create_app()
    Maintenance(app).start()
    return app


def _relay_stop_signals_from_one_thread() -> None:
    """Make every stop signal reach the worker's handler, whichever thread it lands on.

    A signal sent to a process may be delivered to any thread that does not block it. The
    worker's main thread waits on a lock, so if the kernel picks one of granian's Rust threads
    (or ours), the Python handler only runs when something wakes the main thread: nothing
    does, and the master kills the worker after its timeout (a 5 s Ctrl-C about one time in
    five). So the signals are blocked in this thread before any other is created (threads
    inherit the mask), and one daemon thread takes them with ``sigwait`` and calls the handler
    installed for them, the way POSIX recommends for threaded programs.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)

    def relay() -> None:
        while True:
            received = signal.sigwait(STOP_SIGNALS)
            handler = signal.getsignal(received)
            if callable(handler):
                handler(received, None)
            elif handler != signal.SIG_IGN:  # no handler yet: what the default would do
                os._exit(128 + received)

    threading.Thread(target=relay, name="authserver-signals", daemon=True).start()


def serve(host: str, port: int, workers: int) -> None:
    server = Server(
        f"{__name__}:{load_worker_app.__name__}",
        factory=True,
        address=host,
        port=port,
        interface=Interfaces.WSGI,
        http=HTTPModes.http1,
        workers=workers,
        blocking_threads=THREADS_PER_WORKER,
        respawn_failed_workers=True,
        workers_kill_timeout=GRACEFUL_TIMEOUT_SECONDS,
        log_level=LogLevels.warning,
        log_dictconfig=_LOGS_ON_STDERR,
        log_access=False,
    )
    server.serve()
