"""granian embedded as a library: the HTTP server behind ``authserver serve``.

Chosen by measurement (docs/performance.md): its Rust HTTP/1.1 layer keeps connections alive
and parses requests outside Python, which leaves the workers' CPU to signing tokens. Each
worker process builds its own app (and its maintenance thread) after the fork.

The app is served through granian's native interface (RSGI) by
:class:`authserver.http.gateway.BufferedGateway`, which waits for each request body on the
worker's event loop, so slow or stalled clients hold no worker. Stop signals reach the loop
from whichever thread the kernel delivers them to (CPython writes them to the loop's wake-up
descriptor), so a Ctrl-C never waits for the kill timeout.
"""

from __future__ import annotations

import os
import resource

from granian.constants import HTTPModes, Interfaces
from granian.http import HTTP1Settings
from granian.log import LogLevels
from granian.server import Server

from authserver.app import create_app
from authserver.config import MAX_BODY_BYTES, WORKER_LOADS_ENV, Settings
from authserver.http.gateway import BufferedGateway
from authserver.http.worker_loads import WorkerLoads
from authserver.maintenance import Maintenance

#: Ctrl-C or SIGTERM: workers get this long to finish in-flight requests (contract: stop < 10 s).
GRACEFUL_TIMEOUT_SECONDS = 5
#: A client must send its request head within this many seconds (granian's default is 30):
#: slow-header connections are cheap to open, and each is held until this deadline.
HEADER_DEADLINE_SECONDS = 10
#: Connections each worker keeps open at once. Waiting connections cost a pending coroutine
#: (see authserver.http.gateway), so the bound is set by file descriptors, not by threads:
#: granian's default (backlog / workers, 512 for two) let 1,100 idle connections shut out
#: every other client until the header deadline passed.
CONNECTIONS_PER_WORKER = 4096
#: Files a worker needs besides its connections: database, logs, metrics, keys.
RESERVED_FILE_DESCRIPTORS = 256
#: The kernel's queue of connections not yet accepted (capped by net.core.somaxconn).
LISTEN_BACKLOG = 4096


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


def load_worker_app() -> BufferedGateway:
    """Runs in each worker: the app, and the background work that belongs to this process."""
    settings = Settings.from_env()
    app = create_app(settings)
    Maintenance(app).start()
    return BufferedGateway(
        app,
        max_body_bytes=MAX_BODY_BYTES,
        body_deadline=settings.request_body_timeout,
        loads=WorkerLoads(os.environ.get(WORKER_LOADS_ENV)),
    )


def _raise_open_file_limit() -> None:
    """Let each worker hold its share of connections: many systems start processes with a
    soft limit of 1,024 open files, far below what a worker is allowed to accept."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = CONNECTIONS_PER_WORKER + RESERVED_FILE_DESCRIPTORS
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def serve(host: str, port: int, workers: int) -> None:
    _raise_open_file_limit()
    server = Server(
        f"{__name__}:{load_worker_app.__name__}",
        factory=True,
        address=host,
        port=port,
        interface=Interfaces.RSGI,
        http=HTTPModes.http1,
        workers=workers,
        backlog=LISTEN_BACKLOG,
        backpressure=CONNECTIONS_PER_WORKER,
        http1_settings=HTTP1Settings(header_read_timeout=HEADER_DEADLINE_SECONDS * 1000),
        respawn_failed_workers=True,
        workers_kill_timeout=GRACEFUL_TIMEOUT_SECONDS,
        log_level=LogLevels.warning,
        log_dictconfig=_LOGS_ON_STDERR,
        log_access=False,
    )
    server.serve()
