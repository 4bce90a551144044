"""``authserver db upgrade``: apply the Alembic migrations in ``migrations/``."""

from __future__ import annotations

import click

from authserver.app import create_app
from authserver.cli.context import current_settings
from authserver.schema import upgrade_schema


@click.group("db")
def group() -> None:
    """Manage the database schema."""


@group.command("upgrade")
def upgrade() -> None:
    """Apply all pending migrations."""
    upgrade_schema(create_app(current_settings(), with_http=False))
