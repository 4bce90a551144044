"""Token revocation (RFC 7009) driven in memory: a client revokes only its own live tokens,
every request it is entitled to make is answered 200, and the deny-list holds each entry until
the token's own expiry."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import jwt
import pytest

from authserver.oauth.clients import CLIENT_SECRET_POST, SECRET_METHODS
from authserver.oauth.errors import REALM
from authserver.oauth.server import INTROSPECTION_ENDPOINT, REVOCATION_ENDPOINT, AuthorizationServer
from tests.support.clock import ManualClock
from tests.support.memory_backend import (
    MemoryBackend,
    MemoryClient,
    Revocation,
    header,
    issue,
    post_as,
)


def revoked_ok(
    server: AuthorizationServer,
    caller: MemoryClient,
    access_token: str,
    method: str = CLIENT_SECRET_POST,
    **extra: str,
) -> None:
    """RFC 7009 §2.2: 200 with an empty body whether or not anything was revoked; not cached."""
    status, body, headers = post_as(
        server, REVOCATION_ENDPOINT, caller, {"token": access_token, **extra}, method
    )
    assert (status, body) == (200, {})
    assert header(headers, "Cache-Control") == "no-store"


def is_active(server: AuthorizationServer, caller: MemoryClient, access_token: str) -> bool:
    status, body, _ = post_as(server, INTROSPECTION_ENDPOINT, caller, {"token": access_token})
    assert status == 200, body
    active: bool = body["active"]
    return active


def claims_of(access_token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(access_token, options={"verify_signature": False})
    return claims


@pytest.mark.parametrize("method", SECRET_METHODS)
def test_a_client_revokes_its_own_token_which_then_introspects_inactive(
    server: AuthorizationServer, backend: MemoryBackend, client: MemoryClient, method: str
) -> None:
    access_token = issue(server, client)
    assert is_active(server, client, access_token)

    revoked_ok(server, client, access_token, method)

    assert not is_active(server, client, access_token)
    claims = claims_of(access_token)
    assert backend.revocations == {
        claims["jti"]: Revocation(client.client_id, datetime.fromtimestamp(claims["exp"], UTC))
    }


def test_revoking_twice_is_200_both_times_and_changes_nothing_the_second_time(
    server: AuthorizationServer, backend: MemoryBackend, client: MemoryClient
) -> None:
    access_token = issue(server, client)
    revoked_ok(server, client, access_token)
    after_first = dict(backend.revocations)

    revoked_ok(server, client, access_token)

    assert backend.revocations == after_first
    assert [e.outcome for e in backend.events if e.event == "token.revocation"] == [
        "revoked",
        "already_revoked",
    ]
    assert not is_active(server, client, access_token)


@pytest.mark.parametrize("method", SECRET_METHODS)
def test_another_clients_revocation_is_200_and_leaves_the_token_active(
    server: AuthorizationServer,
    backend: MemoryBackend,
    client: MemoryClient,
    other_client: MemoryClient,
    method: str,
) -> None:
    access_token = issue(server, client)

    revoked_ok(server, other_client, access_token, method)

    assert backend.revocations == {}
    assert is_active(server, client, access_token)
    (event,) = [e for e in backend.events if e.event == "token.revocation"]
    assert (event.outcome, event.client_id) == ("ignored", other_client.client_id)


def test_revoking_an_expired_token_is_200_and_adds_nothing_to_the_deny_list(
    server: AuthorizationServer, backend: MemoryBackend, client: MemoryClient, clock: ManualClock
) -> None:
    """An expired token is inactive anyway; a deny-list entry for it would be dead weight."""
    access_token = issue(server, client)
    clock.now = claims_of(access_token)["exp"]

    revoked_ok(server, client, access_token)

    assert backend.revocations == {}


def test_a_token_revoked_just_before_it_expires_is_deny_listed_until_its_exp(
    server: AuthorizationServer, backend: MemoryBackend, client: MemoryClient, clock: ManualClock
) -> None:
    access_token = issue(server, client)
    exp = claims_of(access_token)["exp"]
    clock.now = exp - 1

    revoked_ok(server, client, access_token)

    (entry,) = backend.revocations.values()
    assert entry.expires_at == datetime.fromtimestamp(exp, UTC)


@pytest.mark.parametrize("hint", ["access_token", "refresh_token", "nonsense"])
def test_token_type_hint_is_ignored_and_the_token_is_revoked(
    server: AuthorizationServer, client: MemoryClient, hint: str
) -> None:
    access_token = issue(server, client)

    revoked_ok(server, client, access_token, token_type_hint=hint)

    assert not is_active(server, client, access_token)


@pytest.mark.parametrize("garbage", ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", "x" * 5000])
def test_revoking_a_string_that_is_not_our_token_is_200_and_revokes_nothing(
    server: AuthorizationServer, backend: MemoryBackend, client: MemoryClient, garbage: str
) -> None:
    revoked_ok(server, client, garbage)

    assert backend.revocations == {}


def test_a_revocation_touches_only_that_token(
    server: AuthorizationServer, client: MemoryClient
) -> None:
    earlier, other = issue(server, client), issue(server, client)
    revoked_ok(server, client, earlier)

    later = issue(server, client)

    assert not is_active(server, client, earlier)
    assert is_active(server, client, other)
    assert is_active(server, client, later)


@pytest.mark.parametrize(
    "form",
    [{}, {"token": ""}, {"token_type_hint": "access_token"}],
    ids=["nothing", "empty-token", "hint-only"],
)
def test_a_revocation_without_a_token_is_invalid_request(
    server: AuthorizationServer, client: MemoryClient, form: dict[str, str]
) -> None:
    status, body, _ = post_as(server, REVOCATION_ENDPOINT, client, form)

    assert (status, body["error"]) == (400, "invalid_request")


@pytest.mark.parametrize(
    ("caller", "method"),
    [
        (None, CLIENT_SECRET_POST),
        (MemoryClient("cli_fast", "ascs_wrong"), "client_secret_basic"),
        (MemoryClient("cli_fast", "ascs_wrong"), CLIENT_SECRET_POST),
    ],
    ids=["anonymous", "wrong-secret-basic", "wrong-secret-post"],
)
def test_an_unauthenticated_revocation_is_401_and_revokes_nothing(
    server: AuthorizationServer,
    backend: MemoryBackend,
    client: MemoryClient,
    caller: MemoryClient | None,
    method: str,
) -> None:
    access_token = issue(server, client)

    status, body, headers = post_as(
        server, REVOCATION_ENDPOINT, caller, {"token": access_token}, method
    )

    assert (status, body["error"]) == (401, "invalid_client")
    if method == "client_secret_basic" or caller is None:
        assert header(headers, "WWW-Authenticate") == f'Basic realm="{REALM}"'
    assert backend.revocations == {}
    assert is_active(server, client, access_token)


def test_the_client_id_named_in_the_body_without_a_secret_is_no_credential(
    server: AuthorizationServer, backend: MemoryBackend, client: MemoryClient
) -> None:
    access_token = issue(server, client)

    status, body, _ = post_as(
        server, REVOCATION_ENDPOINT, None, {"token": access_token, "client_id": client.client_id}
    )

    assert (status, body["error"]) == (401, "invalid_client")
    assert backend.revocations == {}
