"""A throw-away Redis server for the tests: ``redis-server`` on a free loopback port, in a temp
dir, with persistence off; stopped (and its dir removed) on teardown."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from tests.support.postgres import free_port

STARTUP_TIMEOUT_SECONDS = 10
STOP_TIMEOUT_SECONDS = 10


def find_redis_server() -> str:
    """The ``redis-server`` binary; fails the test run in CI (where it must exist), else skips."""
    binary = shutil.which("redis-server")
    if binary is not None:
        return binary
    if os.environ.get("CI"):
        pytest.fail(
            "redis-server is not on PATH, and CI must run these tests: apt-get install redis-server"
        )
    pytest.skip("redis-server is not installed: apt-get install redis-server")


@dataclass
class RedisServer:
    process: subprocess.Popen[bytes]
    port: int
    base_dir: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @classmethod
    def start(cls) -> RedisServer:
        binary = find_redis_server()
        base_dir = Path(tempfile.mkdtemp(prefix="authserver-redis-"))
        port = free_port()
        log = base_dir / "server.log"
        command = [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--dir",
            str(base_dir),
            "--logfile",
            str(log),
        ]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        server = cls(process, port, base_dir)
        try:
            server._wait_until_ready(log)
        except BaseException:
            server.stop()
            raise
        return server

    def _wait_until_ready(self, log: Path) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = log.read_text(errors="replace") if log.exists() else ""
                raise RuntimeError(f"redis-server exited with {self.process.returncode}:\n{output}")
            try:
                with self.client() as client:
                    if client.ping():
                        return
            except redis.exceptions.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer PING within {STARTUP_TIMEOUT_SECONDS}s")

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)

    def flush(self) -> None:
        """Forget every key (every rate-limit counter) in the database the tests use."""
        with self.client() as client:
            client.flushdb()

    def stop(self) -> None:
        try:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)
