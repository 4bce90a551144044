"""Client secret rotation with a grace period, expiring secrets, and the purge of dead hashes.

The service level runs on SQLite and PostgreSQL; ``authserver clients rotate-secret`` runs in
process (tests/support/cli_in_process.py; tests/test_cli.py runs the console script itself)
against SQLite. Secrets are always tried at the real token endpoint or
through ``services.registrations.authenticate``, never by looking at hashes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import func, select

from authserver.errors import ClientNotFound
from authserver.extensions import db
from authserver.maintenance import Maintenance
from authserver.models import ClientSecret, utcnow
from authserver.services import registrations, registry
from tests.conftest import LiveServer, RegisteredClient
from tests.support.cli import (
    CLIENT_FIELDS,
    RunCli,
    assert_one_line_error,
    base_env,
    ok_json,
)
from tests.support.cli_in_process import make_in_process_runner
from tests.support.oauth import once_workers_see_registry_changes
from tests.support.waiting import wait_until

CreateClient = Callable[..., RegisteredClient]
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
#: How long after its end a secret may still be seen working: the polling's own delay on a
#: busy machine (the token endpoint itself compares with the clock at each request).
EXPIRY_SLACK_SECONDS = 1.0


def token_status(
    http: requests.Session, live_server: LiveServer, client_id: str, secret: str
) -> int:
    """The token endpoint's status for these credentials; a 401 must be ``invalid_client``."""
    response = http.post(
        live_server.token_url,
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
        timeout=10,
    )
    if response.status_code == 401:
        assert response.json()["error"] == "invalid_client"
    else:
        assert response.status_code == 200, response.text
    return response.status_code


def expect_statuses(
    http: requests.Session, live_server: LiveServer, client_id: str, expected: dict[str, int]
) -> None:
    """Each secret in ``expected`` gets its status from the token endpoint, in this order."""
    for position, (secret, status) in enumerate(expected.items()):
        assert token_status(http, live_server, client_id, secret) == status, f"secret #{position}"


def expect_refused_between(
    http: requests.Session,
    live_server: LiveServer,
    client_id: str,
    secret: str,
    earliest: float,
    latest: float,
) -> None:
    """The secret keeps working until the token endpoint refuses it, which happens no earlier
    than ``earliest`` and by ``latest`` (``time.monotonic`` readings bracketing its end)."""

    def refused_at() -> float | None:
        refused = token_status(http, live_server, client_id, secret) == 401
        return time.monotonic() if refused else None

    timeout = max(0.0, latest - time.monotonic()) + EXPIRY_SLACK_SECONDS
    seen = wait_until(refused_at, timeout, "the secret refused once it ended")
    assert seen >= earliest, f"the secret was refused {earliest - seen:.2f} s before it ended"


def expect_grace(
    http: requests.Session,
    live_server: LiveServer,
    client_id: str,
    old: str,
    new: str,
    rotated_between: tuple[float, float],
    grace: float,
) -> None:
    """Both secrets work until ``grace`` seconds after the rotation (which happened between
    the two ``time.monotonic`` readings), then only the new one."""
    expect_statuses(http, live_server, client_id, {old: 200, new: 200})
    started, finished = rotated_between
    expect_refused_between(http, live_server, client_id, old, started + grace, finished + grace)
    expect_statuses(http, live_server, client_id, {old: 401, new: 200})


def rotate(app: Flask, client_id: str, **options: Any) -> str:
    with app.app_context():
        rotated = registry.rotate_secret(db.session(), client_id, **options)
        db.session.commit()
        return rotated.client_secret


def rotate_new_client(
    app: Flask, create_client: CreateClient, **options: Any
) -> tuple[RegisteredClient, str, datetime]:
    """A new client rotated at once with ``options``: the client, its new secret, and when."""
    client = create_client()
    rotated_at = utcnow()
    return client, rotate(app, client.client_id, now=rotated_at, **options), rotated_at


def authenticates(app: Flask, client_id: str, secret: str, at: datetime | None = None) -> bool:
    with app.app_context():
        client = registrations.authenticate(db.session(), client_id, secret, at or utcnow())
        db.session.rollback()
        return client is not None


def stored_secrets(app: Flask, client_id: str) -> int:
    with app.app_context():
        count = db.session.scalar(
            select(func.count())
            .select_from(ClientSecret)
            .where(ClientSecret.client_id == client_id)
        )
        return int(count or 0)


# --- service level, SQLite and PostgreSQL ---------------------------------------------------


def test_rotation_without_grace_ends_the_old_secret_at_once_and_the_new_one_works(
    http: requests.Session, live_server: LiveServer, create_client: CreateClient, app: Flask
) -> None:
    client = create_client()
    assert token_status(http, live_server, client.client_id, client.client_secret) == 200

    new_secret = rotate(app, client.client_id)
    once_workers_see_registry_changes(
        lambda: token_status(http, live_server, client.client_id, client.client_secret) == 401,
        "the old secret refused",
    )

    assert new_secret != client.client_secret
    assert new_secret.startswith("ascs_")
    expect_statuses(
        http, live_server, client.client_id, {client.client_secret: 401, new_secret: 200}
    )
    assert stored_secrets(app, client.client_id) == 1


def test_rotation_with_grace_keeps_both_secrets_working_until_the_grace_ends(
    http: requests.Session, live_server: LiveServer, create_client: CreateClient, app: Flask
) -> None:
    client = create_client()

    started = time.monotonic()
    new_secret = rotate(app, client.client_id, grace=1)
    rotated = (started, time.monotonic())

    expect_grace(
        http, live_server, client.client_id, client.client_secret, new_secret, rotated, grace=1
    )


def test_grace_window_ends_exactly_when_the_grace_seconds_have_passed(
    app: Flask, create_client: CreateClient
) -> None:
    client, new_secret, rotated_at = rotate_new_client(app, create_client, grace=30)

    old = client.client_secret
    assert authenticates(app, client.client_id, old, rotated_at + timedelta(seconds=29))
    assert not authenticates(app, client.client_id, old, rotated_at + timedelta(seconds=30))
    assert authenticates(app, client.client_id, new_secret, rotated_at + timedelta(days=365))


def test_rotating_twice_within_grace_leaves_at_most_two_live_secrets(
    http: requests.Session, live_server: LiveServer, create_client: CreateClient, app: Flask
) -> None:
    client = create_client()
    first = client.client_secret

    second = rotate(app, client.client_id, grace=60)
    third = rotate(app, client.client_id, grace=60)

    expect_statuses(http, live_server, client.client_id, {first: 401, second: 200, third: 200})
    assert stored_secrets(app, client.client_id) == 2

    fourth = rotate(app, client.client_id, grace=60)
    once_workers_see_registry_changes(
        lambda: token_status(http, live_server, client.client_id, second) == 401,
        "the second secret refused",
    )

    expect_statuses(http, live_server, client.client_id, {second: 401, third: 200, fourth: 200})
    assert stored_secrets(app, client.client_id) == 2


def test_grace_never_extends_an_old_secret_that_expires_sooner(
    app: Flask, create_client: CreateClient
) -> None:
    created_at = utcnow()
    client = create_client(secret_expires_in=10, now=created_at)

    rotate(app, client.client_id, grace=3600, now=created_at + timedelta(seconds=1))

    old = client.client_secret
    assert authenticates(app, client.client_id, old, created_at + timedelta(seconds=9))
    assert not authenticates(app, client.client_id, old, created_at + timedelta(seconds=11))


def test_secret_created_with_expires_in_is_invalid_client_after_expiry(
    http: requests.Session, live_server: LiveServer, create_client: CreateClient, app: Flask
) -> None:
    started = time.monotonic()
    client = create_client(secret_expires_in=1)
    created = time.monotonic()
    assert token_status(http, live_server, client.client_id, client.client_secret) == 200

    expect_refused_between(
        http, live_server, client.client_id, client.client_secret, started + 1, created + 1
    )

    assert token_status(http, live_server, client.client_id, client.client_secret) == 401
    assert not authenticates(app, client.client_id, client.client_secret)


def test_rotated_secret_with_expires_in_stops_working_after_expiry(
    app: Flask, create_client: CreateClient
) -> None:
    client, new_secret, rotated_at = rotate_new_client(app, create_client, expires_in=60)

    assert authenticates(app, client.client_id, new_secret, rotated_at + timedelta(seconds=59))
    assert not authenticates(app, client.client_id, new_secret, rotated_at + timedelta(seconds=60))
    assert not authenticates(app, client.client_id, client.client_secret, rotated_at)


def test_rotating_an_unknown_client_raises_client_not_found(app: Flask) -> None:
    with app.app_context(), pytest.raises(ClientNotFound):
        registry.rotate_secret(db.session(), "cli_nobody", grace=5)


def test_maintenance_deletes_the_hashes_of_expired_secrets_only(
    app: Flask, create_client: CreateClient
) -> None:
    long_ago = utcnow() - timedelta(minutes=10)
    rotated = create_client(name="rotated")
    new_secret = rotate(app, rotated.client_id, grace=1, now=long_ago)  # old ended 10 min ago
    in_grace = create_client(name="in grace")
    in_grace_secret = rotate(app, in_grace.client_id, grace=600)
    expiring = create_client(name="expiring", secret_expires_in=1, now=long_ago)
    assert stored_secrets(app, rotated.client_id) == 2
    assert stored_secrets(app, in_grace.client_id) == 2
    assert stored_secrets(app, expiring.client_id) == 1

    Maintenance(app).tick()  # a fresh instance: its first round always does housekeeping

    assert stored_secrets(app, rotated.client_id) == 1
    assert authenticates(app, rotated.client_id, new_secret)
    assert stored_secrets(app, in_grace.client_id) == 2
    assert authenticates(app, in_grace.client_id, in_grace.client_secret)
    assert authenticates(app, in_grace.client_id, in_grace_secret)
    assert stored_secrets(app, expiring.client_id) == 0


# --- the command line, on SQLite ------------------------------------------------------------


@pytest.fixture
def cli(database_url: str, keys_dir: Path, app: Flask) -> RunCli:
    """``authserver`` against the same database and keys as ``app`` (already migrated)."""
    return make_in_process_runner(base_env(database_url, keys_dir))


def cli_create(cli: RunCli, *options: str) -> dict[str, Any]:
    created: dict[str, Any] = ok_json(
        cli("clients", "create", "--name", "svc", "--scope", "api", "--json", *options)
    )
    return created


def cli_credentials(cli: RunCli) -> tuple[str, str]:
    """A new client's id and secret."""
    created = cli_create(cli)
    return created["client_id"], created["client_secret"]


def cli_rotate(cli: RunCli, client_id: str, *options: str) -> dict[str, Any]:
    rotated: dict[str, Any] = ok_json(
        cli("clients", "rotate-secret", client_id, *options, "--json")
    )
    return rotated


@SQLITE_ONLY
def test_cli_rotate_secret_prints_a_new_secret_and_the_old_one_stops_at_once(
    cli: RunCli, http: requests.Session, live_server: LiveServer
) -> None:
    client_id, old_secret = cli_credentials(cli)

    rotated = cli_rotate(cli, client_id)

    assert set(rotated) == CLIENT_FIELDS | {"client_secret"}
    assert rotated["client_id"] == client_id
    new_secret = rotated["client_secret"]
    assert new_secret != old_secret
    assert new_secret.startswith("ascs_")
    expect_statuses(http, live_server, client_id, {old_secret: 401, new_secret: 200})


@SQLITE_ONLY
def test_cli_rotate_secret_with_grace_keeps_the_old_secret_until_the_grace_ends(
    cli: RunCli, http: requests.Session, live_server: LiveServer
) -> None:
    client_id, old_secret = cli_credentials(cli)

    started = time.monotonic()
    new_secret = cli_rotate(cli, client_id, "--grace", "2")["client_secret"]
    rotated = (started, time.monotonic())

    expect_grace(http, live_server, client_id, old_secret, new_secret, rotated, grace=2)


@SQLITE_ONLY
def test_cli_rotate_secret_twice_within_grace_ends_the_oldest_secret_at_once(
    cli: RunCli, http: requests.Session, live_server: LiveServer
) -> None:
    client_id, first = cli_credentials(cli)

    second = cli_rotate(cli, client_id, "--grace", "60")["client_secret"]
    third = cli_rotate(cli, client_id, "--grace", "60")["client_secret"]

    expect_statuses(http, live_server, client_id, {first: 401, second: 200, third: 200})


@SQLITE_ONLY
def test_cli_expires_in_on_create_and_on_rotate_secret_makes_the_secret_stop_by_itself(
    cli: RunCli, http: requests.Session, live_server: LiveServer
) -> None:
    """``--expires-in 3``: checked right after the command and again once it has passed.

    Three seconds, not one: on a loaded machine a CLI process can take a second to exit.
    """
    create_started = time.monotonic()
    expiring = cli_create(cli, "--expires-in", "3")
    created = (create_started + 3, time.monotonic() + 3)
    created_in_time = token_status(
        http, live_server, expiring["client_id"], expiring["client_secret"]
    )
    other = cli_create(cli)
    rotate_started = time.monotonic()
    rotated = cli_rotate(cli, other["client_id"], "--expires-in", "3")
    rotated_ends = (rotate_started + 3, time.monotonic() + 3)
    rotated_in_time = token_status(http, live_server, other["client_id"], rotated["client_secret"])

    assert created_in_time == 200
    assert rotated_in_time == 200
    expect_refused_between(
        http, live_server, expiring["client_id"], expiring["client_secret"], *created
    )
    expect_refused_between(
        http, live_server, other["client_id"], rotated["client_secret"], *rotated_ends
    )


@SQLITE_ONLY
def test_cli_rotate_secret_of_an_unknown_client_exits_1_with_one_line(cli: RunCli) -> None:
    result = cli("clients", "rotate-secret", "cli_nobody", "--json")

    line = assert_one_line_error(result, 1)
    assert "cli_nobody" in line
    assert result.stdout == ""


@SQLITE_ONLY
@pytest.mark.parametrize("options", [["--grace", "-1"], ["--grace", "soon"], ["--expires-in", "0"]])
def test_cli_rotate_secret_rejects_out_of_range_values_as_usage_errors(
    cli: RunCli, http: requests.Session, live_server: LiveServer, options: list[str]
) -> None:
    created = cli_create(cli)

    result = cli("clients", "rotate-secret", created["client_id"], *options, "--json")

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert options[0] in result.stderr
    assert result.stdout == ""
    # Nothing was rotated: the secret from create still works.
    assert token_status(http, live_server, created["client_id"], created["client_secret"]) == 200


@SQLITE_ONLY
def test_cli_create_rejects_a_zero_expiry_as_a_usage_error(cli: RunCli) -> None:
    result = cli("clients", "create", "--name", "svc", "--scope", "api", "--expires-in", "0")

    assert result.returncode == 2, result.stderr
    assert "--expires-in" in result.stderr
    assert "Traceback" not in result.stderr
    assert ok_json(cli("clients", "list", "--json")) == []
