"""The WSGI app factory and the database settings every process of the server shares."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from werkzeug.middleware.proxy_fix import ProxyFix

from authserver.config import MAX_BODY_BYTES, Settings
from authserver.errors import ConfigError
from authserver.security import owner_only

SQLITE_BUSY_TIMEOUT_MS = 5000
#: What SQLite keeps beside the database file while it works (WAL, shared memory, rollback).
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def create_app(settings: Settings | None = None, *, with_http: bool = True) -> Flask:
    """Build the WSGI app; ``settings`` defaults to the validated environment.

    CLI commands that only use the database pass ``with_http=False``: they skip the OAuth
    layer and its imports, which keeps every admin command quick to start.
    """
    from authserver.extensions import db

    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config.update(
        SQLALCHEMY_DATABASE_URI=_database_uri(settings.database_url),
        SQLALCHEMY_ENGINE_OPTIONS=_engine_options(settings.database_url),
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        AUTHSERVER_SETTINGS=settings,
    )
    db.init_app(app)
    if with_http:
        from authserver import http

        http.init_app(app, settings)
    if settings.trusted_proxies:
        # Behind N proxies, the client's address (for the failed-authentication limits and
        # the logs) is the Nth X-Forwarded-For entry from the right; never trusted otherwise.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.trusted_proxies, x_proto=settings.trusted_proxies
        )
    return app


def _database_uri(database_url: str) -> str:
    """Anchor a relative SQLite path at the current directory, as the contract says.

    Flask-SQLAlchemy would otherwise put it under the app's instance folder inside the
    package. The file is made ready here, so that a fresh checkout works without set-up.
    """
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return database_url
    path = Path(url.database).absolute()
    _prepare_sqlite_file(path)
    return url.set(database=str(path)).render_as_string(hide_password=False)


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


def _engine_options(database_url: str) -> dict[str, object]:
    if make_url(database_url).get_backend_name() == "sqlite":
        return {}
    # Reconnect transparently after the database restarts instead of failing one request.
    return {"pool_pre_ping": True}


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: object, connection_record: object) -> None:
    """Per-connection SQLite settings for a server with several worker processes.

    Foreign keys are enforced only when asked; WAL lets readers (every token request) go on
    while the CLI or a worker writes; the busy timeout makes a writer wait for the lock
    instead of failing at once with "database is locked".
    """
    if type(dbapi_connection).__module__ == "sqlite3":
        cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()
