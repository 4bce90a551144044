"""The token endpoint touches the database at most once per client per cache period and never
writes: every SQL statement the app's engine runs is recorded while requests are served."""

from __future__ import annotations

import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
import requests
from flask import Flask
from joserfc.jwk import RSAKey
from sqlalchemy import event

from authserver.extensions import db
from authserver.oauth.client_assertion import JWT_BEARER
from authserver.services import trusts
from authserver.services.assertion_ledger import SqliteLedger
from tests.conftest import ISSUER, LiveServer
from tests.support.oauth import CreateClient, issue_token
from tests.support.workload_issuer import WorkloadIssuer

GRANT = {"grant_type": "client_credentials", "scope": "api"}
WRITES = re.compile(r"^\s*(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)


@pytest.fixture
def database_url(migrated_sqlite_url: str) -> str:
    return migrated_sqlite_url


class StatementLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.statements: list[str] = []

    def record(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        with self._lock:
            self.statements.append(statement)

    def clear(self) -> None:
        with self._lock:
            self.statements.clear()

    def writes(self) -> list[str]:
        return [s for s in self.statements if WRITES.match(s)]

    def touching(self, table: str) -> list[str]:
        return [s for s in self.statements if re.search(rf"\b{table}\b", s)]


@pytest.fixture
def statements(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[StatementLog]:
    """The engine's statements, and those of the SQLite ledger's own connections
    (``assertion_ledger.py``), traced by SQLite itself."""
    log = StatementLog()
    with app.app_context():
        engine = db.engine
    connection_of = SqliteLedger._connection

    def traced(ledger: SqliteLedger) -> sqlite3.Connection:
        connection = connection_of(ledger)
        connection.set_trace_callback(lambda statement: log.record(None, None, statement))
        return connection

    monkeypatch.setattr(SqliteLedger, "_connection", traced)
    event.listen(engine, "before_cursor_execute", log.record)
    yield log
    event.remove(engine, "before_cursor_execute", log.record)


def test_twenty_token_requests_of_one_client_read_the_database_at_most_once_and_write_nothing(
    http: requests.Session,
    live_server: LiveServer,
    create_client: CreateClient,
    statements: StatementLog,
) -> None:
    client = create_client()
    statements.clear()
    for _ in range(20):
        response = http.post(
            live_server.token_url,
            data=GRANT,
            auth=(client.client_id, client.client_secret),
            timeout=10,
        )
        assert response.status_code == 200, response.text

    assert statements.writes() == []
    # One registration load (a cache period is 1 s; the requests may straddle one boundary).
    assert 1 <= len(statements.touching("clients")) <= 2, statements.statements


def test_unknown_client_ids_are_remembered_too(
    http: requests.Session, live_server: LiveServer, statements: StatementLog
) -> None:
    statements.clear()
    for _ in range(10):
        response = http.post(
            live_server.token_url, data=GRANT, auth=("cli_nobody", "ascs_wrong"), timeout=10
        )
        assert response.status_code == 401
    assert statements.writes() == []
    assert 1 <= len(statements.touching("clients")) <= 2, statements.statements


def test_introspection_reads_the_workers_copy_of_the_deny_list_and_writes_nothing(
    http: requests.Session,
    live_server: LiveServer,
    create_client: CreateClient,
    statements: StatementLog,
) -> None:
    """The copy is loaded once (here by the first introspection: this app runs no poll) and
    never queried per request."""
    client = create_client()
    token = issue_token(http, live_server, client)

    def introspect() -> None:
        response = http.post(
            f"{live_server.url}/oauth2/introspect",
            data={"token": token},
            auth=(client.client_id, client.client_secret),
            timeout=10,
        )
        assert response.json()["active"] is True

    statements.clear()
    introspect()
    assert len(statements.touching("revoked_tokens")) == 1
    statements.clear()
    for _ in range(5):
        introspect()
    assert statements.writes() == []
    assert statements.touching("revoked_tokens") == []


def test_a_private_key_jwt_token_request_writes_one_row_its_used_assertion_and_nothing_else(
    http: requests.Session,
    live_server: LiveServer,
    create_client: CreateClient,
    statements: StatementLog,
) -> None:
    key = RSAKey.generate_key(2048, parameters={"kid": "k"})
    client = create_client(
        auth_method="private_key_jwt", jwks={"keys": [key.as_dict(private=False)]}
    )
    pem = key.as_pem(private=True)
    now = int(time.time())
    assertions = [
        jwt.encode(
            {
                "iss": client.client_id,
                "sub": client.client_id,
                "aud": ISSUER,
                "exp": now + 120,
                "iat": now,
                "jti": uuid.uuid4().hex,
            },
            pem,
            algorithm="RS256",
            headers={"kid": "k"},
        )  # fmt: skip
        for _ in range(10)
    ]
    statements.clear()
    started = time.monotonic()
    for assertion in assertions:
        response = http.post(
            live_server.token_url,
            data={**GRANT, "client_assertion_type": JWT_BEARER, "client_assertion": assertion},
            timeout=10,
        )
        assert response.status_code == 200, response.text
    elapsed = time.monotonic() - started

    writes = statements.writes()
    assert len(writes) == 10, writes
    assert all(re.match(r"\s*INSERT INTO used_assertions\b", w) for w in writes), writes
    # One registration load per cache period (1 s) at most, however slow the machine is.
    assert 1 <= len(statements.touching("clients")) <= 2 + int(elapsed), statements.statements


@pytest.mark.parametrize("allow_reuse", [True, False])
def test_a_workload_token_request_writes_only_a_single_use_jti(
    http: requests.Session,
    live_server: LiveServer,
    app: Flask,
    create_client: CreateClient,
    statements: StatementLog,
    allow_reuse: bool,
) -> None:
    """A reusable trust's token writes nothing; a single-use one, its used assertion. The
    issuer's trusts are read once per cache period, its keys fetched once."""
    client = create_client()
    with WorkloadIssuer() as platform, app.app_context():
        trusts.add_trust(
            db.session(), client_id=client.client_id, issuer=platform.issuer,
            subject="system:serviceaccount:a:b", audience="authserver", allow_reuse=allow_reuse,
        )  # fmt: skip
        db.session.commit()
        tokens = [platform.kubernetes_token("a", "b", "authserver") for _ in range(10)]
        statements.clear()
        started = time.monotonic()
        for token in tokens:
            response = http.post(
                live_server.token_url,
                data={**GRANT, "client_assertion_type": JWT_BEARER, "client_assertion": token},
                timeout=10,
            )
            assert response.status_code == 200, response.text
        elapsed = time.monotonic() - started
        fetches = dict(platform.fetches)

    writes = statements.writes()
    assert len(writes) == (0 if allow_reuse else 10), writes
    assert all(re.match(r"\s*INSERT INTO used_assertions\b", w) for w in writes), writes
    assert 1 <= len(statements.touching("trusts")) <= 2 + int(elapsed), statements.statements
    assert sorted(fetches.values()) == [1, 1], fetches  # discovery and keys, once each
