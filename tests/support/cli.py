"""The ``authserver`` console script in real subprocesses: its path, a clean environment, and
ways to run it (to completion, or killed if it starts serving when it should have failed)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

#: The console script installed next to the interpreter running the tests.
AUTHSERVER = Path(sys.executable).parent / "authserver"
CLI_TIMEOUT_SECONDS = 120
#: A command that wrongly starts serving instead of failing is stopped after this long.
COMMAND_TIMEOUT_SECONDS = 60

#: The fields of a client object as the CLI and the registry show it (never a secret).
CLIENT_FIELDS = {
    "client_id",
    "name",
    "scope",
    "audiences",
    "token_ttl",
    "enabled",
    "created_at",
    "last_used_at",
    "token_endpoint_auth_method",
    "max_tokens_per_hour",
}

RunCli = Callable[..., subprocess.CompletedProcess[str]]


def base_env(database_url: str, keys_dir: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without any AUTHSERVER_* leaking in, plus the two paths."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSERVER_")}
    env["AUTHSERVER_DATABASE_URL"] = database_url
    env["AUTHSERVER_KEYS_DIR"] = str(keys_dir)
    env.update(extra)
    return env


def sqlite_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """``base_env`` for a SQLite file and a keys folder inside ``tmp_path``."""
    return base_env(f"sqlite:///{tmp_path / 'authserver.db'}", tmp_path / "keys", **extra)


def run_authserver(
    env: dict[str, str], *args: str, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``authserver *args`` to completion; stdin is ``input`` (empty when not given)."""
    return subprocess.run(
        [str(AUTHSERVER), *args],
        env=env,
        input=input if input is not None else "",
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=CLI_TIMEOUT_SECONDS,
        check=False,
    )


def run_python_module(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m authserver *args`` with the test interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "authserver", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        check=False,
    )


def make_runner(env: dict[str, str]) -> RunCli:
    """``run_authserver`` bound to ``env``."""

    def run(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return run_authserver(env, *args, input=input)

    return run


def start_authserver(
    env: dict[str, str], *args: str, stdin: int = subprocess.DEVNULL
) -> subprocess.Popen[str]:
    """``authserver *args`` in the background, its output captured as text."""
    return subprocess.Popen(
        [str(AUTHSERVER), *args],
        env=env,
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_to_exit(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a command that should fail fast; if it starts serving instead, kill its whole group."""
    process = subprocess.Popen(
        [str(AUTHSERVER), *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=COMMAND_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(
            f"`authserver {' '.join(args)}` kept running instead of exiting "
            f"within {COMMAND_TIMEOUT_SECONDS}s"
        )
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    """Exit 0 without a traceback."""
    assert result.returncode == 0, (
        f"`{' '.join(map(str, result.args))}` exit {result.returncode}; stderr:\n{result.stderr}"
    )
    assert "Traceback" not in result.stderr
    return result


def ok_json(result: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(ok(result).stdout)


def assert_one_line_error(result: subprocess.CompletedProcess[str], status: int = 1) -> str:
    """Exit ``status``, no traceback, exactly one line on stderr; returns that line."""
    assert result.returncode == status, (
        f"exit {result.returncode}; stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one stderr line, got:\n{result.stderr}"
    return lines[0]
