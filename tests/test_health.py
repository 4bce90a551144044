"""Liveness and readiness probes, over real HTTP, with real broken dependencies."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from flask import Flask
from sqlalchemy.engine import make_url

from authserver.extensions import db
from authserver.security.keys import KeyStore
from tests.conftest import LiveServer
from tests.support.waiting import wait_until

SQLITE_DIR = "database"
ONE_UNUSABLE = "a signing key file could not be loaded (the server log names it)"
#: Keys folder variants with unusable key files: (a good key too?, corrupt files, answer).
CORRUPT_KEY_VARIANTS: dict[str, tuple[bool, int, tuple[int, dict[str, Any]]]] = {
    "a_good_and_a_corrupt_key": (
        True,
        1,
        (200, {"status": "ready", "database": "ok", "warnings": [ONE_UNUSABLE]}),
    ),
    "a_good_and_two_corrupt_keys": (
        True,
        2,
        (
            200,
            {
                "status": "ready",
                "database": "ok",
                "warnings": ["2 signing key files could not be loaded (the server log names them)"],
            },
        ),
    ),
    "only_a_corrupt_key": (
        False,
        1,
        (
            503,
            {
                "status": "unavailable",
                "database": "ok",
                "problems": ["no signing key loaded", ONE_UNUSABLE],
            },
        ),
    ),
}


@pytest.fixture
def settings_overrides(
    request: pytest.FixtureRequest, tmp_path: Path, database_url: str
) -> dict[str, Any]:
    """The SQLite file lives in its own folder so a test can take it away; tests pick a keys
    folder variant with ``indirect`` parametrization."""
    overrides: dict[str, Any] = {}
    if database_url.startswith("sqlite"):
        overrides["database_url"] = f"sqlite:///{tmp_path / SQLITE_DIR / 'authserver.db'}"
    variant = getattr(request, "param", None)
    if variant == "no_outage_grace":
        overrides["database_outage_grace"] = 0
    if variant == "empty_keys_dir":
        empty = tmp_path / "empty-keys"
        empty.mkdir(mode=0o700)
        overrides["keys_dir"] = empty
    elif variant == "missing_keys_dir":
        overrides["keys_dir"] = tmp_path / "no-such-keys"
    elif variant in CORRUPT_KEY_VARIANTS:
        keys = tmp_path / variant
        with_a_good_key, corrupt_files, _ = CORRUPT_KEY_VARIANTS[variant]
        if with_a_good_key:
            KeyStore(keys).generate("ES256")
        keys.mkdir(mode=0o700, exist_ok=True)
        for number in range(corrupt_files):
            (keys / f"corrupt-{number}.key.json").write_text('{"kid": "x", "private_key": "--')
        overrides["keys_dir"] = keys
    elif variant == "only_a_staged_key":
        staged = tmp_path / "staged-keys"
        KeyStore(staged).generate(activates_at=datetime.now(UTC) + timedelta(hours=1))
        overrides["keys_dir"] = staged
    return overrides


def assert_json_not_traceback(response: requests.Response) -> dict[str, Any]:
    assert response.headers["Content-Type"].startswith("application/json")
    assert "Traceback" not in response.text
    assert "<html" not in response.text.lower()
    body: dict[str, Any] = response.json()
    assert isinstance(body, dict)
    return body


def get(http: requests.Session, live_server: LiveServer, path: str) -> requests.Response:
    return http.get(live_server.url + path, timeout=15)


def make_database_unreachable(app: Flask, database_url: str, tmp_path: Path) -> None:
    """SQLite: remove the folder holding the file. PostgreSQL: drop this test's database,
    cutting its connections. The shared server keeps running for the other tests."""
    if database_url.startswith("sqlite"):
        shutil.rmtree(tmp_path / SQLITE_DIR)
    else:
        url = make_url(database_url)
        with psycopg.connect(
            host=url.host, port=url.port, user=url.username, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'DROP DATABASE "{url.database}" WITH (FORCE)')
    with app.app_context():
        db.engine.dispose()


def test_healthz_answers_200(http: requests.Session, live_server: LiveServer) -> None:
    response = get(http, live_server, "/healthz")
    assert response.status_code == 200
    assert_json_not_traceback(response)


def test_readyz_answers_200_with_database_and_signing_key(
    http: requests.Session, live_server: LiveServer
) -> None:
    response = get(http, live_server, "/readyz")
    assert response.status_code == 200
    assert_json_not_traceback(response)


@pytest.mark.parametrize(
    "settings_overrides",
    ["empty_keys_dir", "missing_keys_dir", "only_a_staged_key"],
    indirect=True,
)
def test_readyz_answers_503_json_without_a_usable_signing_key(
    http: requests.Session, live_server: LiveServer
) -> None:
    response = get(http, live_server, "/readyz")
    assert response.status_code == 503
    body = assert_json_not_traceback(response)
    assert body


@pytest.mark.parametrize("settings_overrides", ["empty_keys_dir"], indirect=True)
def test_healthz_stays_200_without_a_signing_key(
    http: requests.Session, live_server: LiveServer
) -> None:
    assert get(http, live_server, "/healthz").status_code == 200


def test_readyz_stays_200_saying_database_unreachable_within_the_outage_grace(
    http: requests.Session,
    live_server: LiveServer,
    app: Flask,
    database_url: str,
    tmp_path: Path,
) -> None:
    """The instance can still serve the clients it has seen (tests/test_database_outage.py
    shows it does), so a load balancer must keep it."""
    ready = get(http, live_server, "/readyz")
    assert (ready.status_code, ready.json()["database"]) == (200, "ok")

    make_database_unreachable(app, database_url, tmp_path)

    response = get(http, live_server, "/readyz")
    body = assert_json_not_traceback(response)
    assert (response.status_code, body) == (
        200,
        {"status": "ready", "database": "unreachable", "warnings": []},
    )


@pytest.mark.parametrize("settings_overrides", ["no_outage_grace"], indirect=True)
def test_readyz_answers_503_json_when_the_database_is_unreachable_without_a_grace(
    http: requests.Session,
    live_server: LiveServer,
    app: Flask,
    database_url: str,
    tmp_path: Path,
) -> None:
    assert get(http, live_server, "/readyz").status_code == 200

    make_database_unreachable(app, database_url, tmp_path)

    response = get(http, live_server, "/readyz")
    body = assert_json_not_traceback(response)
    assert (response.status_code, body) == (
        503,
        {"status": "unavailable", "database": "unreachable", "problems": ["database unreachable"]},
    )
    # Liveness says nothing about dependencies: the process still answers.
    assert get(http, live_server, "/healthz").status_code == 200


def test_readyz_turns_ready_once_a_key_file_appears(
    http: requests.Session, live_server: LiveServer, keys_dir: Path
) -> None:
    """Emptied before the first request, the keys folder gets its first key file later."""
    for path in keys_dir.iterdir():
        path.unlink()
    # The ring is loaded lazily on the first request, so it starts with no key.
    assert get(http, live_server, "/readyz").status_code == 503

    KeyStore(keys_dir).generate()
    wait_until(
        lambda: get(http, live_server, "/readyz").status_code == 200,
        2.0,
        "/readyz ready once a key file appeared",
    )


@pytest.mark.parametrize("settings_overrides", CORRUPT_KEY_VARIANTS, indirect=True)
def test_readyz_names_no_file_while_the_log_names_the_unusable_key_file(
    http: requests.Session,
    live_server: LiveServer,
    settings_overrides: dict[str, Any],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Anyone may ask ``/readyz``: it counts unusable key files; the operator's log names them."""
    response = get(http, live_server, "/readyz")
    body = assert_json_not_traceback(response)
    keys_dir: Path = settings_overrides["keys_dir"]
    _, corrupt_files, expected = CORRUPT_KEY_VARIANTS[keys_dir.name]
    assert (response.status_code, body) == expected
    for revealing in (str(tmp_path), "corrupt", "/", ".json"):
        assert revealing not in response.text

    logged = [json.loads(r.getMessage()) for r in caplog.records if r.name == "authserver.operator"]
    assert [(line["event"], line["level"]) for line in logged] == [
        ("signing_key.unusable", "warning")
    ] * corrupt_files
    for number in range(corrupt_files):
        path = str(keys_dir / f"corrupt-{number}.key.json")
        assert [path in line["message"] for line in logged].count(True) == 1
