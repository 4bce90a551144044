"""A request that needs a result not yet at hand, on a thread that must not wait for it."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any


class ResultPending(Exception):
    """The result this request needs (a client's key set, say) is being fetched elsewhere;
    ``future`` completes when the fetch ends, however it ends.

    The server runs requests on its worker's event loop (``authserver.http.gateway``), where
    waiting seconds for another host would hold up every other client of the worker. So the
    code that needs the result raises this instead of waiting; the gateway awaits ``future``
    without holding the loop, then runs the request again from the start, and the second run
    finds the result (or the remembered failure) ready. Because the request runs twice,
    nothing may have been recorded for it before this is raised: no failed authentication
    counted, no ``jti`` used up, no audit event, no access-log line.
    """

    def __init__(self, future: Future[Any]) -> None:
        super().__init__("a result this request needs is being fetched")
        self.future = future
