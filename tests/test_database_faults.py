"""The database going away and coming back, with a PostgreSQL server of the test's own, and
no outage grace (``AUTHSERVER_DATABASE_OUTAGE_GRACE=0``): every request that needs the database
gets a 503. The grace itself is tested in tests/test_database_outage.py."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from authserver.services.registration_cache import MAX_AGE_SECONDS
from tests.conftest import LiveServer, RegisteredClient
from tests.support.postgres import PostgresServer, running_postgres

GRANT = {"grant_type": "client_credentials"}


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """Not the shared session server: this one is stopped and restarted by the test (with
    ``pause``/``resume``, which keep its port and data: one reason the helper is ours)."""
    with running_postgres() as server:
        yield server


@pytest.fixture
def database_url(own_postgres: PostgresServer) -> str:
    return own_postgres.create_database("faults")


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"database_outage_grace": 0}


def test_token_requests_get_503_json_while_the_database_is_down_and_recover_by_themselves(
    http: requests.Session,
    live_server: LiveServer,
    create_client: Callable[..., RegisteredClient],
    own_postgres: PostgresServer,
) -> None:
    client, not_yet_seen = create_client(), create_client()
    auth = (client.client_id, client.client_secret)
    assert http.post(live_server.token_url, data=GRANT, auth=auth, timeout=10).ok

    own_postgres.pause()
    # A client the worker has not cached needs the database at once; a cached one only once
    # its entry is older than the cache's maximum age.
    unseen_auth = (not_yet_seen.client_id, not_yet_seen.client_secret)
    for credentials, delay in ((unseen_auth, 0.0), (auth, MAX_AGE_SECONDS)):
        time.sleep(delay)
        down = http.post(live_server.token_url, data=GRANT, auth=credentials, timeout=30)
        assert down.status_code == 503, down.text
        assert down.json()["error"] == "temporarily_unavailable"
        assert down.headers["Cache-Control"] == "no-store"
        assert down.headers["Retry-After"] == "1"
    assert http.get(live_server.url + "/readyz", timeout=30).status_code == 503
    assert http.get(live_server.url + "/healthz", timeout=10).status_code == 200
    assert http.get(live_server.jwks_url, timeout=30).status_code == 200

    own_postgres.resume()
    deadline = time.monotonic() + 20
    while True:
        response = http.post(live_server.token_url, data=GRANT, auth=auth, timeout=30)
        if response.ok or time.monotonic() > deadline:
            break
        assert response.status_code == 503, response.text
        time.sleep(0.2)
    assert response.ok, response.text
    assert http.get(live_server.url + "/readyz", timeout=10).status_code == 200
