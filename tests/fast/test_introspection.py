"""Token introspection (RFC 7662) driven in memory: which tokens are active, what an active
answer holds, and that anything else is exactly ``{"active": false}``. Expiry is reached by
moving the fake clock, never by sleeping."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
from joserfc import jwt as joserfc_jwt

from authserver.oauth.clients import CLIENT_SECRET_POST, SECRET_METHODS
from authserver.oauth.errors import REALM
from authserver.oauth.server import INTROSPECTION_ENDPOINT, AuthorizationServer
from authserver.security.keys import SigningKey
from tests.fast.conftest import API_A, API_B
from tests.support.clock import ManualClock
from tests.support.memory_backend import (
    EPOCH,
    ISSUER,
    MemoryBackend,
    MemoryClient,
    build_server,
    header,
    issue,
    post_as,
)

ACTIVE_FIELDS = {"client_id", "scope", "sub", "aud", "iss", "exp", "iat", "jti"}
INACTIVE = {"active": False}


def introspected(
    server: AuthorizationServer,
    caller: MemoryClient,
    access_token: str,
    method: str = CLIENT_SECRET_POST,
    **extra: str,
) -> dict[str, Any]:
    """The 200, uncacheable introspection answer for ``access_token``."""
    status, body, headers = post_as(
        server, INTROSPECTION_ENDPOINT, caller, {"token": access_token, **extra}, method
    )
    assert status == 200, body
    assert header(headers, "Cache-Control") == "no-store"
    return body


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unverified(access_token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    claims = jwt.decode(access_token, options={"verify_signature": False})
    return jwt.get_unverified_header(access_token), claims


def signed(key: SigningKey, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """A JWS over ``claims`` with ``key``'s private half (real signing, as our server's)."""
    return joserfc_jwt.encode({"alg": key.alg, **header}, claims, key.jwk, algorithms=[key.alg])


# --- active --------------------------------------------------------------------------------


@pytest.mark.parametrize("method", SECRET_METHODS)
def test_a_live_token_is_active_with_exactly_the_rfc7662_fields_equal_to_its_claims(
    server: AuthorizationServer, client: MemoryClient, method: str
) -> None:
    access_token = issue(server, client, scope="read")
    _, claims = unverified(access_token)

    body = introspected(server, client, access_token, method)

    assert set(body) == ACTIVE_FIELDS | {"active", "token_type"}
    assert body["active"] is True
    assert body["token_type"] == "Bearer"
    assert {name: body[name] for name in ACTIVE_FIELDS} == {
        name: claims[name] for name in ACTIVE_FIELDS
    }
    assert (body["client_id"], body["sub"], body["scope"]) == (client.client_id,) * 2 + ("read",)
    assert body["iss"] == ISSUER


def test_an_audience_list_is_answered_as_the_token_has_it(
    server: AuthorizationServer, backend: MemoryBackend
) -> None:
    client = backend.register("cli_aud", "ascs_aud", audiences=(API_A, API_B))

    body = introspected(server, client, issue(server, client))

    assert body["aud"] == [API_A, API_B]


def test_any_authenticated_client_may_introspect_another_clients_token(
    server: AuthorizationServer, client: MemoryClient, other_client: MemoryClient
) -> None:
    body = introspected(server, other_client, issue(server, client))

    assert body["active"] is True
    assert body["client_id"] == client.client_id


@pytest.mark.parametrize("hint", ["access_token", "refresh_token", "no_such_token_type"])
def test_token_type_hint_is_only_a_hint_and_unknown_values_are_ignored(
    server: AuthorizationServer, client: MemoryClient, hint: str
) -> None:
    body = introspected(server, client, issue(server, client), token_type_hint=hint)

    assert body["active"] is True


def test_a_token_of_a_key_still_published_after_rotation_stays_active(
    server: AuthorizationServer,
    backend: MemoryBackend,
    client: MemoryClient,
    other_key: SigningKey,
) -> None:
    """A retired key stays in the JWKS for the life of its tokens; they stay active."""
    earlier = issue(server, client)
    backend.keys.append(other_key)
    backend.signing_key = other_key

    later = issue(server, client)

    assert unverified(later)[0]["kid"] == other_key.kid
    assert introspected(server, client, earlier)["active"] is True
    assert introspected(server, client, later)["active"] is True


# --- inactive ------------------------------------------------------------------------------


def test_a_token_is_active_until_the_clock_reaches_its_exp_and_inactive_from_then_on(
    server: AuthorizationServer, client: MemoryClient, clock: ManualClock
) -> None:
    """RFC 7519 §4.1.4: the token must not be accepted "on or after" ``exp``."""
    access_token = issue(server, client)
    exp = unverified(access_token)[1]["exp"]

    clock.now = exp - 0.001
    assert introspected(server, client, access_token)["active"] is True
    clock.now = exp
    assert introspected(server, client, access_token) == INACTIVE
    clock.now = exp + 86_400
    assert introspected(server, client, access_token) == INACTIVE


def test_a_short_client_ttl_expires_the_token_sooner(
    server: AuthorizationServer, backend: MemoryBackend, clock: ManualClock
) -> None:
    client = backend.register("cli_short", "ascs_short", token_ttl=1)
    access_token = issue(server, client)

    clock.now = EPOCH + 1

    assert introspected(server, client, access_token) == INACTIVE


def test_a_revoked_token_is_inactive(
    server: AuthorizationServer, backend: MemoryBackend, client: MemoryClient
) -> None:
    access_token = issue(server, client)
    assert introspected(server, client, access_token)["active"] is True
    claims = unverified(access_token)[1]

    backend.revoke(claims["jti"], client.client_id, datetime.fromtimestamp(claims["exp"], UTC))

    assert introspected(server, client, access_token) == INACTIVE


@pytest.mark.parametrize("gone", ["disabled", "deleted"])
def test_a_token_of_a_disabled_or_deleted_client_is_inactive(
    server: AuthorizationServer,
    backend: MemoryBackend,
    client: MemoryClient,
    other_client: MemoryClient,
    gone: str,
) -> None:
    access_token = issue(server, client)
    assert introspected(server, other_client, access_token)["active"] is True

    if gone == "disabled":
        client.enabled = False
    else:
        del backend.clients[client.client_id]

    assert introspected(server, other_client, access_token) == INACTIVE


def test_strings_that_are_not_our_tokens_are_inactive(
    server: AuthorizationServer, client: MemoryClient
) -> None:
    access_token = issue(server, client)
    head, payload, signature = access_token.split(".")
    forged_claims = {**unverified(access_token)[1], "scope": "admin"}
    cases = {
        "random text": "not a token",
        "three empty parts": "..",
        "three junk parts": "a.b.c",
        "header only": head,
        "no signature": f"{head}.{payload}.",
        "two parts": f"{head}.{payload}",
        "four parts": f"{access_token}.{signature}",
        "signature cut short": access_token[:-8],
        "claims altered": f"{head}.{b64url(json.dumps(forged_claims).encode())}.{signature}",
        "JSON, not JWS": json.dumps(forged_claims),
        "non-ASCII": "\u00e9.\u00fc.\u00df",
        "long": "A" * 20_000,
    }
    for case, value in cases.items():
        assert introspected(server, client, value) == INACTIVE, case
    # The genuine token is still active: the cases above failed for what they are.
    assert introspected(server, client, access_token)["active"] is True


@pytest.mark.parametrize("kid", ["ours", "its-own"])
def test_a_token_signed_by_a_key_we_do_not_publish_is_inactive(
    server: AuthorizationServer,
    client: MemoryClient,
    signing_key: SigningKey,
    other_key: SigningKey,
    kid: str,
) -> None:
    head, claims = unverified(issue(server, client))
    forged_kid = signing_key.kid if kid == "ours" else other_key.kid

    forged = signed(other_key, {**head, "kid": forged_kid}, claims)

    assert introspected(server, client, forged) == INACTIVE


def test_a_token_whose_key_is_no_longer_published_is_inactive(
    server: AuthorizationServer,
    backend: MemoryBackend,
    client: MemoryClient,
    other_key: SigningKey,
) -> None:
    """A revoked (or long-retired) key leaves the JWKS, and its tokens stop counting."""
    access_token = issue(server, client)
    backend.keys = [other_key]
    backend.signing_key = other_key

    assert introspected(server, client, access_token) == INACTIVE
    assert introspected(server, client, issue(server, client))["active"] is True


def test_a_token_of_another_issuer_signed_with_our_key_is_inactive(
    backend: MemoryBackend, clock: ManualClock, client: MemoryClient
) -> None:
    ours = build_server(backend, clock)
    theirs = build_server(backend, clock, issuer="https://elsewhere.example.test")

    foreign = issue(theirs, client)

    assert introspected(ours, client, foreign) == INACTIVE
    assert introspected(theirs, client, foreign)["active"] is True


@pytest.mark.parametrize(
    ("header_change", "claims_change"),
    [
        ({"typ": "JWT"}, {}),
        ({"typ": None}, {}),
        ({}, {"jti": None}),
        ({}, {"client_id": None}),
        ({}, {"scope": None}),
        ({}, {"exp": "tomorrow"}),
    ],
    ids=["typ-jwt", "no-typ", "no-jti", "no-client-id", "no-scope", "exp-not-a-number"],
)
def test_a_token_signed_by_our_key_but_not_rfc9068_shaped_is_inactive(
    server: AuthorizationServer,
    client: MemoryClient,
    signing_key: SigningKey,
    header_change: dict[str, Any],
    claims_change: dict[str, Any],
) -> None:
    head, claims = unverified(issue(server, client))
    head = {k: v for k, v in {**head, **header_change}.items() if v is not None}
    claims = {k: v for k, v in {**claims, **claims_change}.items() if v is not None}

    assert introspected(server, client, signed(signing_key, head, claims)) == INACTIVE


def forged_with(head: dict[str, Any], claims: dict[str, Any], alg: str, secret: bytes) -> str:
    """A JWS with ``alg`` in its header, HMAC-SHA256 keyed with ``secret`` (none: no signature)."""
    signing_input = f"{b64url(json.dumps({**head, 'alg': alg}).encode())}."
    signing_input += b64url(json.dumps(claims).encode())
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest() if secret else b""
    return f"{signing_input}.{b64url(mac)}"


@pytest.mark.parametrize("form", ["none", "SPKI PEM", "JWK JSON"])
def test_an_unsigned_token_or_one_hmac_keyed_with_our_public_key_is_inactive(
    server: AuthorizationServer, client: MemoryClient, signing_key: SigningKey, form: str
) -> None:
    """``alg: none``, and the algorithm-confusion attack: HS256 keyed with the public key."""
    head, claims = unverified(issue(server, client))
    secrets = {
        "none": b"",
        "SPKI PEM": signing_key.jwk.as_pem(private=False),
        "JWK JSON": json.dumps(signing_key.public_jwk()).encode(),
    }

    forged = forged_with(head, claims, "none" if form == "none" else "HS256", secrets[form])

    assert introspected(server, client, forged) == INACTIVE


def test_without_any_published_key_every_token_is_inactive(
    server: AuthorizationServer, backend: MemoryBackend, client: MemoryClient
) -> None:
    access_token = issue(server, client)
    backend.keys = []

    assert introspected(server, client, access_token) == INACTIVE


# --- request errors ------------------------------------------------------------------------


@pytest.mark.parametrize("method", SECRET_METHODS)
@pytest.mark.parametrize(
    "form",
    [{}, {"token": ""}, {"token_type_hint": "access_token"}],
    ids=["nothing", "empty-token", "hint-only"],
)
def test_a_request_without_a_token_is_invalid_request(
    server: AuthorizationServer, client: MemoryClient, method: str, form: dict[str, str]
) -> None:
    status, body, _ = post_as(server, INTROSPECTION_ENDPOINT, client, form, method)

    assert (status, body["error"]) == (400, "invalid_request")
    assert body["error_description"]


@pytest.mark.parametrize(
    ("caller", "method", "challenge"),
    [
        (None, CLIENT_SECRET_POST, True),
        (MemoryClient("cli_fast", "ascs_wrong"), "client_secret_basic", True),
        (MemoryClient("cli_fast", "ascs_wrong"), CLIENT_SECRET_POST, False),
        (MemoryClient("cli_nobody", "ascs_x"), CLIENT_SECRET_POST, False),
    ],
    ids=["anonymous", "wrong-secret-basic", "wrong-secret-post", "unknown-client"],
)
def test_introspection_requires_client_authentication(
    server: AuthorizationServer,
    client: MemoryClient,
    caller: MemoryClient | None,
    method: str,
    challenge: bool,
) -> None:
    access_token = issue(server, client)

    status, body, headers = post_as(
        server, INTROSPECTION_ENDPOINT, caller, {"token": access_token}, method
    )

    assert (status, body["error"]) == (401, "invalid_client")
    assert "active" not in body
    expected = f'Basic realm="{REALM}"' if challenge else None
    assert header(headers, "WWW-Authenticate") == expected


def test_a_disabled_client_may_not_introspect(
    server: AuthorizationServer, client: MemoryClient, other_client: MemoryClient
) -> None:
    access_token = issue(server, client)
    other_client.enabled = False

    status, body, _ = post_as(server, INTROSPECTION_ENDPOINT, other_client, {"token": access_token})

    assert (status, body["error"]) == (401, "invalid_client")
