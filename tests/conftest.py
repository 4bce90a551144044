"""Shared fixtures: real databases (a SQLite file and a throw-away PostgreSQL), a real Redis,
real keys on disk, and the app served over real HTTP on a loopback port.

Under pytest-xdist every worker is its own pytest session, so each session-scoped server here
is started once per worker that needs it, on a port of its own.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from flask import Flask
from pytest_redis.config import get_config as redis_config
from pytest_redis.executor import RedisExecutor

from authserver.app import create_app
from authserver.config import Settings
from authserver.extensions import db
from authserver.schema import schema_behind, upgrade_schema
from authserver.security.keys import KeyStore
from authserver.services import registry
from authserver.services.formatting import client_view
from tests.support import redis as redis_support
from tests.support.postgres import PostgresServer, memory_temp_dir, running_postgres
from tests.support.wsgi import serving

ISSUER = "https://auth.example.test"


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server started for this test session from the machine's binaries, with
    our helper rather than pytest-postgresql (tests/support/postgres.py says why); its data in
    shared memory where there is some, so that its test databases cost no disk writes."""
    with running_postgres(memory_temp_dir()) as server:
        yield server


def pytest_configure(config: pytest.Config) -> None:
    """Point pytest-redis at the ``redis-server`` of the test extra, not at the machine's.

    The same binary then runs everywhere, and a machine without Redis installed still runs
    the Redis tests. ``--redis-exec`` (pytest-redis's own option) still chooses another.
    """
    if not config.getoption("redis_exec"):
        bundled = redis_support.bundled_redis_server()
        if bundled is not None:
            config.option.redis_exec = bundled


@pytest.fixture(scope="session")
def redis_server(request: pytest.FixtureRequest) -> RedisExecutor:
    """A Redis server for this session: pytest-redis's ``redis_proc``.

    pytest-redis starts it on a free port in a temp dir, keeps the ports of xdist workers
    apart through port files next to their temp dirs, waits until it accepts connections,
    and stops it at the session's end. Without a binary the tests that need one fail (they
    never skip, in CI or not): see ``tests.support.redis.missing_binary_message``.
    """
    problem = redis_support.missing_binary_message(redis_config(request).exec)
    if problem is not None:
        pytest.fail(problem, pytrace=False)
    server: RedisExecutor = request.getfixturevalue("redis_proc")
    return server


@pytest.fixture
def redis_url(redis_server: RedisExecutor) -> str:
    """The session's Redis, emptied first: no test sees another's counters (nor the address
    another blocked)."""
    with redis.Redis(
        host=redis_server.host, port=redis_server.port, socket_timeout=5, socket_connect_timeout=5
    ) as client:
        client.flushall()
    return redis_support.url(redis_server)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'authserver.db'}"


@pytest.fixture(scope="session")
def _migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once per session; copying it beats running Alembic per test."""
    directory = tmp_path_factory.mktemp("db-template")
    path = directory / "authserver.db"
    app = create_app(
        Settings(database_url=f"sqlite:///{path}", keys_dir=directory / "keys"), with_http=False
    )
    upgrade_schema(app)
    with app.app_context():
        db.engine.dispose()
    return path


@pytest.fixture
def migrated_sqlite_url(sqlite_url: str, tmp_path: Path, _migrated_sqlite_template: Path) -> str:
    """``sqlite_url``, already holding the current schema."""
    shutil.copyfile(_migrated_sqlite_template, tmp_path / "authserver.db")
    return sqlite_url


@pytest.fixture(scope="session")
def _migrated_postgres_template(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """The name of a PostgreSQL database migrated once per session: ``CREATE DATABASE ...
    TEMPLATE`` copies it faster than Alembic migrates a new one."""
    name = "authserver_migrated_template"
    url = postgres.create_database(name)
    app = create_app(
        Settings(database_url=url, keys_dir=tmp_path_factory.mktemp("pg-template") / "keys"),
        with_http=False,
    )
    upgrade_schema(app)
    with app.app_context():
        db.engine.dispose()
    return name


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test using this runs once against a SQLite file and once against PostgreSQL.

    Empty, unless the test uses ``app``, which migrates it anyway: then it is a copy of the
    session's migrated database, and the app's ``upgrade_schema`` finds nothing to do. A
    PostgreSQL database is dropped after its test.
    """
    migrated = "app" in request.fixturenames
    if request.param == "sqlite":
        path = tmp_path / "authserver.db"
        if migrated:
            shutil.copyfile(request.getfixturevalue("_migrated_sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    template = request.getfixturevalue("_migrated_postgres_template") if migrated else None
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield server.create_database(name, template=template)
    server.drop_database(name)


@pytest.fixture(scope="session")
def _template_keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One RSA key generated per session; tests get copies, since generation is slow."""
    directory = tmp_path_factory.mktemp("keys-template") / "keys"
    KeyStore(directory).generate()
    return directory


@pytest.fixture
def keys_dir(tmp_path: Path, _template_keys_dir: Path) -> Path:
    target = tmp_path / "keys"
    shutil.copytree(_template_keys_dir, target)
    return target


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module (or with ``indirect``) to change settings for its app."""
    return {}


@pytest.fixture
def settings(database_url: str, keys_dir: Path, settings_overrides: dict[str, Any]) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "issuer": ISSUER,
        "default_audience": ISSUER,
        "keys_dir": keys_dir,
    }
    values.update(settings_overrides)
    return Settings(**values)


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    """The app on a migrated database. Most databases are copies of a migrated template:
    asking their revision is cheaper than Alembic's no-op upgrade, which executes every
    migration script again (~50 ms a test)."""
    app = create_app(settings)
    if schema_behind(app) is not None:
        upgrade_schema(app)
    yield app
    with app.app_context():
        db.engine.dispose()


@dataclass(frozen=True)
class RegisteredClient:
    client_id: str
    client_secret: str
    view: dict[str, Any]


@pytest.fixture
def create_client(app: Flask) -> Callable[..., RegisteredClient]:
    """Register a client through the service layer; returns its one-time plaintext secret."""

    def factory(**overrides: Any) -> RegisteredClient:
        params: dict[str, Any] = {"name": "test service", "scope": "api"}
        params.update(overrides)
        with app.app_context():
            created = registry.create_client(db.session(), **params)
            db.session.commit()
            view = client_view(created.client)
        return RegisteredClient(view["client_id"], created.client_secret, view)

    return factory


@dataclass(frozen=True)
class LiveServer:
    url: str

    @property
    def token_url(self) -> str:
        return f"{self.url}/oauth2/token"

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/.well-known/jwks.json"


@pytest.fixture
def live_server(app: Flask) -> Iterator[LiveServer]:
    """The app behind a real threaded HTTP server on a free loopback port."""
    with serving(app) as url:
        yield LiveServer(url)


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session
