"""An example script run as a real process, as its README runs it, with exactly the
configuration a test gives: none of the script's own variables leaks in from the environment
running the tests (which may itself be a CI job or a pod)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Collection
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"
EXAMPLE_TIMEOUT_SECONDS = 60


def run_example(
    script: Path, own_variables: Collection[str], *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    inherited = {k: v for k, v in os.environ.items() if k not in own_variables}
    return subprocess.run(
        [sys.executable, str(script), *args],
        env={**inherited, **env},
        capture_output=True,
        text=True,
        timeout=EXAMPLE_TIMEOUT_SECONDS,
        check=False,
    )
