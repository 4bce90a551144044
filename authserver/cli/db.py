"""``authserver db upgrade``: apply the Alembic migrations in ``migrations/``."""

from __future__ import annotations

import click
import flask_migrate

from authserver import MIGRATIONS_DIR
from authserver.cli.context import app_context


@click.group("db")
def group() -> None:
    """Manage the database schema."""


@group.command("upgrade")
def upgrade() -> None:
    """Apply all pending migrations."""
    with app_context():
        flask_migrate.upgrade(directory=str(MIGRATIONS_DIR))
