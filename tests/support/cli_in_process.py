"""``authserver ARGS`` in the test process, through Click's runner: for tests of what a
command does, where the console script's subprocess start-up (about a second of imports per
command) would only add time. ``tests/test_cli.py`` covers the script itself.

Two flavours: ``in_process_cli(settings)`` returns Click's ``Result``; ``run_in_process(env,
...)`` and ``make_in_process_runner(env)`` take the same environment as
``tests.support.cli.run_authserver`` and return the same ``CompletedProcess``, so a test
written for the subprocess keeps its assertions (``ok``, ``ok_json``,
``assert_one_line_error``) unchanged.
"""

from __future__ import annotations

import logging
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from click.testing import CliRunner, Result

from authserver.cli import context as cli_context
from authserver.cli import main
from authserver.config import Settings
from authserver.extensions import db
from tests.support.cli import AUTHSERVER, RunCli

InProcessCli = Callable[..., Result]

#: Loggers that have no handler when a process starts: the root (so that, as in the console
#: script, a warning no handler takes goes to stderr through ``logging.lastResort``, not to
#: pytest's capture) and the one the ``authserver`` group configures (``configure_json_logs``).
CLI_LOGGERS = ("", "authserver.audit")
#: The loggers ``db upgrade`` reconfigures (migrations/alembic.ini, through ``fileConfig``).
ALEMBIC_LOGGERS = ("sqlalchemy", "alembic", "flask_migrate")
#: The logging module's switches ``configure_json_logs`` turns off for the process.
_LOGGING_SWITCHES = ("_srcfile", "logThreads", "logProcesses", "logMultiprocessing")


def in_process_cli(settings: Settings) -> InProcessCli:
    """A runner of ``authserver`` commands against ``settings``' database and keys folder."""
    env = {
        "AUTHSERVER_DATABASE_URL": settings.database_url,
        "AUTHSERVER_KEYS_DIR": str(settings.keys_dir),
        "AUTHSERVER_ISSUER": settings.issuer,
    }

    def run(*args: str) -> Result:
        return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)

    return run


@contextmanager
def _as_a_fresh_process() -> Iterator[None]:
    """What a new process would start with, and the test process's state back afterwards.

    The group adds a stderr handler to the audit logger once per process (and turns off
    propagation): here it gets none, so it adds one on the runner's stderr, and the audit
    lines land in the result's stderr as they would in a subprocess's. The root logger has
    no handler either, at its default level, so the operator's warnings reach that stderr
    too. The test process's own logging (``caplog`` included) is restored after, as are the
    loggers Alembic's ``fileConfig`` sets. Each invocation gets its own audit
    ``request_id``, as each process does. The pools of the apps the command made are closed,
    as a process's exit closes its connections: ``db upgrade`` leaves its pool to the exit,
    and an open SQLite connection keeps the last writes in the ``-wal`` file, out of a copy
    of the database file.
    """
    saved_switches = {name: getattr(logging, name) for name in _LOGGING_SWITCHES}
    saved_loggers = []
    for name in (*CLI_LOGGERS, *ALEMBIC_LOGGERS):
        logger = logging.getLogger(name)
        saved_loggers.append(
            (logger, list(logger.handlers), logger.level, logger.propagate, logger.disabled)
        )
        if name in CLI_LOGGERS:
            logger.handlers = []
    logging.getLogger().setLevel(logging.WARNING)
    saved_invocation = cli_context._INVOCATION_ID
    cli_context._INVOCATION_ID = f"cli-{uuid.uuid4().hex}"
    apps_before = set(db._app_engines.keys())
    try:
        yield
    finally:
        for app, engines in list(db._app_engines.items()):
            if app not in apps_before:
                for engine in engines.values():
                    engine.dispose()
        cli_context._INVOCATION_ID = saved_invocation
        for logger, handlers, level, propagate, disabled in saved_loggers:
            logger.handlers = handlers
            logger.setLevel(level)
            logger.propagate = propagate
            logger.disabled = disabled
        for name, value in saved_switches.items():
            setattr(logging, name, value)


def run_in_process(
    env: Mapping[str, str], *args: str, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``run_authserver(env, *args, input=input)`` without the subprocess.

    ``env`` is a whole environment, as ``tests.support.cli.base_env`` makes: its values are
    set for the command and any ``AUTHSERVER_*`` variable it lacks is unset. Click's
    standalone handling gives the same exit status and ``Error:`` line as the console script;
    an exception no handler turns into one is raised into the test (the script would print a
    traceback, which the helpers refuse anyway).
    """
    overrides: dict[str, str | None] = {
        name: value for name, value in env.items() if os.environ.get(name) != value
    }
    for name in os.environ:
        if name.startswith("AUTHSERVER_") and name not in env:
            overrides[name] = None
    with _as_a_fresh_process():
        result = CliRunner().invoke(
            main,
            list(args),
            input=input if input is not None else "",
            env=overrides,
            prog_name=AUTHSERVER.name,
            catch_exceptions=False,
        )
    return subprocess.CompletedProcess(
        [str(AUTHSERVER), *args], result.exit_code, result.stdout, result.stderr
    )


def make_in_process_runner(env: Mapping[str, str]) -> RunCli:
    """``run_in_process`` bound to ``env``: ``tests.support.cli.make_runner``'s twin."""

    def run(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return run_in_process(env, *args, input=input)

    return run
