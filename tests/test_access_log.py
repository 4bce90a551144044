"""One JSON access-log line per request, carrying the request id and nothing secret."""

from __future__ import annotations

import json
import logging

import pytest
import requests

from tests.conftest import LiveServer


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


def access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [
        json.loads(record.getMessage())
        for record in caplog.records
        if record.name == "authserver.access"
    ]


def test_each_request_is_one_json_line_with_its_request_id(
    http: requests.Session, live_server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="authserver.access")
    response = http.post(
        live_server.token_url + "?client_secret=leak",
        data={"grant_type": "client_credentials"},
        auth=("someone", "a-wrong-secret"),
        headers={"X-Request-ID": "req-123"},
        timeout=10,
    )
    assert response.headers["X-Request-ID"] == "req-123"
    [line] = [entry for entry in access_lines(caplog) if entry["request_id"] == "req-123"]
    assert line["event"] == "http.request"
    assert line["method"] == "POST"
    assert line["path"] == "/oauth2/token"
    assert line["status"] == 401
    assert isinstance(line["duration_ms"], float)
    # Only our loggers: the test's werkzeug server logs request lines of its own.
    logged = "\n".join(
        record.getMessage() for record in caplog.records if record.name.startswith("authserver")
    )
    assert "leak" not in logged
    assert "a-wrong-secret" not in logged


def test_requests_without_an_id_get_a_fresh_one_each(
    http: requests.Session, live_server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="authserver.access")
    first = http.get(live_server.url + "/healthz", timeout=10).headers["X-Request-ID"]
    second = http.get(live_server.url + "/healthz", timeout=10).headers["X-Request-ID"]
    assert first != second
    logged_ids = {entry["request_id"] for entry in access_lines(caplog)}
    assert {first, second} <= logged_ids
