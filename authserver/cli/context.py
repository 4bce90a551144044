"""What every command needs: validated settings and an app context with the database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from flask import Flask
from sqlalchemy.exc import SQLAlchemyError

from authserver import create_app
from authserver.config import Settings


@contextmanager
def app_context(settings: Settings | None = None) -> Iterator[Flask]:
    app = create_app(settings or Settings.from_env())
    with app.app_context():
        yield app


def emit_json(document: Any) -> None:
    click.echo(json.dumps(document, indent=2))


def describe_database_error(exc: SQLAlchemyError) -> str:
    """One line an admin can act on, without SQL or parameters (they may hold hashes)."""
    detail = str(getattr(exc, "orig", None) or type(exc).__name__).strip().splitlines()[0]
    return (
        f"database error ({detail}); is the database reachable and migrated "
        "(authserver db upgrade)?"
    )
