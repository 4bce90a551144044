"""The key stores behind one interface (``SigningKeyStore``): the database store on SQLite
and PostgreSQL beside the files store, the lifecycle run through either, the previous
passphrase and ``keys rewrap``/``keys import``, concurrent starts and rotations in real
processes, and a worker's poller living through a PostgreSQL outage.
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import create_engine, text

from authserver.app import create_app
from authserver.config import Settings
from authserver.errors import KeyNotFound, KeyStoreError
from authserver.extensions import db
from authserver.schema import MIGRATIONS_DIR, upgrade_schema
from authserver.security.key_database import DatabaseKeyStore
from authserver.security.key_material import Passphrases
from authserver.security.keyring import RELOAD_INTERVAL_SECONDS, KeyRing, KeyRingLoader
from authserver.services import keys as key_service
from tests.support.cli import assert_one_line_error, ok, ok_json, sqlite_env
from tests.support.cli_in_process import run_in_process
from tests.support.forked import preloaded_context
from tests.support.postgres import PostgresServer
from tests.support.waiting import holds_throughout, wait_until

PASSPHRASE = "the current passphrase, 16+"
OLD_PASSPHRASE = "the previous passphrase, 16+"
RETENTION = timedelta(minutes=40)
STORES = ["files", "sqlite", "postgresql"]
#: Processes racing in the concurrency tests (the brief: 3 to 4, started through a barrier).
RACERS = 4


def migrated(database_url: str) -> str:
    app = create_app(Settings(database_url=database_url), with_http=False)
    upgrade_schema(app)
    with app.app_context():
        db.engine.dispose()
    return database_url


@pytest.fixture(params=STORES)
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for an empty store of each kind, sealed under ``PASSPHRASE``."""
    kind = request.param
    values: dict[str, Any] = {"keys_dir": tmp_path / "keys", "key_passphrase": PASSPHRASE}
    if kind == "files":
        values["database_url"] = f"sqlite:///{tmp_path / 'unused.db'}"
    else:
        values["key_store"] = "database"
        if kind == "sqlite":
            values["database_url"] = migrated(f"sqlite:///{tmp_path / 'authserver.db'}")
        else:
            server: PostgresServer = request.getfixturevalue("postgres")
            values["database_url"] = migrated(server.create_database(f"k_{uuid.uuid4().hex[:12]}"))
    return Settings(**values)


def ring(settings: Settings) -> KeyRing:
    return KeyRing(tuple(key_service.key_store(settings).load_all()))


def states(settings: Settings, now: datetime) -> dict[str, str]:
    return {s.key.kid: s.state for s in ring(settings).statuses(now, RETENTION)}


# --- the store contract, on every store ----------------------------------------------------


def test_store_round_trips_keys_and_their_schedule(store_settings: Settings) -> None:
    store = key_service.key_store(store_settings)
    later = datetime.now(UTC) + timedelta(hours=1)
    first = store.generate("ES256", 2048)
    staged = store.generate("RS256", 2048, later)
    assert sorted(store.load_all(), key=lambda k: k.kid) == sorted(
        [first, staged], key=lambda k: k.kid
    )
    [loaded] = [k for k in store.load_all() if k.kid == staged.kid]
    assert (loaded.alg, loaded.activates_at, loaded.created_at) == (
        "RS256",
        later,
        staged.created_at,
    )


def test_store_stamp_changes_with_every_put_and_delete(store_settings: Settings) -> None:
    store = key_service.key_store(store_settings)
    key = store.generate("ES256", 2048)
    before = store.stamp()
    assert store.stamp() == before
    store.put(replace(key, activates_at=key.activates_at + timedelta(seconds=1)))
    moved = store.stamp()
    assert moved != before
    store.delete(key.kid)
    assert store.stamp() not in (before, moved)
    with pytest.raises(KeyNotFound):
        store.delete(key.kid)


def test_store_add_keeps_a_stored_kid_unchanged(store_settings: Settings) -> None:
    store = key_service.key_store(store_settings)
    key = store.generate("ES256", 2048)
    assert store.add(replace(key, activates_at=key.activates_at + timedelta(days=1))) is False
    assert store.load_all() == [key]


def test_database_store_keeps_private_keys_as_encrypted_pkcs8(tmp_path: Path) -> None:
    url = migrated(f"sqlite:///{tmp_path / 'authserver.db'}")
    settings = Settings(database_url=url, key_store="database", key_passphrase=PASSPHRASE)
    key = key_service.key_store(settings).generate("EdDSA", 2048)
    engine = create_engine(url)
    with engine.connect() as connection:
        (pem,) = connection.execute(text("SELECT encrypted_private_key FROM signing_keys")).one()
    engine.dispose()
    assert pem.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert PASSPHRASE not in pem
    with pytest.raises(TypeError):  # encrypted: no key without the passphrase
        serialization.load_pem_private_key(pem.encode(), password=None)
    opened = serialization.load_pem_private_key(pem.encode(), password=PASSPHRASE.encode())
    public = opened.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    assert key.jwk.as_dict(private=False)["x"] == _b64(public)
    assert not (tmp_path / "keys").exists()
    in_clear = key_service.key_store(Settings(keys_dir=tmp_path / "plain")).generate("EdDSA")
    with pytest.raises(KeyStoreError, match="not encrypted"):
        key_service.key_store(settings).put(in_clear)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_migration_0004_adds_the_table_to_a_database_in_use(database_url: str) -> None:
    """A database at 0003 holding a client is upgraded in place (SQLite and PostgreSQL)."""
    import flask_migrate

    app = create_app(Settings(database_url=database_url), with_http=False)
    flask_migrate.Migrate(app, db, directory=str(MIGRATIONS_DIR))
    with app.app_context():
        flask_migrate.upgrade(directory=str(MIGRATIONS_DIR), revision="0003")
        db.session.execute(
            text(
                "INSERT INTO clients (client_id, name, scope, audiences, enabled, created_at) "
                "VALUES ('c1', 'kept', 'api', '[]', true, CURRENT_TIMESTAMP)"
            )
        )
        db.session.commit()
        flask_migrate.upgrade(directory=str(MIGRATIONS_DIR))
        assert db.session.scalar(text("SELECT name FROM clients")) == "kept"
        assert db.session.scalar(text("SELECT count(*) FROM signing_keys")) == 0
        db.session.remove()
        db.engine.dispose()


# --- the lifecycle through the database store ----------------------------------------------


@pytest.mark.parametrize("store_settings", ["sqlite", "postgresql"], indirect=True)
def test_lifecycle_on_the_database_store_matches_the_files_store(store_settings: Settings) -> None:
    settings = store_settings
    first = key_service.ensure_signing_key(settings)
    assert first is not None
    assert key_service.ensure_signing_key(settings) is None
    now = datetime.now(UTC)
    staged = key_service.rotate_key(settings, RETENTION, immediate=False, now=now)
    assert staged.activates_at == now + timedelta(seconds=settings.key_propagation_delay)
    assert states(settings, now) == {first.kid: "active", staged.kid: "next"}
    signer = key_service.revoke_key(settings, first.kid, RETENTION, now=now)
    assert signer is not None
    assert signer.kid == staged.kid
    assert states(settings, now) == {staged.kid: "active"}


# --- previous passphrase, rewrap, import ---------------------------------------------------


@pytest.mark.parametrize("store_settings", STORES, indirect=True)
def test_previous_passphrase_opens_old_keys_and_rewrap_reseals_them(
    store_settings: Settings,
) -> None:
    old = replace(store_settings, key_passphrase=OLD_PASSPHRASE)
    sealed_old = key_service.key_store(old).generate("ES256", 2048)
    with pytest.raises(KeyStoreError, match="cannot be decrypted"):
        key_service.key_store(store_settings).load_all()

    both = replace(store_settings, key_passphrase_previous=OLD_PASSPHRASE)
    sealed_new = key_service.key_store(both).generate("ES256", 2048)
    assert {k.kid for k in key_service.key_store(both).load_all()} == {
        sealed_old.kid,
        sealed_new.kid,
    }
    assert key_service.rewrap_keys(both) == (1, 2)
    assert key_service.rewrap_keys(both) == (0, 2)
    assert len(key_service.key_store(store_settings).load_all()) == 2  # no previous needed


@pytest.mark.parametrize("store_settings", ["files", "postgresql"], indirect=True)
def test_rewrap_stops_on_a_key_neither_passphrase_opens_and_changes_nothing(
    store_settings: Settings,
) -> None:
    stranger = replace(store_settings, key_passphrase="a passphrase nobody has")
    lost = key_service.key_store(stranger).generate("ES256", 2048)
    old = replace(store_settings, key_passphrase=OLD_PASSPHRASE)
    key_service.key_store(old).generate("ES256", 2048)
    both = replace(store_settings, key_passphrase_previous=OLD_PASSPHRASE)
    before = key_service.key_store(both).stamp()
    with pytest.raises(KeyStoreError, match=lost.kid):
        key_service.rewrap_keys(both)
    assert key_service.key_store(both).stamp() == before


@pytest.fixture
def sqlite_database_env(tmp_path: Path) -> dict[str, str]:
    env = sqlite_env(
        tmp_path,
        AUTHSERVER_KEY_STORE="database",
        AUTHSERVER_KEY_PASSPHRASE=PASSPHRASE,
        AUTHSERVER_KEY_PASSPHRASE_PREVIOUS=OLD_PASSPHRASE,
    )
    ok(run_in_process(env, "db", "upgrade"))
    return env


def test_cli_import_copies_a_keys_folder_once_and_lists_like_keys_list(
    tmp_path: Path, sqlite_database_env: dict[str, str]
) -> None:
    folder = tmp_path / "old-keys"
    old_files = Settings(keys_dir=folder, key_passphrase=OLD_PASSPHRASE)
    active = key_service.rotate_key(old_files, RETENTION, immediate=True)
    staged = key_service.rotate_key(old_files, RETENTION, immediate=False)

    imported = ok_json(run_in_process(sqlite_database_env, "keys", "import", str(folder)))
    listed = ok_json(run_in_process(sqlite_database_env, "keys", "list", "--json"))
    assert imported == listed
    assert [(k["kid"], k["state"]) for k in imported] == [
        (active.kid, "active"),
        (staged.kid, "next"),
    ]
    assert imported[1]["activates_at"] == staged.activates_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    again = ok_json(run_in_process(sqlite_database_env, "keys", "import", str(folder)))
    assert again == []
    assert ok_json(run_in_process(sqlite_database_env, "keys", "list", "--json")) == listed
    assert not (tmp_path / "keys").exists()  # AUTHSERVER_KEYS_DIR is never created

    # Sealed under the current passphrase on the way in: the previous one is not needed.
    current_only = {**sqlite_database_env, "AUTHSERVER_KEY_PASSPHRASE_PREVIOUS": ""}
    assert ok_json(run_in_process(current_only, "keys", "list", "--json")) == listed


def test_cli_rewrap_prints_the_count_and_a_lost_key_is_one_line(
    tmp_path: Path, sqlite_database_env: dict[str, str]
) -> None:
    url = sqlite_database_env["AUTHSERVER_DATABASE_URL"]
    old = Settings(database_url=url, key_store="database", key_passphrase=OLD_PASSPHRASE)
    key_service.key_store(old).generate("ES256", 2048)
    result = ok(run_in_process(sqlite_database_env, "keys", "rewrap"))
    assert "rewrapped 1 of 1 signing keys" in result.stderr

    stranger = replace(old, key_passphrase="a passphrase nobody has")
    lost = key_service.key_store(stranger).generate("ES256", 2048)
    line = assert_one_line_error(run_in_process(sqlite_database_env, "keys", "rewrap"))
    assert lost.kid in line
    assert PASSPHRASE not in line


def test_cli_import_with_the_files_store_is_one_line(tmp_path: Path) -> None:
    env = sqlite_env(tmp_path)
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    line = assert_one_line_error(run_in_process(env, "keys", "import", str(folder)))
    assert "AUTHSERVER_KEY_STORE=database" in line


# --- real processes racing -----------------------------------------------------------------


def _race(job: str, settings: Settings, barrier: Any, results: Any) -> None:
    """One racer: wait for the others, then start up (or check rotation) like a server."""
    barrier.wait()
    if job == "start":
        key = key_service.ensure_signing_key(settings)
    else:
        key = key_service.rotate_if_due(settings, RETENTION)
    results.put(key.kid if key else None)


def race(job: str, settings: Settings) -> list[str]:
    """Run ``job`` in ``RACERS`` fresh processes released together; the kids they created."""
    context = preloaded_context()
    barrier = context.Barrier(RACERS)
    results = context.Queue()
    processes = [
        context.Process(target=_race, args=(job, settings, barrier, results)) for _ in range(RACERS)
    ]
    for process in processes:
        process.start()
    created = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    return [kid for kid in created if kid]


def test_servers_starting_together_on_an_empty_store_make_exactly_one_key(
    store_settings: Settings,
) -> None:
    created = race("start", store_settings)
    assert len(created) == 1, created
    assert [k.kid for k in ring(store_settings).keys] == created


def test_scheduled_rotation_in_racing_processes_stages_exactly_one_successor(
    store_settings: Settings,
) -> None:
    store = key_service.key_store(store_settings)
    two_days_ago = datetime.now(UTC) - timedelta(days=2)
    old = store.generate("ES256", 2048)
    store.put(replace(old, created_at=two_days_ago, activates_at=two_days_ago))
    settings = replace(store_settings, key_rotation_days=1, signing_alg="ES256")
    created = race("rotate", settings)
    assert len(created) == 1, created
    assert states(settings, datetime.now(UTC)) == {old.kid: "active", created[0]: "next"}


# --- a worker's poller and the database ----------------------------------------------------


@pytest.fixture
def poller(postgres: PostgresServer, tmp_path: Path) -> Iterator[tuple[Settings, KeyRingLoader]]:
    url = migrated(postgres.create_database(f"p_{uuid.uuid4().hex[:12]}"))
    settings = Settings(database_url=url, key_store="database", key_passphrase=PASSPHRASE)
    key_service.ensure_signing_key(settings)
    store = DatabaseKeyStore(url, Passphrases(PASSPHRASE), pooled=True)
    loader = KeyRingLoader(store)
    yield settings, loader
    loader.close()
    store.dispose()


def test_poller_keeps_signing_through_a_postgresql_outage_and_logs_it_once(
    postgres: PostgresServer,
    poller: tuple[Settings, KeyRingLoader],
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings, loader = poller
    signer = loader.current().signing_key(datetime.now(UTC))
    assert signer is not None
    postgres.pause()
    try:
        # Every request still gets the key at once, from the ring loaded before.
        holds_throughout(
            lambda: loader.current().signing_key(datetime.now(UTC)) == signer,
            3 * RELOAD_INTERVAL_SECONDS,
            "the signing key kept through the outage",
            interval=0.1,
        )
    finally:
        postgres.resume()
    rotated = key_service.rotate_key(settings, RETENTION, immediate=True)

    def events() -> list[str]:
        return [
            json.loads(r.getMessage())["event"]
            for r in caplog.records
            if r.name == "authserver.operator" and r.levelno >= logging.WARNING
        ]

    # The poller swaps in the new ring, then says the store is readable again: wait for both.
    wait_until(
        lambda: (
            loader.current().signing_key(datetime.now(UTC)) == rotated
            and "signing_key.store_readable" in events()
        ),
        2 * RELOAD_INTERVAL_SECONDS + 1,
        "the poller reading the store again after the outage, and saying so",
    )
    logged = events()
    assert logged.count("signing_key.store_unreadable") == 1, logged
    assert logged.count("signing_key.store_readable") == 1, logged


def test_poller_logs_an_undecryptable_database_key_once_and_keeps_the_others(
    poller: tuple[Settings, KeyRingLoader], caplog: pytest.LogCaptureFixture
) -> None:
    settings, loader = poller
    [good] = loader.current().keys
    stranger = replace(settings, key_passphrase="a passphrase nobody has")
    lost = key_service.key_store(stranger).generate("ES256", 2048)
    wait_until(lambda: loader.problems, 2 * RELOAD_INTERVAL_SECONDS + 1, "the lost key reported")
    key_service.key_store(settings).generate("ES256", 2048, datetime.now(UTC) + RETENTION)
    wait_until(lambda: len(loader.current().keys) == 2, 2 * RELOAD_INTERVAL_SECONDS + 1, "a reload")
    assert good in loader.current().keys
    unusable = [r.getMessage() for r in caplog.records if "signing_key.unusable" in r.getMessage()]
    assert len(unusable) == 1
    assert lost.kid in unusable[0]
