"""``authserver ARGS`` in the test process, through Click's runner: for tests of what a
command does, where the console script's subprocess start-up (about a second of imports per
command) would only add time. ``tests/test_cli.py`` covers the script itself."""

from __future__ import annotations

from collections.abc import Callable

from click.testing import CliRunner, Result

from authserver.cli import main
from authserver.config import Settings

InProcessCli = Callable[..., Result]


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
