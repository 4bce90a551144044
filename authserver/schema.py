"""Applying the Alembic migrations to the app's database.

The migrations live in the checkout's top-level ``migrations/``; ``authserver/migrations`` is a
relative link to it, and a built wheel carries the files themselves under that name (see
``[options.package_data]`` in setup.cfg). So the folder beside this module is the right one in
a checkout, an editable install and a wheel install alike, whatever the current directory.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask

#: Resolved, so that in a checkout Alembic and its messages name the canonical ``migrations/``
#: rather than the link.
MIGRATIONS_DIR = (Path(__file__).parent / "migrations").resolve()


def upgrade_schema(app: Flask) -> None:
    """Bring the database to the newest revision (idempotent).

    Flask-Migrate and Alembic are imported here, not at start-up: they cost more import
    time than the rest of the app together and only this command needs them.
    """
    import flask_migrate

    from authserver.extensions import db

    flask_migrate.Migrate(app, db, directory=str(MIGRATIONS_DIR))
    with app.app_context():
        flask_migrate.upgrade(directory=str(MIGRATIONS_DIR))
