"""The database key store (``AUTHSERVER_KEY_STORE=database``): signing keys in the
``signing_keys`` table that every instance on every host shares.

Private keys are stored as PKCS#8 PEM encrypted under ``AUTHSERVER_KEY_PASSPHRASE`` (which the
settings require for this store), so the database never holds them in clear. The store uses
its own engine rather than Flask-SQLAlchemy's session: a worker's key poller runs on a
background thread without an app context, and it must never share (or wait for) the
connections that requests use.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, delete, func, insert, select, update
from sqlalchemy.pool import NullPool

from authserver.config import DEFAULT_ALG
from authserver.database import flask_sqlalchemy_config
from authserver.errors import KeyNotFound, KeyStoreError
from authserver.models import StoredSigningKey
from authserver.security.key_material import (
    LoadResult,
    Passphrases,
    SigningKey,
    new_signing_key,
    open_signing_key,
)
from authserver.security.key_store import every_key

#: The PostgreSQL advisory lock that serialises key lifecycle changes across hosts (any
#: fixed number; these are the bytes of "authkeys").
KEY_LIFECYCLE_LOCK_KEY = 0x617574686B657973

KEYS = StoredSigningKey
ENCRYPTED_PEM_HEADER = b"-----BEGIN ENCRYPTED PRIVATE KEY-----"


class DatabaseKeyStore:
    """Reads and writes the ``signing_keys`` table (a :class:`SigningKeyStore`)."""

    location = "the database"

    def __init__(self, database_url: str, passphrases: Passphrases, *, pooled: bool) -> None:
        """``pooled``: keep a connection open between calls (a worker's poller, once a
        second); otherwise each call connects and disconnects (the CLI, start-up, the
        once-a-minute rotation check), so no idle connection outlives its use."""
        self._database_url = database_url
        self._passphrases = passphrases
        self._pooled = pooled
        self._engine: Engine | None = None
        #: The locked transaction's connection while :meth:`exclusive` is held.
        self._locked: Connection | None = None

    def prepare(self) -> None:
        """Nothing to prepare: the table comes with ``authserver db upgrade``."""

    def stamp(self) -> tuple[tuple[str, int], ...]:
        """Every key's kid and row version: one query over a handful of short rows."""
        with self._connection() as connection:
            rows = connection.execute(select(KEYS.kid, KEYS.version).order_by(KEYS.kid))
            return tuple((kid, version) for kid, version in rows)

    def load(self) -> LoadResult:
        keys, problems = [], []
        with self._connection() as connection:
            rows = connection.execute(
                select(
                    KEYS.kid,
                    KEYS.alg,
                    KEYS.created_at,
                    KEYS.activates_at,
                    KEYS.encrypted_private_key,
                ).order_by(KEYS.kid)
            ).all()
        for row in rows:
            try:
                keys.append(
                    open_signing_key(
                        row.alg,
                        row.created_at,
                        row.activates_at,
                        row.encrypted_private_key.encode(),
                        self._passphrases,
                        f"signing key {row.kid}",
                    )
                )
            except KeyStoreError as exc:
                problems.append(str(exc))
        return LoadResult(keys, problems)

    def load_all(self) -> list[SigningKey]:
        return every_key(self.load())

    def generate(
        self, alg: str = DEFAULT_ALG, rsa_bits: int = 2048, activates_at: datetime | None = None
    ) -> SigningKey:
        key = new_signing_key(alg, rsa_bits, activates_at, self._passphrases)
        self.put(key)
        return key

    def put(self, key: SigningKey) -> None:
        """Insert the key, or replace its schedule and PEM and bump its row version.

        A PEM in clear is refused: whatever path a key took here, the database must never
        hold one.
        """
        if not key.pem.startswith(ENCRYPTED_PEM_HEADER):
            raise KeyStoreError(f"signing key {key.kid} is not encrypted; not stored")
        values: dict[str, Any] = {
            "alg": key.alg,
            "created_at": key.created_at,
            "activates_at": key.activates_at,
            "encrypted_private_key": key.pem.decode(),
        }
        with self._connection() as connection:
            changed = connection.execute(
                update(KEYS).where(KEYS.kid == key.kid).values(**values, version=KEYS.version + 1)
            )
            if changed.rowcount == 0:
                connection.execute(insert(KEYS).values(kid=key.kid, version=1, **values))

    def add(self, key: SigningKey) -> bool:
        with self._connection() as connection:
            if connection.scalar(select(KEYS.kid).where(KEYS.kid == key.kid)) is not None:
                return False
        self.put(key)
        return True

    def delete(self, kid: str) -> None:
        with self._connection() as connection:
            if connection.execute(delete(KEYS).where(KEYS.kid == kid)).rowcount == 0:
                raise KeyNotFound(kid)

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """One transaction holding the store's lock, in which every call of this store runs
        until it ends: PostgreSQL's transaction-level advisory lock, or SQLite's write lock
        (``BEGIN IMMEDIATE``, waiting out the busy timeout). Either is released by the
        commit or rollback, so a crashed holder cannot leave the store locked."""
        with self._get_engine().connect() as connection:
            if connection.dialect.name == "sqlite":
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                connection.execute(select(func.pg_advisory_xact_lock(KEY_LIFECYCLE_LOCK_KEY)))
            self._locked = connection
            try:
                yield
                connection.commit()
            finally:
                self._locked = None

    def dispose(self) -> None:
        """Close the pooled connections (a poller's store that is done with)."""
        if self._engine is not None:
            self._engine.dispose()

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        """The locked transaction inside :meth:`exclusive`; otherwise a transaction of its own."""
        if self._locked is not None:
            yield self._locked
            return
        with self._get_engine().begin() as connection:
            yield connection

    def _get_engine(self) -> Engine:
        if self._engine is None:
            config = flask_sqlalchemy_config(self._database_url)
            options: dict[str, Any] = dict(config["SQLALCHEMY_ENGINE_OPTIONS"])  # type: ignore[call-overload]
            if not self._pooled:
                options["poolclass"] = NullPool
            self._engine = create_engine(str(config["SQLALCHEMY_DATABASE_URI"]), **options)
        return self._engine
