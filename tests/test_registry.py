"""The client registry on SQLite and PostgreSQL, down to the bytes the database keeps."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from authserver.errors import ClientNotFound, InvalidClientData
from authserver.extensions import db
from authserver.models import Client, ClientSecret
from authserver.services import registrations, registry
from authserver.services.formatting import client_view
from tests.support.cli import CLIENT_FIELDS

CHOSEN_SECRET = "Migrated-Secret-from-old-IdP-7f3c9a1e"
UNKNOWN_ID = "cli_doesnotexist0000000"


def in_app(app: Flask, work: Callable[[Any], Any]) -> Any:
    """Run ``work(session)`` in one transaction and commit it."""
    with app.app_context():
        session = db.session()
        result = work(session)
        session.commit()
        return result


def create(app: Flask, **params: Any) -> tuple[str, str]:
    values: dict[str, Any] = {"name": "billing", "scope": "api"}
    values.update(params)

    def work(session: Any) -> tuple[str, str]:
        created = registry.create_client(session, **values)
        return created.client.client_id, created.client_secret

    result: tuple[str, str] = in_app(app, work)
    return result


def view(app: Flask, client_id: str) -> dict[str, Any]:
    result: dict[str, Any] = in_app(app, lambda s: client_view(registry.get_client(s, client_id)))
    return result


def authenticate(app: Flask, client_id: str, secret: str) -> str | None:
    def work(session: Any) -> str | None:
        client = registrations.authenticate(session, client_id, secret, datetime.now(UTC))
        return client.client_id if client else None

    result: str | None = in_app(app, work)
    return result


def secret_hashes(app: Flask, client_id: str) -> list[str]:
    result: list[str] = in_app(
        app,
        lambda s: list(
            s.scalars(select(ClientSecret.secret_hash).where(ClientSecret.client_id == client_id))
        ),
    )
    return result


# --- create / read --------------------------------------------------------------------------


def test_create_returns_a_generated_secret_and_stores_the_client(app: Flask) -> None:
    client_id, secret = create(
        app,
        name="  billing  ",
        scope="api read api",
        audiences=["https://api.example.test", "urn:example:reports"],
        token_ttl=600,
    )
    assert client_id.startswith("cli_")
    assert secret.startswith("ascs_")
    shown = view(app, client_id)
    assert shown["client_id"] == client_id
    assert shown["name"] == "billing"
    assert shown["scope"] == "api read"
    assert shown["audiences"] == ["https://api.example.test", "urn:example:reports"]
    assert shown["token_ttl"] == 600
    assert shown["enabled"] is True
    assert shown["created_at"].endswith("Z")
    assert shown["last_used_at"] is None


def test_client_view_never_contains_a_secret_or_hash(app: Flask) -> None:
    client_id, secret = create(app)
    shown = view(app, client_id)
    assert set(shown) == CLIENT_FIELDS
    rendered = repr(shown)
    assert secret not in rendered
    for stored in secret_hashes(app, client_id):
        assert stored not in rendered


def test_list_returns_every_client_in_creation_order(app: Flask) -> None:
    ids = [create(app, name=f"service {n}")[0] for n in range(3)]
    listed = in_app(app, lambda s: [c.client_id for c in registry.list_clients(s)])
    assert listed == ids


def test_list_is_empty_on_a_fresh_database(app: Flask) -> None:
    assert in_app(app, registry.list_clients) == []


def test_get_unknown_client_raises_client_not_found(app: Flask) -> None:
    with pytest.raises(ClientNotFound):
        in_app(app, lambda s: registry.get_client(s, UNKNOWN_ID))


# --- update / enable / delete ---------------------------------------------------------------


def test_update_changes_the_given_fields_and_replaces_audiences(app: Flask) -> None:
    client_id, _ = create(
        app, audiences=["https://old-a.example.test", "https://old-b.example.test"]
    )
    in_app(
        app,
        lambda s: registry.update_client(
            s,
            client_id,
            name="renamed",
            scope="write",
            audiences=["https://new.example.test"],
            token_ttl=120,
        ),
    )
    shown = view(app, client_id)
    assert shown["name"] == "renamed"
    assert shown["scope"] == "write"
    assert shown["audiences"] == ["https://new.example.test"]
    assert shown["token_ttl"] == 120


def test_update_leaves_fields_that_are_not_given(app: Flask) -> None:
    client_id, _ = create(app, scope="api read", audiences=["https://a.example.test"])
    in_app(app, lambda s: registry.update_client(s, client_id, name="only the name"))
    shown = view(app, client_id)
    assert shown["name"] == "only the name"
    assert shown["scope"] == "api read"
    assert shown["audiences"] == ["https://a.example.test"]


def test_update_with_empty_audiences_clears_them(app: Flask) -> None:
    client_id, _ = create(app, audiences=["https://a.example.test"])
    in_app(app, lambda s: registry.update_client(s, client_id, audiences=[]))
    assert view(app, client_id)["audiences"] == []


def test_set_enabled_disables_and_re_enables(app: Flask) -> None:
    client_id, _ = create(app)
    in_app(app, lambda s: registry.set_enabled(s, client_id, False))
    assert view(app, client_id)["enabled"] is False
    in_app(app, lambda s: registry.set_enabled(s, client_id, True))
    assert view(app, client_id)["enabled"] is True


def test_delete_removes_the_client_and_its_secret_rows(app: Flask) -> None:
    client_id, _ = create(app)
    other_id, _ = create(app, name="other")
    assert len(secret_hashes(app, client_id)) == 1

    in_app(app, lambda s: registry.delete_client(s, client_id))

    with pytest.raises(ClientNotFound):
        view(app, client_id)
    count = in_app(
        app,
        lambda s: s.execute(
            text("SELECT count(*) FROM client_secrets WHERE client_id = :id"), {"id": client_id}
        ).scalar_one(),
    )
    assert count == 0
    assert len(secret_hashes(app, other_id)) == 1
    assert in_app(app, lambda s: [c.client_id for c in registry.list_clients(s)]) == [other_id]


@pytest.mark.parametrize(
    "operation",
    [
        lambda s: registry.update_client(s, UNKNOWN_ID, name="x"),
        lambda s: registry.set_enabled(s, UNKNOWN_ID, False),
        lambda s: registry.delete_client(s, UNKNOWN_ID),
    ],
    ids=["update", "set_enabled", "delete"],
)
def test_changing_an_unknown_client_raises_client_not_found(
    app: Flask, operation: Callable[[Any], Any]
) -> None:
    with pytest.raises(ClientNotFound):
        in_app(app, operation)


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"scope": ""},
        {"scope": "   "},
        {"scope": 'api "quoted"'},
        {"scope": "back\\slash"},
        {"scope": "caf\u00e9"},
        {"scope": "tab\x7fdel"},
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 201},
        {"audiences": ["api.example.test"]},
        {"audiences": ["/relative/path"]},
        {"audiences": ["https://api.example.test#fragment"]},
        {"audiences": ["https://api.example.test/a b"]},
        {"chosen_secret": ""},
        {"chosen_secret": "tab\tinside"},
        {"chosen_secret": "non-ascii-\u00e9"},
    ],
    ids=repr,
)
def test_create_rejects_invalid_data_and_stores_nothing(app: Flask, params: dict[str, Any]) -> None:
    with pytest.raises(InvalidClientData):
        create(app, **params)
    with app.app_context():
        db.session.rollback()
    assert in_app(app, lambda s: s.scalar(select(func.count()).select_from(Client))) == 0
    assert in_app(app, lambda s: s.scalar(select(func.count()).select_from(ClientSecret))) == 0


@pytest.mark.parametrize(
    "params",
    [
        {"scope": ""},
        {"scope": "bad\\scope"},
        {"name": " "},
        {"audiences": ["not a uri"]},
        {"audiences": ["relative"]},
    ],
    ids=repr,
)
def test_update_rejects_invalid_data_and_keeps_the_client(
    app: Flask, params: dict[str, Any]
) -> None:
    client_id, _ = create(app, audiences=["https://a.example.test"])
    before = view(app, client_id)
    with pytest.raises(InvalidClientData):
        in_app(app, lambda s: registry.update_client(s, client_id, **params))
    with app.app_context():
        db.session.rollback()
    assert view(app, client_id) == before


# --- authenticate ---------------------------------------------------------------------------


def test_authenticate_accepts_the_right_generated_secret(app: Flask) -> None:
    client_id, secret = create(app)
    assert authenticate(app, client_id, secret) == client_id


def test_authenticate_accepts_the_right_chosen_secret(app: Flask) -> None:
    client_id, secret = create(app, chosen_secret=CHOSEN_SECRET)
    assert secret == CHOSEN_SECRET
    assert authenticate(app, client_id, CHOSEN_SECRET) == client_id
    assert authenticate(app, client_id, CHOSEN_SECRET + "x") is None


def test_authenticate_rejects_a_wrong_secret(app: Flask) -> None:
    client_id, secret = create(app)
    other_id, other_secret = create(app, name="other")
    assert authenticate(app, client_id, secret[:-1]) is None
    assert authenticate(app, client_id, secret + "A") is None
    assert authenticate(app, client_id, other_secret) is None
    assert authenticate(app, client_id, "") is None
    assert authenticate(app, other_id, other_secret) == other_id


def test_authenticate_rejects_an_unknown_client_id(app: Flask) -> None:
    _, secret = create(app)
    assert authenticate(app, UNKNOWN_ID, secret) is None


def test_authenticate_rejects_a_disabled_client_even_with_the_right_secret(app: Flask) -> None:
    client_id, secret = create(app)
    in_app(app, lambda s: registry.set_enabled(s, client_id, False))
    assert authenticate(app, client_id, secret) is None
    in_app(app, lambda s: registry.set_enabled(s, client_id, True))
    assert authenticate(app, client_id, secret) == client_id


def test_authenticate_rejects_a_deleted_client(app: Flask) -> None:
    client_id, secret = create(app)
    in_app(app, lambda s: registry.delete_client(s, client_id))
    assert authenticate(app, client_id, secret) is None


def test_authenticate_rejects_an_expired_secret(app: Flask) -> None:
    client_id, secret = create(app)

    def expire(session: Any) -> None:
        for row in session.scalars(select(ClientSecret).where(ClientSecret.client_id == client_id)):
            row.expires_at = datetime.now(UTC) - timedelta(seconds=1)

    in_app(app, expire)
    assert authenticate(app, client_id, secret) is None


def test_authenticate_accepts_a_secret_until_it_expires(app: Flask) -> None:
    client_id, secret = create(app)

    def expire_later(session: Any) -> None:
        for row in session.scalars(select(ClientSecret).where(ClientSecret.client_id == client_id)):
            row.expires_at = datetime.now(UTC) + timedelta(minutes=5)

    in_app(app, expire_later)
    assert authenticate(app, client_id, secret) == client_id


# --- secrets are never stored in clear ------------------------------------------------------


def database_contents(app: Flask, database_url: str) -> bytes:
    """Everything the database holds: the raw SQLite files, or every PostgreSQL row as JSON."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        with app.app_context():
            db.engine.dispose()  # close connections so nothing is held back in memory
        main = Path(str(url.database))
        files = [main, *(Path(f"{main}{suffix}") for suffix in ("-wal", "-journal", "-shm"))]
        return b"".join(f.read_bytes() for f in files if f.exists())

    def dump(session: Any) -> bytes:
        tables = session.scalars(
            text(
                "SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) "
                "FROM information_schema.tables "
                "WHERE table_type = 'BASE TABLE' "
                "AND table_schema NOT IN ('pg_catalog', 'information_schema')"
            )
        ).all()
        assert "public.clients" in tables
        assert "public.client_secrets" in tables
        rows: list[str] = []
        for table in tables:
            rows.extend(session.scalars(text(f"SELECT row_to_json(t)::text FROM {table} t")))  # noqa: S608
        return "\n".join(rows).encode()

    result: bytes = in_app(app, dump)
    return result


def test_registry_never_stores_a_secret_in_clear(app: Flask, database_url: str) -> None:
    generated = [create(app, name=f"generated {n}") for n in range(3)]
    chosen_id, _ = create(app, name="migrated", chosen_secret=CHOSEN_SECRET)
    contents = database_contents(app, database_url)

    for client_id, secret in generated:
        body = secret.removeprefix("ascs_")
        assert client_id.encode() in contents  # proves we are looking at the right data
        assert secret.encode() not in contents
        assert body.encode() not in contents
        [stored] = secret_hashes(app, client_id)
        assert stored.startswith("$sha256$")
        assert stored.encode() in contents

    assert chosen_id.encode() in contents
    assert CHOSEN_SECRET.encode() not in contents
    [stored] = secret_hashes(app, chosen_id)
    assert stored.startswith("$argon2id$")
    assert stored.encode() in contents


def test_failed_and_successful_authentication_store_no_secret(
    app: Flask, database_url: str
) -> None:
    client_id, secret = create(app)
    wrong = secret[:-4] + "WXYZ"
    assert authenticate(app, client_id, secret) == client_id
    assert authenticate(app, client_id, wrong) is None
    contents = database_contents(app, database_url)
    for value in (secret, secret.removeprefix("ascs_"), wrong, wrong.removeprefix("ascs_")):
        assert value.encode() not in contents
