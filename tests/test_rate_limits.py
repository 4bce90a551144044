"""The contract's failed-authentication limits, through a real HTTP server."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask

from authserver.config import Settings
from authserver.errors import ConfigError
from authserver.runtime import Runtime
from authserver.security.failure_limits import FailureLimiter, source_key
from authserver.security.secrets import ARGON2_CONCURRENCY, MAX_CLIENT_ID_LENGTH
from tests.conftest import LiveServer, RegisteredClient
from tests.support.cli import assert_one_line_error, sqlite_env
from tests.support.cli_in_process import run_in_process

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
    result = run_in_process(sqlite_env(tmp_path, **{name: value}), "clients", "list")
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


@pytest.mark.parametrize(
    "settings_overrides",
    [
        {"trusted_proxies": 1},
        {"trusted_proxy_networks": (ipaddress.ip_network("127.0.0.0/8"),)},
    ],
    ids=["count", "addresses"],
)
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


@pytest.mark.parametrize(
    "settings_overrides",
    [{}, {"trusted_proxy_networks": (ipaddress.ip_network("10.0.0.5"),)}],
    ids=["no-proxy", "peer-not-a-listed-proxy"],
)
def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(
    http: requests.Session,
    live_server: LiveServer,
    create_client: Callable[..., RegisteredClient],
    settings_overrides: dict[str, Any],
) -> None:
    """A client cannot dodge the address limit by inventing X-Forwarded-For values: not
    without trusted proxies, nor when proxies are listed by address and the client (here
    127.0.0.1) reaches the instance directly."""
    client = create_client()
    fail_fifty_times_as(http, live_server.token_url, "203.0.113.7")
    response = http.post(
        live_server.token_url,
        data=GRANT,
        auth=(client.client_id, client.client_secret),
        headers={"X-Forwarded-For": "198.51.100.1"},
    )
    assert_too_many_requests(response)


# --- Hardening II: the lock is no oracle, Argon2id is no weapon, ids and addresses are bounded

CHOSEN_SECRET = "Summer2024!-chosen-by-an-admin"
AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


def authenticate(
    http: requests.Session, url: str, client_id: str, secret: str, method: str
) -> requests.Response:
    """A token request authenticated with ``method``."""
    if method == "client_secret_basic":
        return post(http, url, client_id, secret)
    form = {**GRANT, "client_id": client_id, "client_secret": secret}
    return http.post(url, data=form, timeout=10)


def runtime_of(app: Flask) -> Runtime:
    return Runtime.of(app)


def lock(app: Flask, client_id: str) -> None:
    """Count ten failures for ``client_id`` (from another address): the id is now locked.

    The counting an HTTP failure does, without ten Argon2id checks' worth of waiting.
    """
    limiter = runtime_of(app).failure_limiter
    assert limiter is not None
    for _ in range(10):
        assert limiter.record_failure(client_id, "192.0.2.1") is None


@contextmanager
def all_argon2_turns_taken(app: Flask) -> Iterator[None]:
    """Hold every Argon2id turn of the app, as a flood of concurrent guesses would."""
    turns: threading.BoundedSemaphore = runtime_of(app).oauth.backend.verify_secret.turns
    for _ in range(ARGON2_CONCURRENCY):
        assert turns.acquire(timeout=5)
    try:
        yield
    finally:
        for _ in range(ARGON2_CONCURRENCY):
            turns.release()


def test_ten_wrong_guesses_lock_an_admin_chosen_secret_so_the_right_one_gets_429_too(
    http: requests.Session, live_server: LiveServer, create_client: Callable[..., RegisteredClient]
) -> None:
    """Finding 2: a 200 for the right secret while wrong ones get 429 tells a guesser they won."""
    client = create_client(chosen_secret=CHOSEN_SECRET)
    url = live_server.token_url
    for _ in range(10):
        assert post(http, url, client.client_id, "wrong").status_code == 401
    assert_too_many_requests(post(http, url, client.client_id, CHOSEN_SECRET))


@pytest.mark.parametrize("method", AUTH_METHODS)
def test_locked_client_with_an_admin_chosen_secret_gets_429_whatever_secret_it_sends(
    app: Flask,
    http: requests.Session,
    live_server: LiveServer,
    create_client: Callable[..., RegisteredClient],
    method: str,
) -> None:
    """Even after a success this worker remembers: the memory is no way around the lock."""
    client = create_client(chosen_secret=CHOSEN_SECRET)
    url = live_server.token_url
    assert authenticate(http, url, client.client_id, CHOSEN_SECRET, method).ok
    lock(app, client.client_id)
    for secret in (CHOSEN_SECRET, "wrong"):
        assert_too_many_requests(authenticate(http, url, client.client_id, secret, method))


def test_locked_unknown_client_id_gets_429(
    app: Flask, http: requests.Session, live_server: LiveServer
) -> None:
    lock(app, "cli_nobody")
    assert_too_many_requests(post(http, live_server.token_url, "cli_nobody", "wrong"))


def test_locked_client_with_an_admin_chosen_secret_runs_no_argon2id(
    app: Flask,
    http: requests.Session,
    live_server: LiveServer,
    create_client: Callable[..., RegisteredClient],
) -> None:
    """Finding 3: with every Argon2id turn taken, a check would have to wait and end in 503; a
    locked id answers 429 at once because nothing is checked."""
    client = create_client(chosen_secret=CHOSEN_SECRET)
    lock(app, client.client_id)
    with all_argon2_turns_taken(app):
        for secret in ("wrong", "also wrong", CHOSEN_SECRET):
            assert_too_many_requests(post(http, live_server.token_url, client.client_id, secret))


def test_argon2id_check_without_a_free_turn_gets_503_with_retry_after(
    app: Flask,
    http: requests.Session,
    live_server: LiveServer,
    create_client: Callable[..., RegisteredClient],
) -> None:
    """Finding 3: Argon2id runs at most ARGON2_CONCURRENCY at a time per worker; a request that
    finds no turn within the short wait is told to come back, and nothing is counted."""
    client = create_client(chosen_secret=CHOSEN_SECRET)
    with all_argon2_turns_taken(app):
        response = post(http, live_server.token_url, client.client_id, CHOSEN_SECRET)
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "temporarily_unavailable"
    assert int(response.headers["Retry-After"]) >= 1
    assert response.headers["Cache-Control"] == "no-store"
    assert post(http, live_server.token_url, client.client_id, CHOSEN_SECRET).ok


def test_locked_client_with_a_generated_secret_still_accepts_it_while_argon2id_is_busy(
    app: Flask,
    http: requests.Session,
    live_server: LiveServer,
    create_client: Callable[..., RegisteredClient],
) -> None:
    client = create_client()
    url = live_server.token_url
    lock(app, client.client_id)
    with all_argon2_turns_taken(app):
        assert_too_many_requests(post(http, url, client.client_id, "wrong"))
        assert post(http, url, client.client_id, client.client_secret).ok


@pytest.mark.parametrize("method", AUTH_METHODS)
@pytest.mark.parametrize("length", [MAX_CLIENT_ID_LENGTH + 1, 40_000])
def test_client_id_over_256_characters_is_invalid_client(
    http: requests.Session, live_server: LiveServer, method: str, length: int
) -> None:
    response = authenticate(http, live_server.token_url, "c" * length, "wrong", method)
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"
    assert str(MAX_CLIENT_ID_LENGTH) in response.json()["error_description"]


def test_over_long_client_id_failures_count_per_address_not_per_id(
    http: requests.Session, live_server: LiveServer
) -> None:
    long_id = "c" * (MAX_CLIENT_ID_LENGTH + 1)
    for _ in range(50):
        assert post(http, live_server.token_url, long_id, "wrong").status_code == 401
    assert_too_many_requests(post(http, live_server.token_url, "cli_other", "wrong"))


@pytest.mark.parametrize("settings_overrides", [{"trusted_proxies": 1}])
def test_ipv6_addresses_are_limited_per_64(
    http: requests.Session,
    live_server: LiveServer,
    create_client: Callable[..., RegisteredClient],
    settings_overrides: dict[str, Any],
) -> None:
    """Finding 9: per /128, an attacker holding a /64 had 2^64 fresh addresses."""
    for attempt in range(50):
        response = http.post(
            live_server.token_url,
            data=GRANT,
            auth=(f"cli_guess{attempt}", "wrong"),
            headers={"X-Forwarded-For": f"2001:db8:1:2::{attempt + 1:x}"},
            timeout=10,
        )
        assert response.status_code == 401
    client = create_client()
    auth = (client.client_id, client.client_secret)

    def from_address(address: str) -> requests.Response:
        headers = {"X-Forwarded-For": address}
        return http.post(live_server.token_url, data=GRANT, auth=auth, headers=headers)

    assert_too_many_requests(from_address("2001:db8:1:2:ffff:ffff:ffff:ffff"))
    assert from_address("2001:db8:1:3::1").ok


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2::", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("fe80::1%eth0", "fe80::/64"),
        ("unknown", "unknown"),
    ],
)
def test_limits_count_ipv4_per_address_and_ipv6_per_64(address: str, key: str) -> None:
    assert source_key(address) == key
