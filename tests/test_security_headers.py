"""Every response, success or error, carries headers that keep browsers from using it."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.conftest import ISSUER, LiveServer

EXPECTED = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/healthz"),
        ("GET", "/.well-known/jwks.json"),
        ("GET", "/.well-known/oauth-authorization-server"),
        ("POST", "/oauth2/token"),
        ("GET", "/oauth2/token"),
        ("GET", "/no-such-path"),
    ],
)
def test_every_response_carries_the_security_headers(
    http: requests.Session, live_server: LiveServer, method: str, path: str
) -> None:
    response = http.request(method, live_server.url + path, timeout=10)
    for name, value in EXPECTED.items():
        assert response.headers.get(name) == value, name
    assert ISSUER.startswith("https://")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert response.headers["X-Request-ID"]


@pytest.mark.parametrize("settings_overrides", [{"issuer": "http://localhost:8080"}])
def test_no_hsts_when_the_issuer_is_plain_http(
    http: requests.Session, live_server: LiveServer, settings_overrides: dict[str, Any]
) -> None:
    response = http.get(live_server.url + "/healthz", timeout=10)
    assert "Strict-Transport-Security" not in response.headers
    assert response.headers["X-Content-Type-Options"] == "nosniff"
