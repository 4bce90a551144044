"""Tokens through a database outage (the contract's "Database outage"), over real HTTP with a
PostgreSQL server of this module's own that the tests stop (``pause``), hang (SIGSTOP to
every one of its processes) and bring back, and two app instances sharing its database.

The instances are in-process live servers, each with the revocation poll a served worker
runs; the bound "no request waits more than 2 s" is asserted per request with a small margin.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask

from authserver.app import create_app
from authserver.config import Settings
from authserver.extensions import db
from authserver.maintenance import RevocationSync
from authserver.oauth.client_assertion import JWT_BEARER
from authserver.schema import upgrade_schema
from authserver.services import registry, trusts
from deploy.cluster.services import children_of
from tests.conftest import ISSUER
from tests.support.postgres import PostgresServer, running_postgres
from tests.support.waiting import holds_throughout, wait_until
from tests.support.workload_issuer import WorkloadIssuer
from tests.support.wsgi import serving

GRANT = {"grant_type": "client_credentials"}
#: The contract's bound on any request's wait for the database, and the margin the test
#: allows for the rest of the request on a busy machine.
REQUEST_BOUND_SECONDS = 2.0 + 0.5
#: How long a revocation may take to reach another instance's introspection (the contract).
REVOCATION_REACH_SECONDS = 2.0
#: Long enough for every cached registration to be older than its 1 s freshness, so the
#: answers below come from what the worker read before the outage.
THROUGH_THE_OUTAGE_SECONDS = 2.5
RECOVERY_SECONDS = 15.0


@dataclass(frozen=True)
class Client:
    client_id: str
    client_secret: str

    @property
    def auth(self) -> tuple[str, str]:
        return self.client_id, self.client_secret


@dataclass(frozen=True)
class Instance:
    """One app (as one worker of one instance) behind a real HTTP server."""

    url: str
    app: Flask
    http: requests.Session

    def post(self, path: str, client: Client, **form: str) -> requests.Response:
        started = time.monotonic()
        response = self.http.post(f"{self.url}{path}", data=form, auth=client.auth, timeout=30)
        waited = time.monotonic() - started
        assert waited < REQUEST_BOUND_SECONDS, f"POST {path} took {waited:.2f} s"
        return response

    def get(self, path: str) -> requests.Response:
        started = time.monotonic()
        response = self.http.get(f"{self.url}{path}", timeout=30)
        waited = time.monotonic() - started
        assert waited < REQUEST_BOUND_SECONDS, f"GET {path} took {waited:.2f} s"
        return response

    def token_response(self, client: Client) -> requests.Response:
        return self.post("/oauth2/token", client, **GRANT)

    def token(self, client: Client) -> str:
        response = self.token_response(client)
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    def introspect(self, client: Client, token: str) -> dict[str, Any]:
        response = self.post("/oauth2/introspect", client, token=token)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def revoke(self, client: Client, token: str) -> requests.Response:
        return self.post("/oauth2/revoke", client, token=token)

    def readiness(self) -> tuple[int, dict[str, Any]]:
        response = self.get("/readyz")
        return response.status_code, response.json()

    def create_client(self) -> Client:
        with self.app.app_context():
            created = registry.create_client(db.session(), name="outage test", scope="api")
            db.session.commit()
            return Client(created.client.client_id, created.client_secret)


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[PostgresServer]:
    """Not the shared session server: this one is stopped and hung by the tests."""
    with running_postgres() as server:
        yield server


@pytest.fixture
def database_url(own_postgres: PostgresServer) -> str:
    return own_postgres.create_database(f"outage_{uuid.uuid4().hex[:12]}")


@contextmanager
def instance(database_url: str, keys_dir: Path, *, grace: int) -> Iterator[Instance]:
    settings = Settings(
        database_url=database_url,
        issuer=ISSUER,
        default_audience=ISSUER,
        keys_dir=keys_dir,
        database_outage_grace=grace,
    )
    app = create_app(settings)
    upgrade_schema(app)
    revocation_sync = RevocationSync(app)
    revocation_sync.start()
    try:
        with serving(app) as url, requests.Session() as http:
            yield Instance(url, app, http)
    finally:
        revocation_sync.stop()
        with app.app_context():
            db.engine.dispose()


@contextmanager
def stopped(server: PostgresServer) -> Iterator[None]:
    server.pause()
    try:
        yield
    finally:
        server.resume()


@contextmanager
def hung(server: PostgresServer) -> Iterator[None]:
    """Every process of ``server`` stopped (SIGSTOP): connections stay open, the kernel still
    accepts and acknowledges, and nothing answers, as with a frozen host."""
    processes = _postgres_processes(server)
    for pid in processes:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in processes:
            os.kill(pid, signal.SIGCONT)


def _postgres_processes(server: PostgresServer) -> list[int]:
    """The postmaster (first line of its pid file) and its children."""
    postmaster = int((server.data_dir / "postmaster.pid").read_text().split()[0])
    children = children_of(postmaster)
    assert children, "no postgres backend processes found"
    return [postmaster, *children]


def assert_outage_503(response: requests.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "temporarily_unavailable"
    assert response.headers["Retry-After"] == "1"
    assert response.headers["Cache-Control"] == "no-store"


def recovers(server: Instance, unseen: Client) -> None:
    """Without a restart: the client the worker never saw gets its token, and /readyz says
    the database is back."""
    wait_until(
        lambda: server.token_response(unseen).status_code == 200,
        RECOVERY_SECONDS,
        "a token for a client first seen after the outage",
    )
    assert server.readiness() == (200, {"status": "ready", "database": "ok", "warnings": []})


def test_a_stopped_database_known_clients_get_tokens_others_503_and_it_recovers(
    database_url: str, keys_dir: Path, own_postgres: PostgresServer
) -> None:
    with instance(database_url, keys_dir, grace=900) as server:
        known, unseen = server.create_client(), server.create_client()
        token, revoked = server.token(known), server.token(known)
        assert server.revoke(known, revoked).status_code == 200

        with stopped(own_postgres):
            holds_throughout(
                lambda: server.token_response(known).status_code == 200,
                THROUGH_THE_OUTAGE_SECONDS,
                "tokens for a client read before the outage",
            )
            assert_outage_503(server.token_response(unseen))
            assert server.introspect(known, token)["active"] is True
            assert server.introspect(known, revoked) == {"active": False}
            assert_outage_503(server.revoke(known, token))
            assert server.readiness() == (
                200,
                {"status": "ready", "database": "unreachable", "warnings": []},
            )

        recovers(server, unseen)
        assert server.revoke(known, token).status_code == 200
        assert server.introspect(unseen, token) == {"active": False}


def test_a_hung_database_holds_no_request_longer_than_2_seconds(
    database_url: str, keys_dir: Path, own_postgres: PostgresServer
) -> None:
    """Each request's time is asserted in ``Instance``: the token, introspection, revocation,
    readiness and JWKS requests, the first ones before the circuit is open and the later
    ones after."""
    with instance(database_url, keys_dir, grace=900) as server:
        known, unseen = server.create_client(), server.create_client()
        token = server.token(known)

        with hung(own_postgres):
            deadline = time.monotonic() + THROUGH_THE_OUTAGE_SECONDS
            while time.monotonic() < deadline:
                assert server.token_response(known).status_code == 200
                assert_outage_503(server.token_response(unseen))
                assert server.introspect(known, token)["active"] is True
                assert_outage_503(server.revoke(known, token))
                assert server.readiness()[1]["database"] == "unreachable"
                assert server.get("/.well-known/jwks.json").status_code == 200

        recovers(server, unseen)


def test_past_the_grace_tokens_and_readiness_turn_503_and_come_back(
    database_url: str, keys_dir: Path, own_postgres: PostgresServer
) -> None:
    grace = 2
    with instance(database_url, keys_dir, grace=grace) as server:
        known, unseen = server.create_client(), server.create_client()
        token = server.token(known)

        with stopped(own_postgres):

            def unready() -> dict[str, Any] | None:
                status, body = server.readiness()
                return body if status == 503 else None

            body = wait_until(
                unready, grace + RECOVERY_SECONDS, "/readyz 503 once the outage outlived the grace"
            )
            assert body == {
                "status": "unavailable",
                "database": "unreachable",
                "problems": ["database unreachable"],
            }
            assert_outage_503(server.token_response(known))
            assert_outage_503(server.post("/oauth2/introspect", known, token=token))

        recovers(server, unseen)
        assert server.token_response(known).status_code == 200


def test_a_revocation_on_one_instance_reaches_anothers_introspection_within_2_seconds(
    database_url: str, keys_dir: Path
) -> None:
    with (
        instance(database_url, keys_dir, grace=900) as first,
        instance(database_url, keys_dir, grace=900) as second,
    ):
        client = first.create_client()
        token = first.token(client)
        assert second.introspect(client, token)["active"] is True

        assert first.revoke(client, token).status_code == 200
        wait_until(
            lambda: second.introspect(client, token) == {"active": False},
            REVOCATION_REACH_SECONDS,
            "the other instance's introspection saying inactive",
        )


def test_a_stopped_database_reusable_workload_tokens_still_work_single_use_ones_503(
    database_url: str, keys_dir: Path, own_postgres: PostgresServer
) -> None:
    """Trusts read before the outage keep serving within the grace; a single-use token's
    ``jti`` cannot be recorded, so it gets the 503."""
    with WorkloadIssuer() as platform, instance(database_url, keys_dir, grace=900) as server:
        client = server.create_client()
        with server.app.app_context():
            for subject, reuse in (("reused", True), ("once", False)):
                trusts.add_trust(
                    db.session(), client_id=client.client_id, issuer=platform.issuer,
                    subject=subject, audience="authserver", allow_reuse=reuse,
                )  # fmt: skip
            db.session.commit()

        def present(subject: str) -> requests.Response:
            token = platform.kubernetes_token("ns", "sa", "authserver", sub=subject)
            form = {**GRANT, "client_assertion_type": JWT_BEARER, "client_assertion": token}
            return server.http.post(f"{server.url}/oauth2/token", data=form, timeout=30)

        assert present("reused").status_code == 200
        assert present("once").status_code == 200
        with stopped(own_postgres):
            holds_throughout(
                lambda: present("reused").status_code == 200,
                THROUGH_THE_OUTAGE_SECONDS,
                "tokens under a reusable trust read before the outage",
            )
            assert_outage_503(present("once"))
        wait_until(lambda: present("once").status_code == 200, RECOVERY_SECONDS, "recovery")
