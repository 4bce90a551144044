"""A request that raises ``ResultPending``, through :class:`BufferedGateway` under a real
granian server with one worker: the request waits for its future without holding the
worker's event loop, and runs again once the future is done.

The app served is the tiny one below (granian imports this module in its worker): what a
request waits for is a future that another request completes, from a thread of its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import pytest
import requests

from authserver.http.envelope import Envelope
from authserver.http.gateway import BufferedGateway
from authserver.security.pending import ResultPending
from authserver.security.secrets import SLOW_CHECKS_ALLOWED, SlowCheckNeeded
from tests.support.postgres import free_port
from tests.support.server import Server
from tests.support.waiting import wait_until

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

REPOSITORY = Path(__file__).resolve().parent.parent
#: The gateway's wait for a future in this server (the production one is 6 s).
REMOTE_WAIT_SECONDS = 1.0
ANSWER_TIMEOUT_SECONDS = 10

# -- the app, in the granian worker ------------------------------------------------------------

#: The futures requests wait for, by name; and how many times each named request ran.
_futures: dict[str, Future[Any]] = {}
_runs: dict[str, int] = {}
_lock = threading.Lock()


def _future(name: str) -> Future[Any]:
    with _lock:
        return _futures.setdefault(name, Future())


def _tiny_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    name = parse_qs(environ["QUERY_STRING"]).get("name", [""])[0]
    if path == "/wait":
        # Count the run, then ask for the future: a real endpoint records nothing before this.
        with _lock:
            _runs[name] = _runs.get(name, 0) + 1
        future = _future(name)
        if not future.done():
            raise ResultPending(future)
        body = environ["wsgi.input"].read()
        text = f"ran {_runs[name]} times; body {body.decode()}"
    elif path == "/complete":
        future = _future(name)
        if "fail" in environ["QUERY_STRING"]:
            complete = threading.Thread(target=future.set_exception, args=(RuntimeError("boom"),))
        else:
            complete = threading.Thread(target=future.set_result, args=(None,))
        complete.start()
        text = "completing"
    elif path == "/chain":
        # Needs the futures name-1, name-2, ... in turn: each run waits for the first not done.
        steps = int(parse_qs(environ["QUERY_STRING"])["steps"][0])
        with _lock:
            _runs[name] = _runs.get(name, 0) + 1
        for step in range(1, steps + 1):
            if not _future(f"{name}-{step}").done():
                raise ResultPending(_future(f"{name}-{step}"))
        text = f"ran {_runs[name]} times"
    elif path == "/always-pending":
        done: Future[Any] = Future()
        done.set_result(None)
        raise ResultPending(done)  # and again on the second run
    elif path == "/pending-in-slow-lane":
        if not SLOW_CHECKS_ALLOWED.get():
            raise SlowCheckNeeded
        raise ResultPending(_future(name))
    elif path == "/state":
        future = _future(name)
        text = f"runs={_runs.get(name, 0)} done={future.done()} cancelled={future.cancelled()}"
    else:  # /healthz, /ping
        text = "pong"
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [text.encode()]


def load_gateway() -> BufferedGateway:
    """granian's factory, in the worker: the tiny app inside the real envelope (which answers
    the gateway's refusals), behind the real gateway."""
    return BufferedGateway(
        Envelope(_tiny_app, ()),
        max_body_bytes=1024,
        body_deadline=5,
        remote_wait=float(os.environ["PENDING_TEST_REMOTE_WAIT"]),
    )


# -- the tests ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("gateway-pending")
    port = free_port()
    env = {
        **os.environ,
        "PENDING_TEST_REMOTE_WAIT": str(REMOTE_WAIT_SECONDS),
        "PYTHONPATH": str(REPOSITORY),
    }
    stderr_path = directory / "granian.stderr"
    handle = stderr_path.open("wb")
    command = [sys.executable, "-m", "granian", "--interface", "rsgi", "--factory"]
    command += ["--workers", "1", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(
        [*command, f"{__name__}:{load_gateway.__name__}"],
        cwd=REPOSITORY,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=handle,
        stderr=handle,
        start_new_session=True,
    )
    served = Server(process, port, env, stderr_path, handle)
    try:
        served.wait_until_healthy()
        yield served
    finally:
        served.kill()


def get(server: Server, path: str, **kwargs: Any) -> requests.Response:
    return requests.get(f"{server.url}{path}", timeout=ANSWER_TIMEOUT_SECONDS, **kwargs)


def state(server: Server, name: str) -> str:
    return get(server, f"/state?name={name}").text


def test_a_pending_request_is_answered_once_its_future_completes_and_the_loop_stays_free(
    server: Server,
) -> None:
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(
            requests.post,
            f"{server.url}/wait?name=first",
            data=b"the body",
            timeout=ANSWER_TIMEOUT_SECONDS,
        )
        # Every request below is answered by the one worker while the first one waits.
        wait_until(
            lambda: "runs=1 " in state(server, "first"), 5, "the first run raised ResultPending"
        )
        started = time.monotonic()
        for _ in range(10):
            assert get(server, "/ping").text == "pong"
        assert time.monotonic() - started < 2
        assert not waiting.done(), "the pending request still waits for its future"
        assert get(server, "/complete?name=first").status_code == 200
        answer = waiting.result(timeout=ANSWER_TIMEOUT_SECONDS)
    assert answer.status_code == 200
    # Run again after the wait, with the same body.
    assert answer.text == "ran 2 times; body the body"


@pytest.mark.parametrize(("steps", "status"), [(2, 200), (3, 503)])
def test_a_request_waits_for_a_chain_of_two_fetches_and_no_more(
    server: Server, steps: int, status: int
) -> None:
    """A trusted issuer's discovery document, then the keys it names: two fetches in turn."""
    name = f"chain{steps}"
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(get, server, f"/chain?name={name}&steps={steps}")
        for step in range(1, 3):
            wait_until(lambda s=step: f"runs={s} " in state(server, name), 5, f"run {step}")
            get(server, f"/complete?name={name}-{step}")
        answer = waiting.result(timeout=ANSWER_TIMEOUT_SECONDS)
    assert answer.status_code == status
    if status == 200:
        assert answer.text == "ran 3 times"


def test_a_future_that_fails_still_ends_the_wait(server: Server) -> None:
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(get, server, "/wait?name=failing")
        wait_until(lambda: "runs=1 " in state(server, "failing"), 5, "the first run")
        get(server, "/complete?name=failing&fail=1")
        answer = waiting.result(timeout=ANSWER_TIMEOUT_SECONDS)
    assert answer.status_code == 200
    assert answer.text.startswith("ran 2 times")


def test_still_pending_after_the_wait_is_503_with_retry_after_and_the_future_lives_on(
    server: Server,
) -> None:
    started = time.monotonic()
    answer = get(server, "/wait?name=never")
    waited = time.monotonic() - started
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "1"
    assert answer.json()["error"] == "temporarily_unavailable"
    assert REMOTE_WAIT_SECONDS <= waited < REMOTE_WAIT_SECONDS + 2
    # Shared with whoever else waits for it: the gateway's timeout did not cancel it.
    assert state(server, "never") == "runs=2 done=False cancelled=False"


def test_pending_again_after_a_completed_future_is_503_at_once(server: Server) -> None:
    started = time.monotonic()
    answer = get(server, "/always-pending")
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "1"
    assert time.monotonic() - started < REMOTE_WAIT_SECONDS


def test_pending_in_the_slow_lane_is_503(server: Server) -> None:
    started = time.monotonic()
    answer = get(server, "/pending-in-slow-lane?name=slow-lane")
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "1"
    assert time.monotonic() - started < REMOTE_WAIT_SECONDS
