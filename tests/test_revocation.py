"""Token revocation (RFC 7009) at ``POST /oauth2/revoke`` over real HTTP, on SQLite and
PostgreSQL: the deny-list, its expiry with the token, and its purge by the maintenance thread."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
import requests
from flask import Flask
from sqlalchemy import select

from authserver.extensions import db
from authserver.maintenance import Maintenance
from authserver.models import RevokedToken
from tests.conftest import LiveServer, RegisteredClient
from tests.support.oauth import (
    SECRET_METHODS,
    CreateClient,
    introspect,
    issue_token,
    oauth_error,
    post_as,
    revoke,
)
from tests.support.waiting import wait_until


def assert_revoked_ok(response: requests.Response) -> None:
    """RFC 7009 §2.2: 200 whether or not anything was revoked; never cached."""
    assert response.status_code == 200, response.text
    assert response.headers.get("Cache-Control") == "no-store"


def is_active(
    http: requests.Session, live_server: LiveServer, caller: RegisteredClient, token: str
) -> bool:
    response = introspect(http, live_server, caller, token)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    if body["active"] is False:
        assert body == {"active": False}
    active: bool = body["active"]
    return active


def deny_list(app: Flask) -> list[RevokedToken]:
    with app.app_context():
        rows = list(db.session.scalars(select(RevokedToken).order_by(RevokedToken.jti)))
        db.session.expunge_all()
    return rows


def jti_of(token: str) -> str:
    jti: str = jwt.decode(token, options={"verify_signature": False})["jti"]
    return jti


@pytest.mark.parametrize("method", SECRET_METHODS)
def test_client_revokes_its_own_token_which_then_introspects_inactive(
    http: requests.Session, live_server: LiveServer, create_client: CreateClient, method: str
) -> None:
    client = create_client()
    token = issue_token(http, live_server, client)
    assert is_active(http, live_server, client, token)

    response = revoke(http, live_server, client, token, method)

    assert_revoked_ok(response)
    assert not is_active(http, live_server, client, token)


def test_revoking_twice_is_200_and_idempotent(
    http: requests.Session, live_server: LiveServer, create_client: CreateClient, app: Flask
) -> None:
    client = create_client()
    token = issue_token(http, live_server, client)

    assert_revoked_ok(revoke(http, live_server, client, token))
    assert_revoked_ok(revoke(http, live_server, client, token))

    assert [row.jti for row in deny_list(app)] == [jti_of(token)]
    assert not is_active(http, live_server, client, token)


def test_another_clients_revocation_is_200_and_leaves_the_token_active(
    http: requests.Session, live_server: LiveServer, create_client: CreateClient, app: Flask
) -> None:
    owner = create_client(name="owner")
    other = create_client(name="other")
    token = issue_token(http, live_server, owner)

    for method in SECRET_METHODS:
        assert_revoked_ok(revoke(http, live_server, other, token, method))

    assert is_active(http, live_server, owner, token)
    assert is_active(http, live_server, other, token)
    assert deny_list(app) == []


def test_revoking_a_garbage_token_is_200(
    http: requests.Session, live_server: LiveServer, create_client: CreateClient, app: Flask
) -> None:
    client = create_client()
    for garbage in ("garbage", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", "x" * 5000):
        assert_revoked_ok(revoke(http, live_server, client, garbage))
    assert deny_list(app) == []


def test_unknown_token_type_hint_is_ignored_and_the_token_is_revoked(
    http: requests.Session, live_server: LiveServer, create_client: CreateClient
) -> None:
    client = create_client()
    token = issue_token(http, live_server, client)

    response = revoke(http, live_server, client, token, extra={"token_type_hint": "nonsense"})

    assert_revoked_ok(response)
    assert not is_active(http, live_server, client, token)


def test_unauthenticated_revocation_is_401_and_revokes_nothing(
    http: requests.Session, live_server: LiveServer, create_client: CreateClient, app: Flask
) -> None:
    client = create_client()
    token = issue_token(http, live_server, client)
    impostor = RegisteredClient(client.client_id, client.client_secret[:-1], client.view)

    anonymous = revoke(http, live_server, None, token)
    oauth_error(anonymous, 401, "invalid_client")
    assert anonymous.headers.get("WWW-Authenticate") == 'Basic realm="authserver"'
    for method in SECRET_METHODS:
        oauth_error(revoke(http, live_server, impostor, token, method), 401, "invalid_client")
    # The client id from the token's own claims is no credential either.
    oauth_error(
        post_as(
            http,
            f"{live_server.url}/oauth2/revoke",
            None,
            {"token": token, "client_id": client.client_id},
        ),
        401,
        "invalid_client",
    )

    assert is_active(http, live_server, client, token)
    assert deny_list(app) == []


def test_deny_list_entry_is_kept_until_the_tokens_own_expiry(
    http: requests.Session, live_server: LiveServer, create_client: CreateClient, app: Flask
) -> None:
    client = create_client(token_ttl=600)
    token = issue_token(http, live_server, client)
    claims = jwt.decode(token, options={"verify_signature": False})

    assert_revoked_ok(revoke(http, live_server, client, token))

    (row,) = deny_list(app)
    assert row.jti == claims["jti"]
    assert row.client_id == client.client_id
    assert row.expires_at == datetime.fromtimestamp(claims["exp"], UTC)


def test_maintenance_purges_deny_list_entries_once_their_tokens_expired(
    http: requests.Session, live_server: LiveServer, create_client: CreateClient, app: Flask
) -> None:
    short_lived = create_client(name="short", token_ttl=2)
    long_lived = create_client(name="long", token_ttl=600)
    short_token = issue_token(http, live_server, short_lived)
    long_token = issue_token(http, live_server, long_lived)
    assert_revoked_ok(revoke(http, live_server, short_lived, short_token))
    assert_revoked_ok(revoke(http, live_server, long_lived, long_token))
    assert {row.jti for row in deny_list(app)} == {jti_of(short_token), jti_of(long_token)}

    Maintenance(app).tick()  # nothing has expired yet: nothing is purged
    assert {row.jti for row in deny_list(app)} == {jti_of(short_token), jti_of(long_token)}

    short_exp = jwt.decode(short_token, options={"verify_signature": False})["exp"]

    def purged_at() -> float | None:
        """When a round (of a fresh instance: its first round always does housekeeping)
        left only the long-lived token's entry."""
        Maintenance(app).tick()
        return time.time() if len(deny_list(app)) == 1 else None

    # The short token's entry goes once its exp has passed, not before.
    assert wait_until(purged_at, max(0.0, short_exp - time.time()) + 2, "the purge") >= short_exp
    assert [row.jti for row in deny_list(app)] == [jti_of(long_token)]
    assert not is_active(http, live_server, long_lived, long_token)
    assert not is_active(http, live_server, short_lived, short_token)


def test_maintenance_purges_past_entries_inserted_directly_and_keeps_current_ones(
    app: Flask,
) -> None:
    now = datetime.now(UTC)
    with app.app_context():
        for jti, expires_at in (
            ("past-1", now - timedelta(hours=1)),
            ("past-2", now - timedelta(seconds=1)),
            ("future", now + timedelta(minutes=5)),
        ):
            db.session.add(
                RevokedToken(jti=jti, client_id="cli_x", expires_at=expires_at, revoked_at=now)
            )
        db.session.commit()

    Maintenance(app).tick()

    assert [row.jti for row in deny_list(app)] == ["future"]


def test_tokens_issued_after_a_revocation_are_unaffected(
    http: requests.Session, live_server: LiveServer, create_client: CreateClient
) -> None:
    client = create_client()
    earlier = issue_token(http, live_server, client)
    assert_revoked_ok(revoke(http, live_server, client, earlier))

    later = issue_token(http, live_server, client)

    assert jti_of(later) != jti_of(earlier)
    assert is_active(http, live_server, client, later)
    assert not is_active(http, live_server, client, earlier)
