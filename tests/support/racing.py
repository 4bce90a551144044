"""Processes that start together, as hosts booting at once or admins scripting in parallel do,
without each paying the import of the server (a second or two per process on this machine).

Each process is forked from a clean server process that imported ``authserver`` once
(multiprocessing's *forkserver*, started once per test worker): it shares nothing with the
test process or with the other racers (no connection, lock, thread or cache), has its own
environment, stdin, stdout and stderr, and runs the command through the console script's
entry point. What these tests are about is what several processes do to one database at once;
the console script as an executable is tested in ``tests/test_cli.py``.

One difference from an ``exec``: module-level state computed at import (such as the CLI's
per-invocation audit id) is the forkserver's and so the same in every racer.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Barrier
from pathlib import Path

#: Imported by the forkserver before it forks anything: the commands the racing tests run
#: (the CLI loads each command's module only when it runs), and Alembic for ``db upgrade``.
PRELOADED = [
    "authserver.__main__",
    "authserver.cli",
    "authserver.cli.context",
    "authserver.cli.clients",
    "authserver.cli.db",
    "authserver.cli.keys",
    "authserver.cli.serve",
    "alembic.command",
    "flask_migrate",
    "tests.support.racing",
]
#: Per racer: as long as the subprocess runs of tests/support/cli.py may take.
RACE_TIMEOUT_SECONDS = 120


def preloaded_context() -> ForkServerContext:
    """The forkserver context whose server has imported the CLI (it starts at first use)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOADED)
    return context


def _as_console_script(
    args: Sequence[str], env: Mapping[str, str], output: Path, start: Barrier
) -> None:
    """In the racer: the environment, the standard streams and ``argv`` a console script
    would have, then its entry point (whose ``SystemExit`` becomes the exit status)."""
    os.environ.clear()
    os.environ.update(env)
    streams = (
        (os.open(os.devnull, os.O_RDONLY), 0),
        (os.open(output / "stdout", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 1),
        (os.open(output / "stderr", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 2),
    )
    for descriptor, standard in streams:
        os.dup2(descriptor, standard)
        os.close(descriptor)
    sys.argv = ["authserver", *args]
    from authserver.__main__ import main

    start.wait()
    main()


@dataclass(frozen=True)
class Racer:
    """One started ``authserver`` process."""

    process: BaseProcess
    output: Path
    args: Sequence[str]
    #: Held until the racer is done: the semaphore under it goes when it is collected, and a
    #: racer that has not yet taken it would fail.
    start: Barrier

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def poll(self) -> int | None:
        """The exit status, or None while it runs (as ``Popen.poll``)."""
        return self.process.exitcode

    def result(self) -> subprocess.CompletedProcess[str]:
        """Wait for it to exit; what ``subprocess.run`` would have returned."""
        self.process.join(RACE_TIMEOUT_SECONDS)
        if self.process.exitcode is None:
            self.process.kill()
            self.process.join()
            raise AssertionError(f"authserver {' '.join(self.args)} still running at the timeout")
        return subprocess.CompletedProcess(
            ["authserver", *self.args],
            self.process.exitcode,
            (self.output / "stdout").read_text(),
            (self.output / "stderr").read_text(),
        )


def start_together(
    runs: Sequence[tuple[Mapping[str, str], Sequence[str]]], folder: Path
) -> list[Racer]:
    """``authserver ARGS`` once per ``(env, args)`` in ``runs``, released at the same moment
    once all are started; the processes, in the same order."""
    context = preloaded_context()
    start = context.Barrier(len(runs))
    racers = []
    for number, (env, args) in enumerate(runs):
        output = folder / f"racer-{number}"
        output.mkdir(parents=True)
        process = context.Process(target=_as_console_script, args=(args, env, output, start))
        process.start()
        racers.append(Racer(process, output, args, start))
    return racers


def run_together(
    runs: Sequence[tuple[Mapping[str, str], Sequence[str]]], folder: Path
) -> list[subprocess.CompletedProcess[str]]:
    """:func:`start_together`, then each one's result."""
    return [racer.result() for racer in start_together(runs, folder)]
