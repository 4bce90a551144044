"""Applying the Alembic migrations in ``migrations/`` to the app's database."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


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
