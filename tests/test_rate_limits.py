"""The contract's failed-authentication limits, through a real HTTP server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from authserver.config import Settings
from authserver.errors import ConfigError
from authserver.security.failure_limits import FailureLimiter
from tests.conftest import LiveServer, RegisteredClient
from tests.support.cli import assert_one_line_error, run_authserver, sqlite_env

GRANT = {"grant_type": "client_credentials"}


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """The limits live in the server, not the database: SQLite is enough here."""
    return sqlite_url


def post(
    http: requests.Session, url: str, client_id: str, secret: str, **form: str
) -> requests.Response:
    return http.post(url, data=form or GRANT, auth=(client_id, secret), timeout=10)


def assert_too_many_requests(response: requests.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["error"] == "too_many_requests"
    assert response.json()["error_description"]
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert response.headers["Cache-Control"] == "no-store"


def test_eleventh_wrong_secret_for_a_client_id_gets_429_but_the_right_secret_still_works(
    http: requests.Session, live_server: LiveServer, create_client: Callable[..., RegisteredClient]
) -> None:
    client = create_client()
    for _ in range(10):
        assert post(http, live_server.token_url, client.client_id, "wrong").status_code == 401
    assert_too_many_requests(post(http, live_server.token_url, client.client_id, "wrong"))
    assert post(http, live_server.token_url, client.client_id, client.client_secret).ok


def test_client_id_limit_does_not_touch_other_clients(
    http: requests.Session, live_server: LiveServer, create_client: Callable[..., RegisteredClient]
) -> None:
    attacked, bystander = create_client(), create_client()
    for _ in range(11):
        post(http, live_server.token_url, attacked.client_id, "wrong")
    assert post(http, live_server.token_url, bystander.client_id, "wrong").status_code == 401


def test_successful_requests_are_never_counted(
    http: requests.Session, live_server: LiveServer, create_client: Callable[..., RegisteredClient]
) -> None:
    client = create_client()
    for _ in range(60):
        assert post(http, live_server.token_url, client.client_id, client.client_secret).ok
    assert post(http, live_server.token_url, client.client_id, "wrong").status_code == 401


def test_fifty_failures_from_one_address_block_every_request_from_it(
    http: requests.Session, live_server: LiveServer, create_client: Callable[..., RegisteredClient]
) -> None:
    client = create_client()
    for attempt in range(50):
        response = post(http, live_server.token_url, f"cli_guess{attempt}", "wrong")
        assert response.status_code == 401
    assert_too_many_requests(post(http, live_server.token_url, client.client_id, "wrong"))
    assert_too_many_requests(
        post(http, live_server.token_url, client.client_id, client.client_secret)
    )
    introspect_url = f"{live_server.url}/oauth2/introspect"
    assert_too_many_requests(
        post(http, introspect_url, client.client_id, client.client_secret, token="x")
    )


@pytest.mark.parametrize("path", ["/oauth2/introspect", "/oauth2/revoke"])
def test_failures_at_introspection_and_revocation_count_too(
    http: requests.Session,
    live_server: LiveServer,
    create_client: Callable[..., RegisteredClient],
    path: str,
) -> None:
    client = create_client()
    url = live_server.url + path
    for _ in range(10):
        assert post(http, url, client.client_id, "wrong", token="x").status_code == 401
    assert_too_many_requests(post(http, url, client.client_id, "wrong", token="x"))
    assert post(http, url, client.client_id, client.client_secret, token="x").status_code == 200


@pytest.mark.parametrize("settings_overrides", [{"ratelimit_enabled": False}])
def test_limits_can_be_switched_off(
    http: requests.Session,
    live_server: LiveServer,
    create_client: Callable[..., RegisteredClient],
    settings_overrides: dict[str, Any],
) -> None:
    client = create_client()
    for _ in range(60):
        assert post(http, live_server.token_url, client.client_id, "wrong").status_code == 401


@pytest.mark.parametrize(
    ("name", "value"),
    [("AUTHSERVER_RATELIMIT", "maybe"), ("AUTHSERVER_RATELIMIT", "true")],
)
def test_ratelimit_switch_accepts_only_on_or_off(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_unusable_storage_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="AUTHSERVER_RATELIMIT_STORAGE_URL"):
        FailureLimiter("nonsense://nowhere")


@pytest.mark.parametrize(
    ("name", "value"),
    [("AUTHSERVER_RATELIMIT", "maybe"), ("AUTHSERVER_RATELIMIT_STORAGE_URL", "nonsense://x")],
)
def test_bad_ratelimit_setting_stops_the_cli_with_one_line(
    tmp_path: Path, name: str, value: str
) -> None:
    result = run_authserver(sqlite_env(tmp_path, **{name: value}), "clients", "list")
    assert name in assert_one_line_error(result)


def fail_fifty_times_as(http: requests.Session, url: str, forwarded_for: str) -> None:
    for attempt in range(50):
        response = http.post(
            url,
            data=GRANT,
            auth=(f"cli_guess{attempt}", "wrong"),
            headers={"X-Forwarded-For": forwarded_for},
            timeout=10,
        )
        assert response.status_code == 401


@pytest.mark.parametrize("settings_overrides", [{"trusted_proxies": 1}])
def test_behind_a_trusted_proxy_the_forwarded_address_is_limited(
    http: requests.Session,
    live_server: LiveServer,
    create_client: Callable[..., RegisteredClient],
    settings_overrides: dict[str, Any],
) -> None:
    client = create_client()
    fail_fifty_times_as(http, live_server.token_url, "203.0.113.7")
    auth = (client.client_id, client.client_secret)
    blocked = http.post(
        live_server.token_url, data=GRANT, auth=auth, headers={"X-Forwarded-For": "203.0.113.7"}
    )
    assert_too_many_requests(blocked)
    other = http.post(
        live_server.token_url, data=GRANT, auth=auth, headers={"X-Forwarded-For": "203.0.113.8"}
    )
    assert other.ok


def test_without_trusted_proxies_x_forwarded_for_is_ignored(
    http: requests.Session, live_server: LiveServer, create_client: Callable[..., RegisteredClient]
) -> None:
    """A client cannot dodge the address limit by inventing X-Forwarded-For values."""
    client = create_client()
    fail_fifty_times_as(http, live_server.token_url, "203.0.113.7")
    response = http.post(
        live_server.token_url,
        data=GRANT,
        auth=(client.client_id, client.client_secret),
        headers={"X-Forwarded-For": "198.51.100.1"},
    )
    assert_too_many_requests(response)


def test_trusted_proxies_must_be_a_whole_number() -> None:
    with pytest.raises(ConfigError, match="AUTHSERVER_TRUSTED_PROXIES"):
        Settings.from_env({"AUTHSERVER_TRUSTED_PROXIES": "10.0.0.1"})
