"""What every command needs: validated settings and an app context with the database."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from flask import Flask
from sqlalchemy.exc import SQLAlchemyError

from authserver.app import create_app
from authserver.audit import audit_event
from authserver.config import Settings
from authserver.extensions import db
from authserver.security.counters import counters_for
from authserver.services.formatting import printable
from authserver.services.keys import key_store


def load_settings() -> Settings:
    """Validate the whole configuration before any command runs, keys folder included (the
    database key store has no folder to check).

    Every command fails the same way on a bad value, even one it would not use itself. The
    rate-limit storage is checked as the server's limits open it (``counters_for``), which
    loads the ``limits`` library only for a storage other than the default ``memory://``.
    """
    settings = Settings.from_env()
    key_store(settings).prepare()
    if settings.ratelimit_enabled:
        counters_for(settings.ratelimit_storage_url)
    return settings


def current_settings() -> Settings:
    """The settings the ``authserver`` group validated for this invocation."""
    settings = click.get_current_context().find_object(Settings)
    if settings is None:
        raise RuntimeError("commands run inside the authserver group")
    return settings


@contextmanager
def app_context() -> Iterator[Flask]:
    """An app context for one command; its database connections are closed on the way out."""
    app = create_app(current_settings(), with_http=False)
    with app.app_context():
        try:
            yield app
        finally:
            db.session.remove()
            db.engine.dispose()


def emit_json(document: Any) -> None:
    click.echo(json.dumps(document, indent=2))


def describe_database_error(exc: SQLAlchemyError) -> str:
    """One line an admin can act on, without SQL or parameters (they may hold hashes)."""
    detail = str(getattr(exc, "orig", None) or type(exc).__name__).strip().splitlines()[0]
    return (
        f"database error ({detail}); is the database reachable and migrated "
        "(authserver db upgrade)?"
    )


#: One id per CLI invocation, so the audit events of one command can be grouped.
_INVOCATION_ID = f"cli-{uuid.uuid4().hex}"


def audit(event: str, client_id: str | None = None, **details: Any) -> None:
    """Record a successful admin change in the audit trail."""
    audit_event(event, outcome="success", client_id=client_id, request_id=_INVOCATION_ID, **details)


def output_object(view: dict[str, Any], as_json: bool) -> None:
    """A client or trust object: JSON, or one ``field: value`` line per field."""
    if as_json:
        emit_json(view)
    else:
        print_object(view)


def print_object(view: dict[str, Any]) -> None:
    """One ``field: value`` line per field; stored text is escaped so it stays on its line."""
    for field, value in view.items():
        if field == "client_secret":
            continue
        if isinstance(value, dict):  # a JWK Set: public keys, on one line
            value = json.dumps(value, separators=(",", ":"))
        shown = ", ".join(value) if isinstance(value, list) else value
        if shown in (None, ""):
            shown = "-"
        click.echo(f"{field}: {printable(shown) if isinstance(shown, str) else shown}")
