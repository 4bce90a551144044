"""The database settings every process of the server shares: where SQLite's file lives (and
that it is private), how connections are pooled, and SQLite's per-connection pragmas."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.orm import Session

from authserver.errors import ConfigError
from authserver.security import owner_only

SQLITE_BUSY_TIMEOUT_MS = 5000
#: libpq's limit for establishing a connection (whole seconds; the contract's 2 s bound).
POSTGRES_CONNECT_TIMEOUT_SECONDS = 2
#: The serving app's limit for one statement: the server gives up on a query no request
#: still waits for (the request's own wait is bounded by ``services.database_guard``).
POSTGRES_STATEMENT_TIMEOUT_MS = 1500
#: What SQLite keeps beside the database file while it works (WAL, shared memory, rollback).
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def flask_sqlalchemy_config(database_url: str, *, serving: bool = False) -> dict[str, object]:
    """The Flask-SQLAlchemy settings for ``database_url``; ``serving``: for the server's
    workers, whose statements are time-limited (not the CLI's, whose migrations may be long)."""
    return {
        "SQLALCHEMY_DATABASE_URI": database_uri(database_url),
        "SQLALCHEMY_ENGINE_OPTIONS": _engine_options(database_url, serving=serving),
    }


def database_uri(database_url: str) -> str:
    """Anchor a relative SQLite path at the current directory, as the contract says.

    Flask-SQLAlchemy would otherwise put it under the app's instance folder inside the
    package. The file is made ready here, so that a fresh checkout works without set-up.
    """
    url = make_url(database_url)
    file = sqlite_file(url)
    if file is None:
        return database_url
    path = Path(file).absolute()
    _prepare_sqlite_file(path)
    return url.set(database=str(path)).render_as_string(hide_password=False)


def sqlite_file(url: URL) -> str | None:
    """The file of a SQLite URL; None for another database or an in-memory one."""
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return url.database


def _prepare_sqlite_file(path: Path) -> None:
    """Create the database file 0600 (its folder 0700), or take others' access off it.

    It holds the client secrets' hashes. SQLite itself would create it 0644, but it gives
    the ``-wal``, ``-shm`` and ``-journal`` files it creates the database file's own mode,
    so a private database file is enough for them; ones left by an earlier run are
    tightened too.
    """
    try:
        owner_only.create_folder(path.parent)
        created = owner_only.create_file(path)
    except OSError as exc:
        raise ConfigError(
            f"AUTHSERVER_DATABASE_URL: cannot create {path}: {exc.strerror}"
        ) from None
    if created:
        return
    for file in (path, *(path.with_name(path.name + s) for s in SQLITE_SIDE_FILES)):
        owner_only.tighten(file, "the database file")


def _engine_options(database_url: str, *, serving: bool) -> dict[str, object]:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return {}
    # These replace the URL's own parameters of the same name, so they extend them instead.
    connect_args: dict[str, object] = {
        "connect_timeout": url.query.get("connect_timeout", POSTGRES_CONNECT_TIMEOUT_SECONDS)
    }
    if serving:
        given = url.query.get("options", "")
        timeout = f"-c statement_timeout={POSTGRES_STATEMENT_TIMEOUT_MS}"
        connect_args["options"] = f"{timeout} {given}".strip()
    # Reconnect transparently after the database restarts instead of failing one request.
    return {"pool_pre_ping": True, "connect_args": connect_args}


def allow_long_statements(session: Session, seconds: float) -> None:
    """Lift the serving app's statement timeout to ``seconds`` for this transaction only:
    for background reads that may be large (the deny-list's full reload), never requests."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"SET LOCAL statement_timeout = {int(seconds * 1000)}"))


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: object, connection_record: object) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        configure_sqlite_connection(dbapi_connection, SQLITE_BUSY_TIMEOUT_MS)


def configure_sqlite_connection(connection: sqlite3.Connection, busy_timeout_ms: int) -> None:
    """Per-connection SQLite settings for a server with several worker processes: every
    engine's connections, and the used-assertion ledger's own (``services.assertion_ledger``).

    Foreign keys are enforced only when asked; WAL lets readers (every token request) go on
    while the CLI or a worker writes; the busy timeout makes a writer wait for the lock
    instead of failing at once with "database is locked". ``synchronous=NORMAL`` (SQLite's
    advice for WAL) syncs the log at checkpoints instead of at every commit: a key client's
    token request writes its assertion's row, and an fsync per commit held the worker's event
    loop (every request of the worker) for 5 to 20 ms each time. The database stays
    consistent; a power loss (not a crash of the server) may lose the last commits.
    """
    cursor = connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
