"""The ``client.not_caching`` report through the real app: tokens fetched over HTTP, then the
maintenance round at the end of the window names the client in the operator log."""

from __future__ import annotations

import json

import pytest
import requests
from flask import Flask

from authserver.maintenance import Maintenance
from authserver.runtime import Runtime
from authserver.services.issuance import WINDOW_SECONDS, IssuanceWatch
from tests.conftest import LiveServer
from tests.support.clock import ManualClock
from tests.support.oauth import CreateClient


@pytest.fixture
def database_url(migrated_sqlite_url: str) -> str:
    return migrated_sqlite_url


def test_a_client_fetching_a_token_per_call_is_named_in_the_operator_log(
    app: Flask,
    live_server: LiveServer,
    create_client: CreateClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock()
    backend = Runtime.of(app).backend
    object.__setattr__(backend, "issuance", IssuanceWatch(clock))  # the window on our clock
    noisy, calm = create_client(token_ttl=1800), create_client(token_ttl=1800)
    with requests.Session() as http:
        for client in [noisy] * 25 + [calm]:
            credentials = (client.client_id, client.client_secret)
            grant = {"grant_type": "client_credentials"}
            http.post(live_server.token_url, data=grant, auth=credentials, timeout=10)

    maintenance = Maintenance(app)
    with caplog.at_level("WARNING", logger="authserver.operator"):
        maintenance.tick()  # the window has not ended: nothing yet
        clock.now += WINDOW_SECONDS
        maintenance.tick()

    reports = [
        json.loads(r.getMessage()) for r in caplog.records if r.name == "authserver.operator"
    ]
    assert [(r["event"], r["client_id"]) for r in reports] == [
        ("client.not_caching", noisy.client_id)
    ]
    assert (reports[0]["tokens"], reports[0]["token_ttl"], reports[0]["addresses"]) == (25, 1800, 1)
    assert noisy.client_secret not in caplog.text
