"""Processes that start together, as hosts booting at once or admins scripting in parallel do:
each a forked console script (:mod:`tests.support.forked`), all released at the same moment.
What these tests are about is what several processes do to one database at once."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.support.forked import ForkedProcess, preloaded_context, start_console_script

#: Per racer: as long as the subprocess runs of tests/support/cli.py may take.
RACE_TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class Racer:
    """One started ``authserver`` process and where its output goes."""

    process: ForkedProcess
    output: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def poll(self) -> int | None:
        """The exit status, or None while it runs (as ``Popen.poll``)."""
        return self.process.poll()

    def result(self) -> subprocess.CompletedProcess[str]:
        """Wait for it to exit; what ``subprocess.run`` would have returned."""
        try:
            status = self.process.wait(RACE_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(f"{' '.join(self.process.args)} still running") from None
        return subprocess.CompletedProcess(
            self.process.args,
            status,
            (self.output / "stdout").read_text(),
            (self.output / "stderr").read_text(),
        )


def start_together(
    runs: Sequence[tuple[Mapping[str, str], Sequence[str]]], folder: Path
) -> list[Racer]:
    """``authserver ARGS`` once per ``(env, args)`` in ``runs``, released at the same moment
    once all are started; the processes, in the same order."""
    start = preloaded_context().Barrier(len(runs))
    racers = []
    for number, (env, args) in enumerate(runs):
        output = folder / f"racer-{number}"
        output.mkdir(parents=True)
        process = start_console_script(args, env, output / "stdout", output / "stderr", start=start)
        racers.append(Racer(process, output))
    return racers


def run_together(
    runs: Sequence[tuple[Mapping[str, str], Sequence[str]]], folder: Path
) -> list[subprocess.CompletedProcess[str]]:
    """:func:`start_together`, then each one's result."""
    return [racer.result() for racer in start_together(runs, folder)]
