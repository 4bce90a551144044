"""``authserver ARGS`` as a process of its own that does not pay the import of the server
(a second or two per process on this machine, the bulk of what a test starting many servers
and commands spends).

Each process is forked from a clean server process that imported ``authserver`` once
(multiprocessing's *forkserver*, started once per test worker): it shares nothing with the
test process or with other such processes (no connection, lock, thread or cache), and runs the
console script's entry point with its own environment, ``argv``, standard streams and, if
asked, session. The console script as an executable is tested in ``tests/test_cli.py`` and
``tests/test_packaging.py``.

One difference from an ``exec``: module-level state computed at import (such as the CLI's
per-invocation audit id) is the forkserver's and so the same in every such process.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Barrier
from pathlib import Path

from tests.support.cli import AUTHSERVER

#: Imported by the forkserver before it forks anything: the commands the tests run in forked
#: processes (the CLI loads each command's module only when it runs), the server's app, and
#: Alembic for ``db upgrade``.
PRELOADED = [
    "authserver.__main__",
    "authserver.cli",
    "authserver.cli.context",
    "authserver.cli.clients",
    "authserver.cli.db",
    "authserver.cli.keys",
    "authserver.cli.serve",
    "authserver.cli.granian_app",
    "authserver.http.handlers",
    "authserver.runtime",
    "authserver.maintenance",
    "alembic.command",
    "flask_migrate",
    "tests.support.forked",
]


def preloaded_context() -> ForkServerContext:
    """The forkserver context whose server has imported the CLI (it starts at first use)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOADED)
    return context


def _console_script(
    args: Sequence[str],
    env: Mapping[str, str],
    stdout: Path,
    stderr: Path,
    new_session: bool,
    start: Barrier | None,
) -> None:
    """In the new process: the session, environment, standard streams and ``argv`` a console
    script would have, then its entry point (whose ``SystemExit`` is the exit status)."""
    if new_session:
        os.setsid()
    os.environ.clear()
    os.environ.update(env)
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(os.open(stdout, flags, 0o600), 1)
    os.dup2(os.open(stderr, flags, 0o600), 2)
    sys.argv = [str(AUTHSERVER), *args]
    # multiprocessing gave this process the forking test's start method; a console script
    # starts with the platform's (fork), with which granian starts its workers.
    multiprocessing.set_start_method("fork", force=True)
    from authserver.__main__ import main

    if start is not None:
        start.wait()
    main()


class ForkedProcess:
    """The few parts of ``subprocess.Popen`` the tests use, for a forked console script."""

    def __init__(self, process: BaseProcess, args: Sequence[str], start: Barrier | None) -> None:
        self._process = process
        self.args = ["authserver", *args]
        #: Held while the process runs: the semaphore under it goes when it is collected,
        #: and a process that has not yet taken it would fail.
        self._start = start

    @property
    def pid(self) -> int:
        assert self._process.pid is not None
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.exitcode

    def poll(self) -> int | None:
        return self._process.exitcode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        if self._process.exitcode is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        return self._process.exitcode

    def kill(self) -> None:
        self._process.kill()


def start_console_script(
    args: Sequence[str],
    env: Mapping[str, str],
    stdout: Path,
    stderr: Path | None = None,
    *,
    new_session: bool = False,
    start: Barrier | None = None,
) -> ForkedProcess:
    """``authserver ARGS`` with ``env``, appending its output to ``stdout`` (and ``stderr``,
    which defaults to the same file); ``new_session`` as ``Popen``'s ``start_new_session``;
    with ``start``, it runs the command once all parties have reached that barrier."""
    process = preloaded_context().Process(
        target=_console_script,
        args=(list(args), dict(env), stdout, stderr or stdout, new_session, start),
    )
    process.start()
    return ForkedProcess(process, args, start)
