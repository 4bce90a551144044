"""``authserver serve`` (granian) in a process of its own (forked from a preloaded server, see
:mod:`tests.support.forked`): started in its own session on a free port, waited for on
``/healthz``, its stdout and stderr captured to a file, and its whole process group killed on
teardown."""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import pytest
import requests

from tests.support.cli import run_to_exit
from tests.support.forked import start_console_script
from tests.support.postgres import free_port
from tests.support.waiting import poll, wait_until

STARTUP_TIMEOUT_SECONDS = 30
STOP_DEADLINE_SECONDS = 10


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def local_url(host: str, port: int) -> str:
    """Where a client on this machine reaches a server bound to ``host`` (a wildcard address
    answers on loopback; an IPv6 address goes in brackets)."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class ServerProcess(Protocol):
    """What is used of a server's process: a ``subprocess.Popen`` (deploy/ starts the real
    console script) or a forked one (the tests, :mod:`tests.support.forked`)."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def kill(self) -> None: ...


@dataclass
class Server:
    process: ServerProcess
    port: int
    env: dict[str, str]
    stderr_path: Path
    _stderr_handle: Any = field(repr=False)
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return local_url(self.host, self.port)

    @property
    def keys_dir(self) -> Path:
        return Path(self.env["AUTHSERVER_KEYS_DIR"])

    def stderr(self) -> str:
        """Everything the server wrote so far (stdout and stderr)."""
        return self.stderr_path.read_text(errors="replace")

    def wait_until_healthy(self) -> None:
        def healthy() -> bool:
            if self.process.poll() is not None:
                pytest.fail(f"serve exited with {self.process.returncode}:\n{self.stderr()}")
            try:
                return requests.get(f"{self.url}/healthz", timeout=2).status_code == 200
            except requests.ConnectionError:
                return False

        wait_until(
            healthy, STARTUP_TIMEOUT_SECONDS, "/healthz up", interval=0.1, detail=self.stderr
        )

    def kill(self) -> None:
        """Teardown: stop the whole process group (master and workers), whatever state it is in."""
        if group_alive(self.process.pid):
            os.killpg(self.process.pid, signal.SIGINT)

            def stopped() -> bool:
                self.process.poll()  # reaps the master once it exits
                return not group_alive(self.process.pid)

            poll(stopped, STOP_DEADLINE_SECONDS)
            if group_alive(self.process.pid):
                os.killpg(self.process.pid, signal.SIGKILL)
        try:
            self.process.wait(timeout=STOP_DEADLINE_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._stderr_handle.close()


class Servers:
    """Starts servers whose output goes to files in ``directory``; as a context manager, kills
    every one it started on exit."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.started: list[Server] = []

    def start(
        self, env: dict[str, str], *, workers: int = 2, wait: bool = True, host: str = "127.0.0.1"
    ) -> Server:
        """``authserver serve --host host`` on a free port. ``AUTHSERVER_ISSUER`` defaults to
        the server's own URL; with ``wait``, returns once ``/healthz`` answers."""
        port = free_port()
        stderr_path = self.directory / f"serve-{port}.stderr"
        handle = stderr_path.open("wb")
        env = {**env, "AUTHSERVER_ISSUER": env.get("AUTHSERVER_ISSUER", local_url(host, port))}
        command = ["serve", "--host", host, "--port", str(port), "--workers", str(workers)]
        process = start_console_script(command, env, stderr_path, new_session=True)
        server = Server(process, port, env, stderr_path, handle, host)
        self.started.append(server)
        if wait:
            server.wait_until_healthy()
        return server

    def __enter__(self) -> Servers:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for server in self.started:
            server.kill()


def serve_to_exit(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``authserver serve`` on a free port, expected to refuse to start."""
    return run_to_exit(["serve", "--port", str(free_port()), "--workers", "1"], env)
