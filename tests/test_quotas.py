"""Per-client token quotas end to end: set and lifted with the CLI, stored (migration 0008),
and enforced by a real ``authserver serve`` whose workers share one count per instance, and
by instances sharing Redis."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import flask_migrate
import pytest
import requests
from flask import Flask
from sqlalchemy import inspect

from authserver.app import create_app
from authserver.config import Settings
from authserver.extensions import db
from authserver.schema import MIGRATIONS_DIR, upgrade_schema
from authserver.services import registry
from tests.conftest import ISSUER
from tests.support.cli_in_process import InProcessCli, in_process_cli
from tests.support.served import ServedAuthServer, served_auth_server
from tests.support.wsgi import serving

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
GRANT = {"grant_type": "client_credentials"}
HOUR = 3600


@pytest.fixture
def cli(settings: Settings, app: Flask) -> InProcessCli:
    return in_process_cli(settings)


def json_of(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@SQLITE_ONLY
def test_the_quota_is_set_changed_and_lifted_with_the_cli(cli: InProcessCli) -> None:
    created = json_of(cli("clients", "create", "--name", "q", "--scope", "api",
                          "--max-tokens-per-hour", "120", "--json"))  # fmt: skip
    client_id = created["client_id"]
    changed = json_of(cli("clients", "update", client_id, "--max-tokens-per-hour", "7", "--json"))
    renamed = json_of(cli("clients", "update", client_id, "--name", "q2", "--json"))
    lifted = json_of(
        cli("clients", "update", client_id, "--max-tokens-per-hour", "unlimited", "--json")
    )
    plain = json_of(cli("clients", "create", "--name", "p", "--scope", "api", "--json"))

    assert created["max_tokens_per_hour"] == 120
    assert changed["max_tokens_per_hour"] == 7
    assert renamed["max_tokens_per_hour"] == 7  # an update that does not name it keeps it
    assert lifted["max_tokens_per_hour"] is None
    assert plain["max_tokens_per_hour"] is None


@SQLITE_ONLY
@pytest.mark.parametrize("value", ["0", "-1", "3600001", "lots", ""])
def test_a_quota_out_of_range_is_a_usage_error(cli: InProcessCli, value: str) -> None:
    result = cli("clients", "create", "--name", "q", "--scope", "api",
                 "--max-tokens-per-hour", value)  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "--max-tokens-per-hour" in result.stderr
    assert json_of(cli("clients", "list", "--json")) == []


def test_migration_0008_adds_the_column_to_a_database_in_use(settings: Settings) -> None:
    app = create_app(settings, with_http=False)
    flask_migrate.Migrate(app, db, directory=str(MIGRATIONS_DIR))
    with app.app_context():
        flask_migrate.upgrade(directory=str(MIGRATIONS_DIR), revision="0007")
        columns = {c["name"] for c in inspect(db.engine).get_columns("clients")}
        assert "max_tokens_per_hour" not in columns
        db.session.execute(
            db.text(
                "INSERT INTO clients (client_id, name, scope, audiences, enabled, created_at, "
                "auth_method) VALUES ('cli_old', 'old', 'api', '[]', true, "
                "'2026-11-01 00:00:00', 'client_secret_basic')"
            )
        )
        db.session.commit()
    upgrade_schema(app)
    with app.app_context():
        client = registry.get_client(db.session(), "cli_old")
        assert (client.name, client.max_tokens_per_hour) == ("old", None)
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedAuthServer]:
    with served_auth_server(tmp_path_factory.mktemp("quotas"), workers=2) as auth:
        yield auth


def test_the_workers_of_an_instance_share_the_count(served: ServedAuthServer) -> None:
    client = served.create_client("--name", "q", "--scope", "api", "--max-tokens-per-hour", "4")
    credentials = (client["client_id"], client["client_secret"])

    # A new connection each time, so both workers answer some of them.
    answers = [
        requests.post(served.token_url, data=GRANT, auth=credentials, timeout=10) for _ in range(8)
    ]

    assert [a.status_code for a in answers].count(200) == 4
    refused = [a for a in answers if a.status_code != 200]
    assert {a.status_code for a in refused} == {429}
    assert {a.json()["error"] for a in refused} == {"too_many_requests"}
    assert all(1 <= int(a.headers["Retry-After"]) <= HOUR for a in refused)
    assert [a.status_code for a in answers[:4]] == [200] * 4  # the first four, not any four


def test_instances_sharing_redis_share_the_count(
    redis_url: str, migrated_sqlite_url: str, keys_dir: Path
) -> None:
    settings = Settings(
        database_url=migrated_sqlite_url, issuer=ISSUER, default_audience=ISSUER,
        keys_dir=keys_dir, ratelimit_storage_url=redis_url,
    )  # fmt: skip
    apps = [create_app(settings) for _ in range(2)]
    upgrade_schema(apps[0])
    with apps[0].app_context():
        created = registry.create_client(db.session(), name="q", scope="api",
                                         max_tokens_per_hour=3)  # fmt: skip
        db.session.commit()
        credentials = (created.client.client_id, created.client_secret or "")
    with ExitStack() as stack:
        urls = [stack.enter_context(serving(app)) for app in apps]
        statuses = [
            requests.post(f"{urls[n % 2]}/oauth2/token", data=GRANT, auth=credentials,
                          timeout=10).status_code
            for n in range(6)
        ]  # fmt: skip
    for app in apps:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    assert statuses == [200, 200, 200, 429, 429, 429]
