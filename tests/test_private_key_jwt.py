"""``private_key_jwt`` from the outside: the CLI registers key clients, a real HTTP server
accepts their assertions (signed with PyJWT), each assertion once across instances sharing
SQLite or PostgreSQL, and an existing database upgrades in place.

The CLI runs in-process through Click's runner (the console script's subprocess start-up
would cost a second per command; ``tests/test_cli.py`` covers the script itself).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import flask_migrate
import jwt
import pytest
import requests
from flask import Flask
from joserfc.jwk import RSAKey
from sqlalchemy import func, select, text

from authserver.app import create_app
from authserver.config import Settings
from authserver.database import SQLITE_BUSY_TIMEOUT_MS
from authserver.extensions import db
from authserver.maintenance import Maintenance
from authserver.models import UsedAssertion
from authserver.oauth.client_assertion import JWT_BEARER
from authserver.schema import MIGRATIONS_DIR, upgrade_schema
from authserver.services import registry
from tests.conftest import ISSUER, LiveServer
from tests.support.cli_in_process import InProcessCli, in_process_cli
from tests.support.wsgi import serving

GRANT = {"grant_type": "client_credentials"}
#: What does not depend on the database runs once, on SQLite; what does runs on both.
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture(scope="module")
def rsa_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "service-key-1"})


@pytest.fixture
def jwks_file(tmp_path: Path, rsa_key: RSAKey) -> Path:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [rsa_key.as_dict(private=False)]}))
    return path


@pytest.fixture
def cli(settings: Settings, app: Flask) -> InProcessCli:
    """``authserver ARGS`` in-process against the (migrated) test app's database."""
    return in_process_cli(settings)


def create_key_client(cli: Any, jwks_file: Path) -> dict[str, Any]:
    result = cli(
        "clients", "create", "--name", "signer", "--scope", "api", "--auth-method",
        "private_key_jwt", "--jwks-file", str(jwks_file), "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    created: dict[str, Any] = json.loads(result.stdout)
    return created


def assertion(key: RSAKey, client_id: str, **overrides: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": ISSUER,
        "iat": now,
        "exp": now + 60,
        "jti": uuid.uuid4().hex,
        **overrides,
    }
    return jwt.encode(claims, key.as_pem(private=True), algorithm="RS256", headers={"kid": key.kid})


def post_assertion(
    url: str, signed: str, path: str = "/oauth2/token", **form: str
) -> requests.Response:
    body = {"client_assertion_type": JWT_BEARER, "client_assertion": signed, **form}
    if path == "/oauth2/token":
        body = {**GRANT, **body}
    return requests.post(f"{url}{path}", data=body, timeout=10)


# --- the CLI ---------------------------------------------------------------------------------


@SQLITE_ONLY
def test_clients_create_registers_a_key_client_without_a_secret(
    cli: Any, jwks_file: Path, rsa_key: RSAKey
) -> None:
    created = create_key_client(cli, jwks_file)

    assert "client_secret" not in created
    assert created["token_endpoint_auth_method"] == "private_key_jwt"
    assert created["jwks_uri"] is None
    assert created["jwks"] == {"keys": [rsa_key.as_dict(private=False)]}
    shown = json.loads(cli("clients", "show", created["client_id"], "--json").stdout)
    assert shown == created


@SQLITE_ONLY
def test_a_secret_client_says_its_method_and_shows_no_key_fields(cli: Any) -> None:
    result = cli("clients", "create", "--name", "s", "--scope", "api", "--json")

    created = json.loads(result.stdout)
    assert created["token_endpoint_auth_method"] == "client_secret_basic"
    assert "jwks" not in created
    assert "jwks_uri" not in created


@SQLITE_ONLY
def test_a_jwks_uri_client_is_registered_with_its_uri(cli: Any) -> None:
    result = cli(
        "clients", "create", "--name", "u", "--scope", "api", "--auth-method",
        "private_key_jwt", "--jwks-uri", "https://keys.example.test/jwks.json", "--json",
    )  # fmt: skip

    created = json.loads(result.stdout)
    assert (created["jwks_uri"], created["jwks"]) == ("https://keys.example.test/jwks.json", None)


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("private", "private member(s) d"),
        ('{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}', "private member(s) k"),
        ("not json", "not JSON"),
        ('{"keys": []}', "1 to 16 keys"),
        ('{"kty": "RSA"}', '"keys" list'),
    ],
)
def test_a_bad_jwks_file_is_one_line_and_exit_1(
    cli: Any, tmp_path: Path, rsa_key: RSAKey, document: str, message: str
) -> None:
    path = tmp_path / "bad.json"
    if document == "private":
        document = json.dumps({"keys": [rsa_key.as_dict(private=True)]})
    path.write_text(document)

    result = cli(
        "clients", "create", "--name", "k", "--scope", "api", "--auth-method",
        "private_key_jwt", "--jwks-file", str(path),
    )  # fmt: skip

    assert result.exit_code == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


@SQLITE_ONLY
@pytest.mark.parametrize(
    "uri", ["http://keys.example.test/jwks", "ftp://localhost/jwks", "https:///jwks", "not a url"]
)
def test_a_jwks_uri_that_is_not_https_or_loopback_http_is_refused(cli: Any, uri: str) -> None:
    result = cli(
        "clients", "create", "--name", "k", "--scope", "api", "--auth-method",
        "private_key_jwt", "--jwks-uri", uri,
    )  # fmt: skip

    assert result.exit_code == 1, result.output
    assert "jwks_uri" in result.stderr


@SQLITE_ONLY
@pytest.mark.parametrize(
    "args",
    [
        ["--auth-method", "private_key_jwt"],
        ["--jwks-uri", "https://keys.example.test/jwks"],
        ["--auth-method", "private_key_jwt", "--jwks-uri", "https://k.test/j", "--secret-stdin"],
        ["--auth-method", "client_secret_post"],
    ],
)
def test_inconsistent_create_flags_are_usage_errors(cli: Any, args: list[str]) -> None:
    result = cli("clients", "create", "--name", "k", "--scope", "api", *args)

    assert result.exit_code == 2, result.output


@SQLITE_ONLY
def test_rotate_secret_of_a_key_client_is_exit_1_with_one_line(cli: Any, jwks_file: Path) -> None:
    client_id = create_key_client(cli, jwks_file)["client_id"]

    result = cli("clients", "rotate-secret", client_id)

    assert result.exit_code == 1
    assert "private_key_jwt" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@SQLITE_ONLY
def test_update_replaces_a_key_clients_keys_and_refuses_them_for_a_secret_client(
    cli: Any, jwks_file: Path
) -> None:
    client_id = create_key_client(cli, jwks_file)["client_id"]
    uri = "https://keys.example.test/rotated.json"

    by_uri = json.loads(cli("clients", "update", client_id, "--jwks-uri", uri, "--json").stdout)
    by_file = json.loads(
        cli("clients", "update", client_id, "--jwks-file", str(jwks_file), "--json").stdout
    )
    secret_client = json.loads(
        cli("clients", "create", "--name", "s", "--scope", "a", "--json").stdout
    )
    refused = cli("clients", "update", secret_client["client_id"], "--jwks-uri", uri)

    assert (by_uri["jwks_uri"], by_uri["jwks"]) == (uri, None)
    assert by_file["jwks_uri"] is None
    assert by_file["jwks"]["keys"]
    assert refused.exit_code == 1
    assert "only a private_key_jwt client has keys" in refused.stderr


# --- the HTTP side ---------------------------------------------------------------------------


def test_a_key_client_gets_introspects_and_revokes_with_assertions(
    cli: Any, jwks_file: Path, rsa_key: RSAKey, live_server: LiveServer
) -> None:
    client_id = create_key_client(cli, jwks_file)["client_id"]

    issued = post_assertion(live_server.url, assertion(rsa_key, client_id))
    assert issued.status_code == 200, issued.text
    token = issued.json()["access_token"]
    introspected = post_assertion(
        live_server.url, assertion(rsa_key, client_id), "/oauth2/introspect", token=token
    )
    revoked = post_assertion(
        live_server.url,
        assertion(rsa_key, client_id, aud=f"{ISSUER}/oauth2/revoke"),
        "/oauth2/revoke",
        token=token,
    )
    after = post_assertion(
        live_server.url, assertion(rsa_key, client_id), "/oauth2/introspect", token=token
    )

    assert introspected.json()["active"] is True
    assert introspected.json()["sub"] == client_id
    assert revoked.status_code == 200
    assert after.json() == {"active": False}


@SQLITE_ONLY
def test_a_replayed_assertion_is_refused(
    cli: Any, jwks_file: Path, rsa_key: RSAKey, live_server: LiveServer
) -> None:
    client_id = create_key_client(cli, jwks_file)["client_id"]
    signed = assertion(rsa_key, client_id)

    first = post_assertion(live_server.url, signed)
    second = post_assertion(live_server.url, signed)

    assert first.status_code == 200
    assert (second.status_code, second.json()["error"]) == (401, "invalid_client")


@SQLITE_ONLY
def test_a_key_client_gets_503_while_another_process_holds_the_sqlite_write_lock(
    settings: Settings, cli: Any, jwks_file: Path, rsa_key: RSAKey, live_server: LiveServer
) -> None:
    """The assertion cannot be spent, so no token: a 503 the client may retry, within the
    guard's bound (not SQLite's 5 s busy timeout), and the assertion is still good after."""
    client_id = create_key_client(cli, jwks_file)["client_id"]
    signed = assertion(rsa_key, client_id)
    blocker = sqlite3.connect(settings.database_url.removeprefix("sqlite:///"))
    blocker.isolation_level = None
    blocker.execute("BEGIN IMMEDIATE")  # the write lock, as a long CLI import would hold it
    try:
        started = time.monotonic()
        refused = post_assertion(live_server.url, signed)
        waited = time.monotonic() - started
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()

    assert refused.status_code == 503, refused.text
    assert refused.json()["error"] == "temporarily_unavailable"
    assert refused.headers["Retry-After"] == "1"
    assert waited < SQLITE_BUSY_TIMEOUT_MS / 1000
    assert post_assertion(live_server.url, signed).status_code == 200


@SQLITE_ONLY
def test_the_metadata_advertises_private_key_jwt_and_its_algorithms(
    live_server: LiveServer,
) -> None:
    metadata = requests.get(
        f"{live_server.url}/.well-known/oauth-authorization-server", timeout=10
    ).json()

    for endpoint in ("token_endpoint", "introspection_endpoint", "revocation_endpoint"):
        assert "private_key_jwt" in metadata[f"{endpoint}_auth_methods_supported"]
        assert metadata[f"{endpoint}_auth_signing_alg_values_supported"] == [
            "RS256", "PS256", "ES256", "EdDSA", "Ed25519",
        ]  # fmt: skip


def test_an_assertion_is_accepted_once_across_instances_racing_with_it(
    settings: Settings, app: Flask, cli: Any, jwks_file: Path, rsa_key: RSAKey
) -> None:
    """Two apps on one database (two instances), eight requests at once with one assertion:
    exactly one gets a token, on SQLite and on PostgreSQL."""
    client_id = create_key_client(cli, jwks_file)["client_id"]
    other = create_app(settings)
    signed = assertion(rsa_key, client_id)
    statuses: list[int] = []
    start = threading.Barrier(8)

    def attempt(url: str) -> None:
        start.wait(timeout=10)
        statuses.append(post_assertion(url, signed).status_code)

    with serving(app) as first_url, serving(other) as second_url:
        threads = [
            threading.Thread(target=attempt, args=(url,)) for url in [first_url, second_url] * 4
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

    assert sorted(statuses) == [200] + [401] * 7
    with app.app_context():
        used = db.session.scalar(select(func.count()).select_from(UsedAssertion))
    with other.app_context():
        db.engine.dispose()
    assert used == 1


def test_an_accepted_assertion_is_kept_until_it_expires_and_maintenance_drops_expired_ones(
    app: Flask, cli: Any, jwks_file: Path, rsa_key: RSAKey, live_server: LiveServer
) -> None:
    client_id = create_key_client(cli, jwks_file)["client_id"]
    assert post_assertion(live_server.url, assertion(rsa_key, client_id)).status_code == 200
    with app.app_context():
        (live,) = db.session.scalars(select(UsedAssertion)).all()
        # exp (60 s ahead) plus the leeway: until then the assertion could still be presented.
        assert datetime.now(UTC) + timedelta(seconds=110) < live.expires_at
        db.session.add(
            UsedAssertion(digest="0" * 64, expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        db.session.commit()
        live_digest = live.digest

    Maintenance(app).tick()

    with app.app_context():
        assert db.session.scalars(select(UsedAssertion.digest)).all() == [live_digest]


# --- the migration -----------------------------------------------------------------------------


def test_migration_0006_upgrades_a_database_with_clients_in_place(settings: Settings) -> None:
    app = create_app(settings, with_http=False)
    flask_migrate.Migrate(app, db, directory=str(MIGRATIONS_DIR))
    with app.app_context():
        flask_migrate.upgrade(directory=str(MIGRATIONS_DIR), revision="0005")
        db.session.execute(
            text(
                "INSERT INTO clients (client_id, name, scope, audiences, enabled, created_at) "
                "VALUES ('cli_old', 'old', 'api', '[]', true, :now)"
            ),
            {"now": datetime.now(UTC)},
        )
        db.session.commit()
    upgrade_schema(app)
    with app.app_context():
        old = registry.get_client(db.session(), "cli_old")
        stored = (old.auth_method, old.jwks, old.jwks_uri)
        # The session's connection goes back to the pool before the pool is closed.
        db.session.remove()
        db.engine.dispose()
    assert stored == ("client_secret_basic", None, None)
