"""A throw-away PostgreSQL server for the tests, started with initdb/pg_ctl in a temp dir.

Ours rather than pytest-postgresql's ``postgresql_proc``, which does not serve here:

- CI and these machines run as root, and initdb refuses to run as root. pytest-postgresql
  runs ``pg_ctl initdb`` as the current user with no way to name another, so it fails at
  once; this helper runs the server binaries as the ``postgres`` account (``runuser``).
- tests/test_database_faults.py stops the server mid-test and starts it again on the same
  port and data (``pause``/``resume``).
- ``make reliability`` (deploy/reliability/) starts the
  server outside pytest, from plain Python.

Missing server binaries raise (the tests needing them error, they never skip): .ci/run
installs Debian's postgresql.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

SERVER_BINARIES_GLOB = "/usr/lib/postgresql/*/bin"
#: initdb refuses to run as root; as root the tests run the server as this account.
UNPRIVILEGED_USER = "postgres"


def find_bin_dir() -> Path:
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    candidates = sorted(glob.glob(SERVER_BINARIES_GLOB), key=_major_version, reverse=True)
    for candidate in candidates:
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    raise RuntimeError(
        "PostgreSQL server binaries (initdb, pg_ctl) are not on PATH nor in "
        f"{SERVER_BINARIES_GLOB}; install Debian's postgresql package (.ci/run does)"
    )


def _major_version(path: str) -> int:
    try:
        return int(Path(path).parent.name)
    except ValueError:
        return 0


def free_port() -> int:
    """A loopback port that nothing listens on now (the kernel's pick), for a server to take."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresServer:
    """One server: its binaries, its temp dir (data, socket, log) and its loopback port."""

    bin_dir: Path
    base_dir: Path
    port: int
    run_as: list[str]

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @classmethod
    def start(cls) -> PostgresServer:
        """A new server, its temp dir in the system's temp dir."""
        return cls.start_in(None)

    @classmethod
    def start_in(cls, parent: Path | None) -> PostgresServer:
        """A new server whose temp dir is made in ``parent`` (the system's temp dir when
        ``None``)."""
        bin_dir = find_bin_dir()
        base_dir = Path(tempfile.mkdtemp(prefix="authserver-pg-", dir=parent))
        run_as: list[str] = []
        if os.geteuid() == 0:
            account = pwd.getpwnam(UNPRIVILEGED_USER)
            os.chown(base_dir, account.pw_uid, account.pw_gid)
            run_as = ["runuser", "-u", UNPRIVILEGED_USER, "--"]
        server = cls(bin_dir, base_dir, free_port(), run_as)
        server._run(
            "initdb",
            "-D",
            str(server.data_dir),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
            "--locale=C",
        )
        server.resume()
        return server

    def resume(self) -> None:
        """Start (or restart) the server on the same port and data."""
        options = (
            f"-p {self.port} -k {self.base_dir} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        log = str(self.base_dir / "server.log")
        self._run(
            "pg_ctl", "-D", str(self.data_dir), "-o", options, "-w", "-t", "60", "-l", log, "start"
        )

    def pause(self) -> None:
        """Stop the server, cutting every connection, keeping its data for ``resume``.

        A fast (not immediate) shutdown: with the test server's ``synchronous_commit=off``
        a crash would also lose the last commits, which is not what the tests are about.
        """
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop")

    def _run(self, program: str, *args: str) -> None:
        command = [*self.run_as, str(self.bin_dir / program), *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{program} failed: {result.stderr.strip() or result.stdout}")

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str, template: str | None = None) -> str:
        """A new database (a copy of ``template`` when given, which nobody may be connected
        to); its SQLAlchemy URL."""
        copy_of = f' TEMPLATE "{template}"' if template is not None else ""
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"{copy_of}')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name``, closing any connection left to it (``WITH (FORCE)``)."""
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)


#: Shared memory, where the Linux machines running the tests have it: a server's data there
#: costs no disk writes (hundreds of test databases of a few MB each, copied from a template).
# S108: only the parent of a mkdtemp folder (made 0700, with a random name), never a file.
MEMORY_TEMP_DIR = Path("/dev/shm")  # noqa: S108


def memory_temp_dir() -> Path | None:
    """``MEMORY_TEMP_DIR`` when it is a writable folder here, else ``None`` (the system's
    temp dir)."""
    usable = MEMORY_TEMP_DIR.is_dir() and os.access(MEMORY_TEMP_DIR, os.W_OK | os.X_OK)
    return MEMORY_TEMP_DIR if usable else None


@contextmanager
def running_postgres(parent: Path | None = None) -> Iterator[PostgresServer]:
    """A throw-away server for the block's duration, its temp dir in ``parent`` (see
    ``PostgresServer.start``); its data is removed afterwards."""
    server = PostgresServer.start_in(parent)
    try:
        yield server
    finally:
        server.stop()
