"""``authserver trust add|list|show|delete``: trusts are stored, shown as the contract's trust
object, refused with one line when a field is wrong, and go with their client.

In-process through Click's runner, as ``tests/test_private_key_jwt.py`` does; what depends on
the database (the foreign key's cascade, the migration) runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from typing import Any

import flask_migrate
import pytest
from click.testing import Result
from flask import Flask
from sqlalchemy import inspect

from authserver.app import create_app
from authserver.config import Settings
from authserver.extensions import db
from authserver.schema import MIGRATIONS_DIR, upgrade_schema
from tests.support.cli_in_process import InProcessCli, in_process_cli

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
TRUST_FIELDS = {
    "trust_id", "client_id", "issuer", "subject", "audience", "jwks_uri", "allow_reuse",
    "max_lifetime", "created_at",
}  # fmt: skip
K8S_ISSUER = "https://kubernetes.default.svc.cluster.local"


@pytest.fixture
def cli(settings: Settings, app: Flask) -> InProcessCli:
    """``authserver ARGS`` in-process against the (migrated) test app's database."""
    return in_process_cli(settings)


def client_id_of(cli: Any) -> str:
    created = json.loads(cli("clients", "create", "--name", "w", "--scope", "api", "--json").stdout)
    client_id: str = created["client_id"]
    return client_id


def add(cli: Any, client_id: str, *extra: str) -> Result:
    return cli(
        "trust", "add", "--client", client_id, "--issuer", K8S_ISSUER,
        "--subject", "system:serviceaccount:billing:*", "--audience", "authserver", *extra,
    )  # fmt: skip


@SQLITE_ONLY
def test_trust_add_prints_the_trust_object_with_the_defaults(cli: Any) -> None:
    client_id = client_id_of(cli)

    result = add(cli, client_id, "--json")

    assert result.exit_code == 0, result.output
    trust = json.loads(result.stdout)
    assert set(trust) == TRUST_FIELDS
    assert trust["trust_id"].startswith("trs_")
    assert trust["client_id"] == client_id
    assert (trust["issuer"], trust["subject"], trust["audience"]) == (
        K8S_ISSUER, "system:serviceaccount:billing:*", "authserver",
    )  # fmt: skip
    assert (trust["jwks_uri"], trust["allow_reuse"], trust["max_lifetime"]) == (None, False, 3600)


@SQLITE_ONLY
def test_trust_add_takes_a_jwks_uri_reuse_and_a_lifetime(cli: Any) -> None:
    client_id = client_id_of(cli)

    result = add(
        cli, client_id, "--jwks-uri", "https://spire.example.test/keys", "--allow-reuse",
        "--max-lifetime", "600", "--json",
    )  # fmt: skip

    trust = json.loads(result.stdout)
    assert (trust["jwks_uri"], trust["allow_reuse"], trust["max_lifetime"]) == (
        "https://spire.example.test/keys", True, 600,
    )  # fmt: skip


@SQLITE_ONLY
def test_list_show_and_delete(cli: Any) -> None:
    client_id = client_id_of(cli)
    trust = json.loads(add(cli, client_id, "--json").stdout)

    listed = json.loads(cli("trust", "list", "--json").stdout)
    shown = json.loads(cli("trust", "show", trust["trust_id"], "--json").stdout)
    deleted = cli("trust", "delete", trust["trust_id"])
    after = json.loads(cli("trust", "list", "--json").stdout)
    again = cli("trust", "show", trust["trust_id"])

    assert listed == [trust]
    assert shown == trust
    assert deleted.exit_code == 0
    assert after == []
    assert again.exit_code == 1
    assert "no trust with id" in again.stderr


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--issuer", "http://issuer.example.test"], "issuer"),
        (["--issuer", "not a url"], "issuer"),
        (["--subject", " padded"], "subject"),
        (["--subject", "line\nbreak"], "subject"),
        (["--audience", "x" * 1025], "audience"),
        (["--jwks-uri", "ftp://keys.example.test/jwks"], "jwks_uri"),
    ],
)
def test_a_bad_field_is_one_line_and_exit_1_and_nothing_is_stored(
    cli: Any, args: list[str], message: str
) -> None:
    client_id = client_id_of(cli)
    base = {"--issuer": K8S_ISSUER, "--subject": "sa", "--audience": "authserver"}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    flat = [item for pair in base.items() for item in pair]

    result = cli("trust", "add", "--client", client_id, *flat)

    assert result.exit_code == 1, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert json.loads(cli("trust", "list", "--json").stdout) == []


@SQLITE_ONLY
def test_an_unknown_client_is_exit_1_with_one_line(cli: Any) -> None:
    result = add(cli, "cli_nobody")

    assert result.exit_code == 1
    assert "no client with id 'cli_nobody'" in result.stderr


@SQLITE_ONLY
@pytest.mark.parametrize("lifetime", ["0", "86401", "soon"])
def test_max_lifetime_out_of_range_is_a_usage_error(cli: Any, lifetime: str) -> None:
    assert add(cli, client_id_of(cli), "--max-lifetime", lifetime).exit_code == 2


def test_deleting_the_client_deletes_its_trusts(cli: Any) -> None:
    client_id = client_id_of(cli)
    add(cli, client_id)

    assert cli("clients", "delete", client_id).exit_code == 0

    assert json.loads(cli("trust", "list", "--json").stdout) == []


def test_migration_0007_adds_the_table_to_a_database_in_use(settings: Settings) -> None:
    app = create_app(settings, with_http=False)
    flask_migrate.Migrate(app, db, directory=str(MIGRATIONS_DIR))
    with app.app_context():
        flask_migrate.upgrade(directory=str(MIGRATIONS_DIR), revision="0006")
        assert "trusts" not in inspect(db.engine).get_table_names()
    upgrade_schema(app)
    with app.app_context():
        assert "trusts" in inspect(db.engine).get_table_names()
        db.engine.dispose()


@SQLITE_ONLY
def test_the_issuer_is_kept_exactly_as_tokens_write_it(cli: Any) -> None:
    """Auth0-style issuers end in a slash; a token's iss is matched character for character."""
    client_id = client_id_of(cli)
    issuer = "https://tenant.example.test/"
    result = cli(
        "trust", "add", "--client", client_id, "--issuer", issuer, "--subject", "svc",
        "--audience", "authserver", "--json",
    )  # fmt: skip
    assert json.loads(result.stdout)["issuer"] == issuer


@SQLITE_ONLY
def test_a_second_trust_for_the_same_issuer_subject_and_audience_is_refused(cli: Any) -> None:
    client_id = client_id_of(cli)
    first = json.loads(add(cli, client_id, "--json").stdout)

    twin = add(cli, client_id_of(cli))
    other_audience = cli(
        "trust", "add", "--client", client_id, "--issuer", K8S_ISSUER,
        "--subject", "system:serviceaccount:billing:*", "--audience", "deployer",
    )  # fmt: skip

    assert twin.exit_code == 1
    assert f"trust {first['trust_id']} already accepts" in twin.stderr
    assert len(twin.stderr.strip().splitlines()) == 1
    assert other_audience.exit_code == 0
