"""A WSGI app behind a real threaded HTTP server on a free loopback port, for the length of a
``with`` block: the server side of the in-process tests and the test APIs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from werkzeug.serving import make_server

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

SHUTDOWN_TIMEOUT_SECONDS = 5


@contextmanager
def serving(app: WSGIApplication) -> Iterator[str]:
    """Serve ``app`` and yield its base URL (``http://127.0.0.1:PORT``)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=SHUTDOWN_TIMEOUT_SECONDS)
