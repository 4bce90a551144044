"""``authserver apply FILE`` and ``authserver export``: the registry made to hold what a file
declares, checked whole first, changed in one transaction, and written back as such a file.

In-process through Click's runner; what depends on the database (matching, pruning, the one
transaction, idempotency) runs on SQLite and PostgreSQL, the rest on SQLite. One test runs the
real console script.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from flask import Flask
from joserfc.jwk import RSAKey
from sqlalchemy import text

from authserver.cli import main
from authserver.cli.apply import MAX_FILE_BYTES
from authserver.config import Settings
from authserver.extensions import db
from authserver.services import apply, registry
from tests.support.cli import base_env, run_authserver

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
K8S = "https://kubernetes.default.svc.cluster.local"
GOOD_SECRET = "a-chosen-secret-0123456789"

Cli = Callable[..., Result]


@pytest.fixture
def cli(settings: Settings, app: Flask) -> Cli:
    """``authserver ARGS`` in-process against the (migrated) test app's database, with
    standard input and extra environment variables."""
    base = {
        "AUTHSERVER_DATABASE_URL": settings.database_url,
        "AUTHSERVER_KEYS_DIR": str(settings.keys_dir),
        "AUTHSERVER_ISSUER": settings.issuer,
    }

    def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        return CliRunner().invoke(
            main, list(args), input=input, env={**base, **(env or {})}, catch_exceptions=False
        )

    return run


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., str]:
    """Write a document as YAML (or JSON) to a file; its path."""
    counter = iter(range(1000))

    def to_file(document: Any, *, as_json: bool = False) -> str:
        path = tmp_path / f"registry-{next(counter)}.{'json' if as_json else 'yaml'}"
        path.write_text(json.dumps(document) if as_json else yaml.safe_dump(document))
        return str(path)

    return to_file


def registry_file(**extra: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "clients": [
            {"name": "billing", "scope": "api invoices:write",
             "audiences": ["https://billing.internal"], "token_ttl": 600},
            {"name": "batch", "scope": "api", "max_tokens_per_hour": 100},
        ],
        "trusts": [
            {"client": "billing", "issuer": K8S, "subject": "system:serviceaccount:billing:*",
             "audience": "authserver", "allow_reuse": True},
        ],
    }  # fmt: skip
    document.update(extra)
    return document


def applied(cli: Cli, path: str, *args: str, **kwargs: Any) -> dict[str, Any]:
    result = cli("apply", path, "--json", *args, **kwargs)
    assert result.exit_code == 0, result.output
    plan: dict[str, Any] = json.loads(result.stdout)
    return plan


def actions(plan: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(c["action"], c["kind"], c.get("name") or c["client"]) for c in plan["changes"]]


def clients_by_name(cli: Cli) -> dict[str, dict[str, Any]]:
    listed = json.loads(cli("clients", "list", "--json").stdout)
    return {client["name"]: client for client in listed}


def trusts_listed(cli: Cli) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = json.loads(cli("trust", "list", "--json").stdout)
    return listed


def created_id(cli: Cli, name: str) -> str:
    """``clients create`` of a client named ``name``; its id."""
    result = cli("clients", "create", "--name", name, "--scope", "api", "--json")
    client_id: str = json.loads(result.stdout)["client_id"]
    return client_id


def token_response(app: Flask, client_id: str, secret: str) -> Any:
    return app.test_client().post(
        "/oauth2/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )


def problems_of(result: Result) -> list[str]:
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    return result.stderr.strip().splitlines()


# --- applying ---


def test_apply_creates_then_a_second_run_changes_nothing(cli: Cli, write: Any) -> None:
    path = write(registry_file())

    first = applied(cli, path)
    second = applied(cli, path)

    assert actions(first) == [
        ("create", "client", "billing"), ("create", "client", "batch"),
        ("create", "trust", "billing"),
    ]  # fmt: skip
    assert first["summary"] == {
        "create": 3, "update": 0, "delete": 0, "unchanged": 0, "not_in_file": 0,
    }  # fmt: skip
    assert first["dry_run"] is False
    assert [c["action"] for c in second["changes"]] == ["unchanged"] * 3
    clients = clients_by_name(cli)
    assert clients["billing"]["scope"] == "api invoices:write"
    assert clients["billing"]["audiences"] == ["https://billing.internal"]
    assert clients["billing"]["token_ttl"] == 600
    assert clients["batch"]["max_tokens_per_hour"] == 100
    (trust,) = trusts_listed(cli)
    assert trust["client_id"] == clients["billing"]["client_id"]
    assert (trust["allow_reuse"], trust["max_lifetime"]) == (True, 3600)
    assert [c["client_id"] for c in second["changes"]] == [
        clients["billing"]["client_id"], clients["batch"]["client_id"],
        clients["billing"]["client_id"],
    ]  # fmt: skip
    assert second["changes"][2]["trust_id"] == trust["trust_id"]


@SQLITE_ONLY
def test_the_plan_for_people_is_a_line_per_object_and_a_summary(cli: Cli, write: Any) -> None:
    path = write(registry_file())
    cli("apply", path)
    changed = registry_file()
    changed["clients"][0]["scope"] = "api"
    changed["clients"][0]["audiences"] = []

    result = cli("apply", write(changed))

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "update client billing (scope, audiences)",
        "unchanged client batch",
        f"unchanged trust {K8S} system:serviceaccount:billing:* authserver -> billing",
        "applied: 0 created, 1 updated, 0 deleted, 2 unchanged",
    ]


@SQLITE_ONLY
def test_dry_run_prints_the_plan_and_changes_nothing(cli: Cli, write: Any) -> None:
    plan = applied(cli, write(registry_file()), "--dry-run")
    human = cli("apply", write(registry_file()), "--dry-run")

    assert plan["dry_run"] is True
    assert [c["action"] for c in plan["changes"]] == ["create"] * 3
    assert all(c["client_id"] is None and "client_secret" not in c for c in plan["changes"])
    assert human.stdout.splitlines()[-1] == (
        "dry run, nothing changed: 3 to create, 0 to update, 0 to delete, 0 unchanged"
    )
    assert clients_by_name(cli) == {}
    assert trusts_listed(cli) == []


@SQLITE_ONLY
def test_updates_set_each_field_to_the_file_s_value_and_omitted_ones_to_the_default(
    cli: Cli, write: Any
) -> None:
    applied(cli, write(registry_file()))
    changed = registry_file()
    changed["clients"][0] = {"name": "billing", "scope": "api", "enabled": False}
    changed["clients"][1]["max_tokens_per_hour"] = None
    changed["trusts"][0].update(allow_reuse=False, max_lifetime=600)

    plan = applied(cli, write(changed))

    by_kind = {(c["kind"], c.get("name") or c["client"]): c for c in plan["changes"]}
    billing_fields = ["scope", "audiences", "token_ttl", "enabled"]
    assert by_kind[("client", "billing")]["fields"] == billing_fields
    assert by_kind[("client", "batch")]["fields"] == ["max_tokens_per_hour"]
    assert by_kind[("trust", "billing")]["fields"] == ["allow_reuse", "max_lifetime"]
    clients = clients_by_name(cli)
    assert clients["billing"]["scope"] == "api"
    assert clients["billing"]["audiences"] == []
    assert clients["billing"]["token_ttl"] is None
    assert clients["billing"]["enabled"] is False
    assert clients["batch"]["max_tokens_per_hour"] is None
    (trust,) = trusts_listed(cli)
    assert (trust["allow_reuse"], trust["max_lifetime"]) == (False, 600)
    assert [c["action"] for c in applied(cli, write(changed))["changes"]] == ["unchanged"] * 3


def test_without_prune_others_are_kept_and_with_it_they_are_deleted(cli: Cli, write: Any) -> None:
    other = created_id(cli, "legacy")
    cli(
        "trust", "add", "--client", other, "--issuer", K8S,
        "--subject", "legacy", "--audience", "authserver",
    )  # fmt: skip
    path = write(registry_file())

    kept = applied(cli, path)
    pruned = applied(cli, path, "--prune")
    again = applied(cli, path, "--prune")

    assert kept["summary"]["not_in_file"] == 2
    assert "legacy" not in [c.get("name") for c in kept["changes"]]
    assert [(c["action"], c["kind"]) for c in pruned["changes"]][-2:] == [
        ("delete", "client"), ("delete", "trust"),
    ]  # fmt: skip
    assert pruned["changes"][-2]["client_id"] == other
    assert pruned["changes"][-1]["subject"] == "legacy"
    assert set(clients_by_name(cli)) == {"billing", "batch"}
    assert [t["subject"] for t in trusts_listed(cli)] == ["system:serviceaccount:billing:*"]
    assert [c["action"] for c in again["changes"]] == ["unchanged"] * 3


@SQLITE_ONLY
def test_prune_replaces_another_client_s_trust_that_accepts_the_same_tokens(
    cli: Cli, write: Any
) -> None:
    applied(cli, write(registry_file()))
    moved = registry_file()
    moved["trusts"][0]["client"] = "batch"

    refused = cli("apply", write(moved))
    plan = applied(cli, write(moved), "--prune")

    (line,) = problems_of(refused)
    assert line.startswith("Error: trusts[0]: trust trs_")
    assert "of client 'billing' already accepts this issuer, subject and audience" in line
    assert [(c["action"], c["kind"], c.get("client")) for c in plan["changes"]][-2:] == [
        ("create", "trust", "batch"), ("delete", "trust", "billing"),
    ]  # fmt: skip
    (trust,) = trusts_listed(cli)
    assert trust["client_id"] == clients_by_name(cli)["batch"]["client_id"]


def _refuse_clients_named_boom(app: Flask) -> None:
    """A trigger: the database, and only it, refuses a client named ``boom``."""
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            statements = [
                "CREATE TRIGGER refuse_boom BEFORE INSERT ON clients WHEN NEW.name = 'boom' "
                "BEGIN SELECT RAISE(ABORT, 'boom refused'); END"
            ]
        else:
            statements = [
                "CREATE FUNCTION refuse_boom() RETURNS trigger AS $$ BEGIN "
                "IF NEW.name = 'boom' THEN RAISE EXCEPTION 'boom refused'; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql",
                "CREATE TRIGGER refuse_boom BEFORE INSERT ON clients FOR EACH ROW "
                "EXECUTE FUNCTION refuse_boom()",
            ]
        for statement in statements:
            db.session.execute(text(statement))
        db.session.commit()
        db.engine.dispose()


def test_a_failure_half_way_changes_nothing(cli: Cli, write: Any, app: Flask) -> None:
    applied(cli, write(registry_file()))
    cli("clients", "create", "--name", "legacy", "--scope", "api")
    before = (clients_by_name(cli), trusts_listed(cli))
    _refuse_clients_named_boom(app)
    changed = registry_file()
    changed["clients"][0]["scope"] = "api"  # an update
    changed["clients"].append({"name": "new", "scope": "api"})  # a create
    changed["trusts"] = []  # a trust deleted, and the client "legacy" (pruned)
    changed["clients"].append({"name": "boom", "scope": "api"})  # the last create fails

    result = cli("apply", write(changed), "--prune", "--json")

    assert result.exit_code == 1
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: database error (")
    assert "boom refused" in line
    assert (clients_by_name(cli), trusts_listed(cli)) == before


def test_an_apply_waits_for_one_in_progress_and_plans_against_its_result(
    cli: Cli, write: Any, app: Flask
) -> None:
    outcome: list[Result] = []
    with app.app_context():
        session = db.session()
        apply.lock(session)  # as another apply does, and then creates "billing"
        registry.create_client(session, name="billing", scope="api")
        waiting = threading.Thread(
            target=lambda: outcome.append(
                cli("apply", write({"clients": [VALID_CLIENT]}), "--json")
            )
        )
        waiting.start()
        waiting.join(timeout=1.0)
        assert waiting.is_alive(), "apply did not wait for the one in progress"
        session.commit()
        db.session.remove()
    waiting.join(timeout=30)

    (result,) = outcome
    assert [c["action"] for c in json.loads(result.stdout)["changes"]] == ["unchanged"]
    assert list(clients_by_name(cli)) == ["billing"]


# --- secrets ---


@SQLITE_ONLY
def test_a_new_secret_client_s_secret_is_printed_once_and_works(
    cli: Cli, write: Any, app: Flask
) -> None:
    path = write(registry_file())

    plan = applied(cli, path)
    again = applied(cli, path)

    created = {c["name"]: c for c in plan["changes"] if c["kind"] == "client"}
    secret = created["billing"]["client_secret"]
    assert secret.startswith("ascs_")
    assert created["batch"]["client_secret"] != secret
    assert all("client_secret" not in c for c in again["changes"])
    response = token_response(app, created["billing"]["client_id"], secret)
    assert response.status_code == 200, response.get_data(as_text=True)


@SQLITE_ONLY
def test_the_human_plan_prints_new_secrets_after_the_plan(cli: Cli, write: Any) -> None:
    result = cli("apply", write({"clients": [{"name": "billing", "scope": "api"}]}))

    lines = result.stdout.splitlines()
    assert lines[:2] == [
        "create client billing",
        "applied: 1 created, 0 updated, 0 deleted, 0 unchanged",
    ]
    assert lines[2].startswith("client_secret billing: ascs_")
    assert "Store the secrets now: they are shown only this once." in result.stderr


@SQLITE_ONLY
def test_secret_env_becomes_the_secret_and_a_new_value_replaces_it(
    cli: Cli, write: Any, app: Flask
) -> None:
    path = write({"clients": [{"name": "legacy", "scope": "api", "secret_env": "LEGACY_SECRET"}]})

    plan = applied(cli, path, env={"LEGACY_SECRET": GOOD_SECRET})
    same = applied(cli, path, env={"LEGACY_SECRET": GOOD_SECRET})
    rotated = applied(cli, path, env={"LEGACY_SECRET": GOOD_SECRET + "-v2"})

    (change,) = plan["changes"]
    assert "client_secret" not in change
    assert [c["action"] for c in same["changes"]] == ["unchanged"]
    assert [(c["action"], c["fields"]) for c in rotated["changes"]] == [("update", ["secret"])]
    client_id = change["client_id"]
    assert token_response(app, client_id, GOOD_SECRET + "-v2").status_code == 200
    assert token_response(app, client_id, GOOD_SECRET).status_code == 401


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "clients[0].secret_env: the environment variable LEGACY_SECRET is not set"),
        (
            {"LEGACY_SECRET": "short"},
            "clients[0].secret_env: LEGACY_SECRET: the secret must be at least 16 characters",
        ),
    ],
)
def test_secret_env_unset_or_too_short_is_a_problem(
    cli: Cli, write: Any, env: dict[str, str], message: str
) -> None:
    path = write({"clients": [{"name": "legacy", "scope": "api", "secret_env": "LEGACY_SECRET"}]})

    (line,) = problems_of(cli("apply", path, env=env))

    assert line.startswith(f"Error: {message}")
    assert clients_by_name(cli) == {}


# --- invalid files ---

VALID_CLIENT = {"name": "billing", "scope": "api"}
VALID_TRUST = {"client": "billing", "issuer": K8S, "subject": "sa", "audience": "authserver"}


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("document", "location", "message"),
    [
        ({"clients": {"name": "x"}}, "clients", "is not of type 'array'"),
        ({"clients": [VALID_CLIENT], "extra": 1}, "extra", "unknown field"),
        ({"clients": ["billing"]}, "clients[0]", "is not of type 'object'"),
        ({"clients": [{"scope": "api"}]}, "clients[0].name", "required, missing"),
        ({"clients": [{"name": "x"}]}, "clients[0].scope", "required, missing"),
        ({"clients": [{**VALID_CLIENT, "colour": "red"}]}, "clients[0].colour", "unknown field"),
        ({"clients": [{**VALID_CLIENT, "scope": 7}]}, "clients[0].scope", "not of type 'string'"),
        ({"clients": [{**VALID_CLIENT, "token_ttl": -5}]}, "clients[0].token_ttl",
         "-5 is less than the minimum of 1"),
        ({"clients": [{**VALID_CLIENT, "token_ttl": 86401}]}, "clients[0].token_ttl",
         "greater than the maximum of 86400"),
        ({"clients": [{**VALID_CLIENT, "token_ttl": "600"}]}, "clients[0].token_ttl",
         "is not of type 'integer', 'null'"),
        ({"clients": [{**VALID_CLIENT, "enabled": "yes"}]}, "clients[0].enabled",
         "is not of type 'boolean'"),
        ({"clients": [{**VALID_CLIENT, "max_tokens_per_hour": 0}]},
         "clients[0].max_tokens_per_hour", "less than the minimum of 1"),
        ({"clients": [{**VALID_CLIENT, "token_endpoint_auth_method": "magic"}]},
         "clients[0].token_endpoint_auth_method", "is not one of"),
        ({"clients": [{**VALID_CLIENT, "audiences": "https://a.example"}]},
         "clients[0].audiences", "is not of type 'array'"),
        ({"clients": [{**VALID_CLIENT, "audiences": [1]}]}, "clients[0].audiences[0]",
         "is not of type 'string'"),
        ({"clients": [{**VALID_CLIENT, "secret_env": "NOT-A-NAME"}]}, "clients[0].secret_env",
         "does not match"),
        ({"clients": [{**VALID_CLIENT, "name": ""}]}, "clients[0].name", "should be non-empty"),
        ({"clients": [VALID_CLIENT], "trusts": [{**VALID_TRUST, "issuer": None}]},
         "trusts[0].issuer", "is not of type 'string'"),
        ({"clients": [VALID_CLIENT], "trusts": [{k: v for k, v in VALID_TRUST.items()
                                                if k != "audience"}]},
         "trusts[0].audience", "required, missing"),
        ({"clients": [VALID_CLIENT], "trusts": [{**VALID_TRUST, "max_lifetime": 0}]},
         "trusts[0].max_lifetime", "less than the minimum of 1"),
        ({"clients": [VALID_CLIENT], "trusts": [{**VALID_TRUST, "allow_reuse": 1}]},
         "trusts[0].allow_reuse", "is not of type 'boolean'"),
    ],
)  # fmt: skip
def test_the_schema_refuses_each_class_of_bad_input_with_its_location(
    cli: Cli, write: Any, document: Any, location: str, message: str
) -> None:
    (line,) = problems_of(cli("apply", write(document, as_json=True)))

    assert line.startswith(f"Error: {location}: ")
    assert message in line
    assert clients_by_name(cli) == {}


@SQLITE_ONLY
def test_every_problem_of_a_file_is_reported_at_once_and_nothing_is_changed(
    cli: Cli, write: Any
) -> None:
    document = {
        "clients": [
            {"name": "billing", "scope": 'api a"b', "audiences": ["javascript:alert(1)"],
             "token_ttl": -5, "colour": "red"},
            {"name": "fine", "scope": "api"},
            {"name": "billing ", "scope": "api"},
        ],
        "trusts": [{"client": "ghost", "issuer": "http://evil.example", "subject": " x",
                    "audience": "a", "max_lifetime": 0}],
    }  # fmt: skip

    lines = problems_of(cli("apply", write(document)))

    assert [line.split(":")[1].strip() for line in lines] == [
        "clients[0].audiences", "clients[0].colour", "clients[0].scope", "clients[0].token_ttl",
        "clients[2].name", "trusts[0].client", "trusts[0].issuer", "trusts[0].max_lifetime",
        "trusts[0].subject",
    ]  # fmt: skip
    assert clients_by_name(cli) == {}


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("clients", "trusts", "location", "message"),
    [
        ([{"name": "a", "scope": "api a\"b"}], [], "clients[0].scope",
         "has characters RFC 6749 section 3.3 forbids"),
        ([{"name": "a", "scope": "api", "audiences": ["ftp://x.example"]}], [],
         "clients[0].audiences", "must be an absolute https, http or urn URI"),
        ([{"name": "a\nb", "scope": "api"}], [], "clients[0].name", "printable characters"),
        ([{"name": "a", "scope": "api"}, {"name": "a", "scope": "x"}], [], "clients[1].name",
         "'a' is also the name of clients[0]"),
        ([{"name": "a", "scope": "api", "jwks_uri": "https://keys.example/jwks"}], [],
         "clients[0].jwks_uri", "only a private_key_jwt client has keys"),
        ([{"name": "a", "scope": "api", "token_endpoint_auth_method": "private_key_jwt"}], [],
         "clients[0].jwks", "needs exactly one of jwks or jwks_uri"),
        ([{"name": "a", "scope": "api", "token_endpoint_auth_method": "private_key_jwt",
           "jwks_uri": "https://keys.example/jwks", "jwks": {"keys": [{"kty": "RSA"}]}}], [],
         "clients[0].jwks", "needs exactly one of jwks or jwks_uri"),
        ([{"name": "a", "scope": "api", "token_endpoint_auth_method": "private_key_jwt",
           "jwks_uri": "http://keys.example/jwks"}], [], "clients[0].jwks_uri", "jwks_uri"),
        ([{"name": "a", "scope": "api", "token_endpoint_auth_method": "private_key_jwt",
           "jwks_uri": "https://keys.example/jwks", "secret_env": "X"}], [],
         "clients[0].secret_env", "a private_key_jwt client has keys, not a secret"),
        ([{"name": "a", "scope": "api"}], [{**VALID_TRUST, "client": "ghost"}],
         "trusts[0].client", "no client named 'ghost' in the file"),
        ([{"name": "billing", "scope": "api"}], [VALID_TRUST, {**VALID_TRUST}], "trusts[1]",
         "trusts[0] already accepts this issuer, subject and audience"),
        ([{"name": "billing", "scope": "api"}], [{**VALID_TRUST, "issuer": "http://k8s.example"}],
         "trusts[0].issuer", "use https"),
        ([{"name": "billing", "scope": "api"}],
         [{**VALID_TRUST, "jwks_uri": "ftp://keys.example/jwks"}], "trusts[0].jwks_uri",
         "jwks_uri"),
    ],
)  # fmt: skip
def test_the_field_rules_refuse_with_the_location(
    cli: Cli, write: Any, clients: Any, trusts: Any, location: str, message: str
) -> None:
    (line,) = problems_of(cli("apply", write({"clients": clients, "trusts": trusts})))

    assert line.startswith(f"Error: {location}: ")
    assert message in line


@SQLITE_ONLY
def test_a_private_key_in_jwks_is_refused_with_its_location(cli: Cli, write: Any) -> None:
    private = RSAKey.generate_key(2048).as_dict(private=True)
    document = {
        "clients": [{"name": "a", "scope": "api", "token_endpoint_auth_method": "private_key_jwt",
                     "jwks": {"keys": [private]}}],
    }  # fmt: skip

    (line,) = problems_of(cli("apply", write(document)))

    assert line.startswith("Error: clients[0].jwks: jwks: key 1 of the JWK Set has private member")


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "clients:\n  - name: a\n    name: b\n    scope: api\n",
            "line 3: key 'name' is given twice",
        ),
        ('{"clients": [], "clients": []}', "key 'clients' is given twice"),
        ('{"clients": [', "neither JSON nor YAML"),
        ("- a\n- b\n", "is not of type 'object'"),
        ("\n", "file: empty"),
        ("[" * 100_000, "file: nested too deeply"),
        ("clients: " + "[" * 5_000 + "]" * 5_000, "file: nested too deeply"),
        ("clients:\n  - ? [name]\n    : a\n", "line 2: neither JSON nor YAML: found unhashable"),
    ],
    ids=["twice-yaml", "twice-json", "broken", "list", "empty", "deep-json", "deep-yaml",
         "unhashable-key"],
)  # fmt: skip
def test_a_file_that_is_no_registry_is_one_line(
    cli: Cli, tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "registry.yaml"
    path.write_text(content)

    (line,) = problems_of(cli("apply", str(path)))

    assert message in line


@SQLITE_ONLY
def test_yaml_anchors_and_merge_keys_are_taken(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "registry.yaml"
    path.write_text(
        "clients:\n"
        "  - &defaults {name: billing, scope: api, token_ttl: 600}\n"
        "  - <<: *defaults\n"
        "    name: batch\n"
    )

    plan = applied(cli, str(path))

    assert actions(plan) == [("create", "client", "billing"), ("create", "client", "batch")]
    assert clients_by_name(cli)["batch"]["token_ttl"] == 600


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("client", "location"),
    [
        ({"token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": 5}},
         "clients[0].jwks.keys"),
        ({"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": 5}, "clients[0].jwks_uri"),
        ({"token_endpoint_auth_method": "private-key-jwt", "jwks_uri": "https://keys.example/k",
          "secret_env": "UNSET_VARIABLE"}, "clients[0].token_endpoint_auth_method"),
    ],
    ids=["jwks", "jwks_uri", "method"],
)  # fmt: skip
def test_a_credential_field_the_schema_refuses_is_the_one_problem_of_its_entry(
    cli: Cli, write: Any, client: dict[str, Any], location: str
) -> None:
    (line,) = problems_of(cli("apply", write({"clients": [{**VALID_CLIENT, **client}]})))

    assert line.startswith(f"Error: {location}: ")


@SQLITE_ONLY
def test_a_problem_quoting_a_huge_value_is_one_short_line(cli: Cli, write: Any) -> None:
    huge = {**VALID_CLIENT, "name": "n" * 100_000}

    (line,) = problems_of(cli("apply", write({"clients": [huge]})))

    assert line.startswith("Error: clients[0].name: 'nnn")
    assert len(line) < 500


@SQLITE_ONLY
def test_the_size_limit_counts_bytes_not_characters(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "registry.yaml"
    path.write_text("# " + "é" * (MAX_FILE_BYTES // 2 + 1), encoding="utf-8")

    (line,) = problems_of(cli("apply", str(path)))

    assert line == f"Error: the file is over {MAX_FILE_BYTES} bytes"


@SQLITE_ONLY
def test_a_file_that_is_not_utf_8_is_one_line(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "registry.yaml"
    path.write_bytes(b"clients: [\xff]")

    (line,) = problems_of(cli("apply", str(path)))

    assert line.startswith("Error: the file is not UTF-8 text (invalid start byte")


@SQLITE_ONLY
def test_two_stored_clients_with_a_name_the_file_uses_is_a_problem_naming_both(
    cli: Cli, write: Any
) -> None:
    ids = [created_id(cli, "billing") for _ in range(2)]

    (line,) = problems_of(cli("apply", write({"clients": [VALID_CLIENT]})))

    assert line.startswith("Error: clients[0].name: 2 clients in the database are named 'billing'")
    assert all(client_id in line for client_id in ids)


@SQLITE_ONLY
def test_changing_an_existing_client_s_auth_method_is_a_problem(cli: Cli, write: Any) -> None:
    applied(cli, write({"clients": [VALID_CLIENT]}))
    keyed = {**VALID_CLIENT, "token_endpoint_auth_method": "private_key_jwt",
             "jwks_uri": "https://keys.example/jwks"}  # fmt: skip

    (line,) = problems_of(cli("apply", write({"clients": [keyed]})))

    assert line.startswith("Error: clients[0].token_endpoint_auth_method: client cli_")
    assert "cannot change" in line


# --- key clients, export, formats ---


@SQLITE_ONLY
def test_a_key_client_s_keys_are_created_and_replaced(cli: Cli, write: Any) -> None:
    jwk = RSAKey.generate_key(2048, parameters={"kid": "k1"}).as_dict(private=False)
    keyed = {**VALID_CLIENT, "token_endpoint_auth_method": "private_key_jwt",
             "jwks": {"keys": [jwk]}}  # fmt: skip
    plan = applied(cli, write({"clients": [keyed]}))
    by_uri = {**VALID_CLIENT, "token_endpoint_auth_method": "private_key_jwt",
              "jwks_uri": "https://keys.example/jwks"}  # fmt: skip

    replaced = applied(cli, write({"clients": [by_uri]}))

    assert "client_secret" not in plan["changes"][0]
    assert replaced["changes"][0]["fields"] == ["jwks", "jwks_uri"]
    shown = clients_by_name(cli)["billing"]
    assert (shown["jwks"], shown["jwks_uri"]) == (None, "https://keys.example/jwks")


def test_apply_of_an_export_changes_nothing(cli: Cli, write: Any, tmp_path: Path) -> None:
    jwk = RSAKey.generate_key(2048, parameters={"kid": "k1"}).as_dict(private=False)
    document = registry_file()
    document["clients"] += [
        {"name": "keyed", "scope": "api", "token_endpoint_auth_method": "private_key_jwt",
         "jwks": {"keys": [jwk]}, "enabled": False},
        {"name": "remote", "scope": "api", "token_endpoint_auth_method": "private_key_jwt",
         "jwks_uri": "https://keys.example/jwks"},
    ]  # fmt: skip
    applied(cli, write(document))

    exported_yaml = cli("export")
    exported_json = cli("export", "--json")

    assert exported_yaml.exit_code == 0, exported_yaml.output
    assert yaml.safe_load(exported_yaml.stdout) == json.loads(exported_json.stdout)
    for absent in ("cli_", "trs_", "ascs_", "created_at"):
        assert absent not in exported_yaml.stdout
    (tmp_path / "exported.yaml").write_text(exported_yaml.stdout)
    for plan in (
        applied(cli, str(tmp_path / "exported.yaml"), "--prune"),
        applied(cli, "-", "--prune", input=exported_json.stdout),
    ):
        assert [c["action"] for c in plan["changes"]] == ["unchanged"] * 5


@SQLITE_ONLY
def test_export_of_an_empty_registry_applies_as_empty(cli: Cli) -> None:
    exported = cli("export", "--json")

    assert json.loads(exported.stdout) == {"clients": [], "trusts": []}
    assert applied(cli, "-", input=exported.stdout)["changes"] == []


@SQLITE_ONLY
def test_export_warns_of_clients_sharing_a_name(cli: Cli) -> None:
    for _ in range(2):
        cli("clients", "create", "--name", "twin", "--scope", "api")

    exported = cli("export")

    assert exported.exit_code == 0
    (warning,) = exported.stderr.splitlines()
    assert warning.startswith("Warning: clients cli_")
    assert "share the name 'twin'" in warning


@SQLITE_ONLY
def test_json_files_and_standard_input_are_taken_too(cli: Cli, write: Any) -> None:
    from_json = applied(cli, write(registry_file(), as_json=True), "--dry-run")
    from_stdin = applied(cli, "-", "--dry-run", input=yaml.safe_dump(registry_file()))

    assert actions(from_json) == actions(from_stdin)
    assert len(from_json["changes"]) == 3


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_console_script_applies_exports_and_audits(
    settings: Settings, app: Flask, tmp_path: Path
) -> None:
    env = base_env(settings.database_url, settings.keys_dir, LEGACY_SECRET=GOOD_SECRET)
    path = tmp_path / "registry.yaml"
    path.write_text(
        yaml.safe_dump(
            {"clients": [{"name": "legacy", "scope": "api", "secret_env": "LEGACY_SECRET"}]}
        )
    )

    result = run_authserver(env, "apply", str(path))
    exported = run_authserver(env, "export")

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "create client legacy"
    (audit_line,) = [json.loads(line) for line in result.stderr.splitlines() if "event" in line]
    assert (audit_line["event"], audit_line["source"]) == ("client.created", "apply")
    assert yaml.safe_load(exported.stdout)["clients"][0]["name"] == "legacy"
