"""A queued worker sends a client to an idle one: its answer closes the connection when another
worker of the instance has nothing in hand, at most once per interval, and never when the
workers are equally busy or alone."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from authserver.http.gateway import BufferedGateway
from authserver.http.worker_loads import SHED_INTERVAL_SECONDS, WorkerLoads, create_file
from tests.support.rsgi import Scope

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def table(tmp_path: Path) -> str:
    path = str(tmp_path / "loads")
    create_file(path)
    return path


def test_a_queued_worker_closes_one_connection_while_another_idles(table: str) -> None:
    clock = Clock()
    busy = WorkerLoads(table, clock=clock)
    WorkerLoads(table, clock=clock)  # the other worker: nothing in hand
    busy.begin()
    busy.begin()
    assert busy.end() is True  # two in hand, the other worker none
    busy.begin()
    assert busy.end() is False  # asked a moment ago: not again yet
    clock.now += SHED_INTERVAL_SECONDS
    busy.begin()
    assert busy.end() is True
    assert busy.end() is False  # only this request in hand now: not queued


def test_equally_busy_workers_close_nothing(table: str) -> None:
    first, second = WorkerLoads(table), WorkerLoads(table)
    for loads in (first, second):
        loads.begin()
        loads.begin()
    assert first.end() is False
    assert second.end() is False


def test_a_worker_alone_closes_nothing() -> None:
    alone = WorkerLoads(None)
    for _ in range(5):
        alone.begin()
    assert alone.end() is False


def test_a_worker_that_is_gone_is_not_taken_for_an_idle_one(table: str) -> None:
    """A dead worker's slot reads as idle; it must not draw clients that cannot reach it."""
    child = os.fork()
    if child == 0:  # the child claims a slot and exits at once
        WorkerLoads(table)
        os._exit(0)
    os.waitpid(child, 0)
    busy = WorkerLoads(table)  # takes the dead worker's slot: the table holds one worker
    busy.begin()
    busy.begin()
    assert busy.end() is False


def _app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


HEADERS = [("content-length", "2")]


class _Protocol:
    def __init__(self, body_arrives: asyncio.Event) -> None:
        self._body_arrives = body_arrives
        self.headers: list[tuple[str, str]] = []

    async def __call__(self) -> bytes:
        await self._body_arrives.wait()
        return b"{}"

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.headers = headers


def test_the_gateway_answers_with_connection_close_when_queued_beside_an_idle_worker(
    table: str,
) -> None:
    """Two requests in one worker (the first still waiting for its body) while the other
    worker has none: the answer to the second closes its connection."""
    WorkerLoads(table)  # the other worker: nothing in hand
    gateway = BufferedGateway(_app, max_body_bytes=64, body_deadline=5, loads=WorkerLoads(table))

    async def main() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        later, now = asyncio.Event(), asyncio.Event()
        now.set()
        slow, quick = _Protocol(later), _Protocol(now)
        waiting = asyncio.ensure_future(gateway(Scope("/", HEADERS), slow))  # type: ignore[arg-type]
        await asyncio.sleep(0)
        await gateway(Scope("/", HEADERS), quick)  # type: ignore[arg-type]
        later.set()
        await waiting
        return quick.headers, slow.headers

    quick_headers, slow_headers = asyncio.run(main())
    assert ("Connection", "close") in quick_headers
    assert ("Connection", "close") not in slow_headers  # alone in hand by then
