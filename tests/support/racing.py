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
from multiprocessing.context import ForkServerContext
from multiprocessing.synchronize import Barrier
from pathlib import Path

#: Imported by the forkserver before it forks anything.
PRELOADED = ["authserver.__main__", "authserver.cli", "tests.support.racing"]
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


def run_together(
    runs: Sequence[tuple[Mapping[str, str], Sequence[str]]], folder: Path
) -> list[subprocess.CompletedProcess[str]]:
    """``authserver ARGS`` once per ``(env, args)`` in ``runs``, all released at the same
    moment; their results in the same order, as ``subprocess.run`` would give them."""
    context = preloaded_context()
    start = context.Barrier(len(runs))
    racers = []
    for number, (env, args) in enumerate(runs):
        output = folder / f"racer-{number}"
        output.mkdir(parents=True)
        process = context.Process(target=_as_console_script, args=(args, env, output, start))
        process.start()
        racers.append((process, output, args))
    results = []
    for process, output, args in racers:
        process.join(RACE_TIMEOUT_SECONDS)
        if process.exitcode is None:
            process.kill()
            process.join()
            raise AssertionError(f"authserver {' '.join(args)} still running after the timeout")
        results.append(
            subprocess.CompletedProcess(
                ["authserver", *args],
                process.exitcode,
                (output / "stdout").read_text(),
                (output / "stderr").read_text(),
            )
        )
    return results
