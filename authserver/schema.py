"""Applying the Alembic migrations to the app's database.

The migrations live in the checkout's top-level ``migrations/``; ``authserver/migrations`` is a
relative link to it, and a built wheel carries the files themselves under that name (see
``[options.package_data]`` in setup.cfg). So the folder beside this module is the right one in
a checkout, an editable install and a wheel install alike, whatever the current directory.
"""

from __future__ import annotations

import fcntl
import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from flask import Flask
from sqlalchemy import Engine, text

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory

#: Resolved, so that in a checkout Alembic and its messages name the canonical ``migrations/``
#: rather than the link.
MIGRATIONS_DIR = (Path(__file__).parent / "migrations").resolve()


#: The PostgreSQL advisory lock that serialises ``db upgrade`` across hosts (any fixed number;
#: these are the bytes of "authsrvr").
UPGRADE_LOCK_KEY = 0x6175746873727672


def upgrade_schema(app: Flask) -> None:
    """Bring the database to the newest revision (idempotent), one host at a time.

    Several hosts may run it at once (each instance's start-up script does): without the lock
    two of them create the same tables together, and PostgreSQL fails one with a duplicate
    key in ``pg_type``. With it, the first migrates and the others find nothing left to do.

    Flask-Migrate and Alembic are imported here, not at start-up: they cost more import
    time than the rest of the app together and only this command needs them.
    """
    import flask_migrate

    from authserver.extensions import db

    flask_migrate.Migrate(app, db, directory=str(MIGRATIONS_DIR))
    with app.app_context(), _upgrade_lock(db.engine):
        flask_migrate.upgrade(directory=str(MIGRATIONS_DIR))


@contextmanager
def _upgrade_lock(engine: Engine) -> Iterator[None]:
    """Held while migrating: PostgreSQL's advisory lock on a connection of its own, or for
    SQLite an exclusive ``flock`` on the database's folder.

    SQLite's own locks are POSIX record locks on the database file, which this process would
    drop if it closed another descriptor of that file; a lock on the folder cannot touch them.
    """
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": UPGRADE_LOCK_KEY})
            try:
                yield
            finally:
                connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": UPGRADE_LOCK_KEY}
                )
        return
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    folder = os.open(Path(database).parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        yield
    finally:
        os.close(folder)  # releases the lock


@functools.cache
def _migration_scripts() -> ScriptDirectory:
    """The migration scripts, read once per process: Alembic executes every one of them to
    learn the revisions, and they do not change while the process runs."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS_DIR))


def schema_behind(app: Flask) -> str | None:
    """Why the database is not ready for this version (never migrated, or at an older
    revision), or None when it is at the newest revision or at one this version does not
    know (a newer version migrated it, as in a rolling upgrade)."""
    from alembic.runtime.migration import MigrationContext

    from authserver.extensions import db

    scripts = _migration_scripts()
    head = scripts.get_current_head()
    with app.app_context(), db.engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current == head:
        return None
    if current is None:
        return "the database has no schema yet"
    known = {script.revision for script in scripts.walk_revisions()}
    if current not in known:
        return None
    return f"the database schema is at revision {current}, this version needs {head}"
