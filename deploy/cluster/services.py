"""The shared services the instances use: one PostgreSQL and one Redis in the root namespace,
each of which the scenarios can stop, start again, hang (SIGSTOP) and wake (SIGCONT)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import redis

from deploy.cluster.network import BRIDGE_ADDRESS, SUBNET, free_port
from tests.support.postgres import PostgresServer
from tests.support.redis import bundled_redis_server
from tests.support.waiting import wait_until

SERVICE_START_SECONDS = 30
REDIS_STOP_SECONDS = 10


class ClusterPostgres(PostgresServer):
    """The tests' throw-away PostgreSQL, listening on the bridge address as well as on
    loopback and trusting the cluster's subnet (the instances connect from their
    namespaces). Binding the bridge address fails harmlessly when there is no bridge."""

    @classmethod
    def start(cls) -> ClusterPostgres:
        server = super().start()
        assert isinstance(server, ClusterPostgres)  # the parent builds ``cls``
        return server

    def resume(self) -> None:
        hba = self.data_dir / "pg_hba.conf"
        rule = f"host all all {SUBNET} trust\n"
        if rule not in hba.read_text():
            with hba.open("a") as handle:
                handle.write(rule)
        options = (
            f"-p {self.port} -k {self.base_dir} "
            f"-c listen_addresses=127.0.0.1,{BRIDGE_ADDRESS} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        log = str(self.base_dir / "server.log")
        self._run(
            "pg_ctl", "-D", str(self.data_dir), "-o", options, "-w", "-t", "60", "-l", log, "start"
        )

    def url_at(self, address: str, database: str) -> str:
        return f"postgresql+psycopg://postgres@{address}:{self.port}/{database}"

    def processes(self) -> list[int]:
        """The postmaster and every process it started (backends, checkpointer, ...)."""
        postmaster = int((self.data_dir / "postmaster.pid").read_text().split()[0])
        return [postmaster, *children_of(postmaster)]

    def hang(self) -> list[int]:
        """SIGSTOP every server process: connections stay open and nothing answers."""
        stopped = self.processes()
        for pid in stopped:
            os.kill(pid, signal.SIGSTOP)
        return stopped


def children_of(parent: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name (field 2) may hold spaces; the parent pid follows its ")".
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
            children.append(int(entry.name))
    return children


def wake(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass


@dataclass
class ClusterRedis:
    """``redis-server`` on ``address``: without persistence, so a restart starts empty (the
    counters of the failed-authentication limits are lost, as in a real restart without
    persistence)."""

    binary: str
    address: str
    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def start(cls, address: str) -> ClusterRedis:
        binary = bundled_redis_server() or shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("no redis-server: install the test extra (make) or Debian's")
        server = cls(binary, address, free_port(address), Path(tempfile.mkdtemp("-redis")))
        server.resume()
        return server

    @property
    def url(self) -> str:
        return f"redis://{self.address}:{self.port}/0"

    def resume(self) -> None:
        log = (self.directory / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [
                self.binary,
                "--bind", self.address,
                "--port", str(self.port),
                "--save", "",
                "--appendonly", "no",
                "--protected-mode", "no",
                "--dir", str(self.directory),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )  # fmt: skip
        log.close()
        client = redis.Redis(self.address, self.port, socket_timeout=1)
        try:
            wait_until(lambda: _answers(client), SERVICE_START_SECONDS, "redis-server up")
        finally:
            client.close()

    def pause(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(REDIS_STOP_SECONDS)
            self.process = None

    def hang(self) -> list[int]:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)
        return [self.process.pid]

    def stop(self) -> None:
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.kill()
            self.process.wait(REDIS_STOP_SECONDS)
            self.process = None
        shutil.rmtree(self.directory, ignore_errors=True)


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
