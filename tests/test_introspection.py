"""Token introspection (RFC 7662) at ``POST /oauth2/introspect`` over real HTTP, on SQLite and
PostgreSQL (contract: "Introspection", the HTTP table and the error table)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from sqlalchemy.orm import Session

from authserver.config import Settings
from authserver.extensions import db
from authserver.services import registry
from authserver.services.keys import revoke_key
from tests.conftest import ISSUER, LiveServer, RegisteredClient
from tests.support.oauth import (
    SECRET_METHODS,
    CreateClient,
    introspect,
    issue_token,
    json_error,
    once_workers_see_registry_changes,
)
from tests.support.tokens import decode_with_jwks
from tests.support.waiting import wait_until

ACTIVE_FIELDS = {"client_id", "scope", "sub", "aud", "iss", "exp", "iat", "jti"}
INACTIVE = {"active": False}
#: Key files are polled once a second by the server (the contract: changes count within 2 s).
KEY_RELOAD_TIMEOUT_SECONDS = 2.0
#: How long a token issued with the shortest lifetime (1 s) may take to turn inactive.
EXPIRY_TIMEOUT_SECONDS = 5.0


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def answer(response: requests.Response) -> dict[str, Any]:
    """A 200 JSON introspection answer that no cache may keep."""
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.headers.get("Cache-Control") == "no-store"
    body: dict[str, Any] = response.json()
    return body


def assert_inactive(response: requests.Response, case: str = "") -> None:
    assert answer(response) == INACTIVE, f"{case}: {response.text}"


def verified_claims(live_server: LiveServer, token: str, audience: str | list[str]) -> Any:
    return decode_with_jwks(live_server.jwks_url, token, audience=audience, issuer=ISSUER)


def unverified_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    return header, claims


def handmade_jwt(
    header: dict[str, Any], claims: dict[str, Any], sign: Callable[[bytes], bytes]
) -> str:
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64url(sign(signing_input.encode('ascii')))}"


# --- active tokens --------------------------------------------------------------------------


@pytest.mark.parametrize("method", SECRET_METHODS)
def test_live_token_is_active_with_exactly_the_rfc7662_fields_equal_to_its_claims(
    http: requests.Session, live_server: LiveServer, create_client: CreateClient, method: str
) -> None:
    client = create_client(scope="api read")
    token = issue_token(http, live_server, client, scope="api")
    claims = verified_claims(live_server, token, ISSUER)

    body = answer(introspect(http, live_server, client, token, method))

    assert set(body) == ACTIVE_FIELDS | {"active", "token_type"}
    assert body["active"] is True
    assert body["token_type"] == "Bearer"
    assert {name: body[name] for name in ACTIVE_FIELDS} == {
        name: claims[name] for name in ACTIVE_FIELDS
    }
    assert body["client_id"] == client.client_id
    assert body["sub"] == client.client_id
    assert body["scope"] == "api"
    assert body["iss"] == ISSUER


def test_active_answer_carries_an_audience_list_as_the_token_has_it(
    http: requests.Session, live_server: LiveServer, create_client: CreateClient
) -> None:
    audiences = ["https://one.example.test", "https://two.example.test"]
    client = create_client(audiences=audiences)
    token = issue_token(http, live_server, client)

    body = answer(introspect(http, live_server, client, token))

    assert body["active"] is True
    assert body["aud"] == verified_claims(live_server, token, audiences[0])["aud"]
    assert sorted(body["aud"]) == sorted(audiences)


def test_any_authenticated_client_may_introspect_another_clients_token(
    http: requests.Session, live_server: LiveServer, create_client: CreateClient
) -> None:
    owner = create_client(name="owner")
    resource_server = create_client(name="resource server", scope="introspect")
    token = issue_token(http, live_server, owner)

    body = answer(introspect(http, live_server, resource_server, token))

    assert body["active"] is True
    assert body["client_id"] == owner.client_id


def test_token_type_hint_is_only_a_hint_and_unknown_values_are_ignored(
    http: requests.Session, live_server: LiveServer, create_client: CreateClient
) -> None:
    client = create_client()
    token = issue_token(http, live_server, client)
    jti = verified_claims(live_server, token, ISSUER)["jti"]

    for hint in ("access_token", "refresh_token", "no_such_token_type"):
        hinted = introspect(http, live_server, client, token, extra={"token_type_hint": hint})
        body = answer(hinted)
        assert body["active"] is True, hint
        assert body["jti"] == jti


# --- inactive tokens: exactly {"active": false} ---------------------------------------------


def test_revoked_token_is_inactive(
    http: requests.Session, live_server: LiveServer, create_client: CreateClient
) -> None:
    client = create_client()
    token = issue_token(http, live_server, client)
    assert answer(introspect(http, live_server, client, token))["active"] is True

    revoked = http.post(
        f"{live_server.url}/oauth2/revoke",
        data={"token": token},
        auth=(client.client_id, client.client_secret),
        timeout=10,
    )
    assert revoked.status_code == 200, revoked.text

    assert_inactive(introspect(http, live_server, client, token))


def test_expired_token_is_inactive(
    http: requests.Session, live_server: LiveServer, create_client: CreateClient
) -> None:
    client = create_client(token_ttl=1)
    token = issue_token(http, live_server, client)
    _, claims = unverified_parts(token)
    assert claims["exp"] - claims["iat"] == 1

    def inactive_at() -> float | None:
        """When an introspection found the token inactive (the moment its answer came)."""
        body = answer(introspect(http, live_server, client, token))
        return time.time() if body["active"] is False else None

    seen_inactive_at = wait_until(inactive_at, EXPIRY_TIMEOUT_SECONDS, "the token turning inactive")
    # Not before its exp: until then the token was active (RFC 7519 §4.1.4).
    assert seen_inactive_at >= claims["exp"]
    assert_inactive(introspect(http, live_server, client, token))


def test_malformed_token_strings_are_inactive(
    http: requests.Session, live_server: LiveServer, create_client: CreateClient
) -> None:
    client = create_client()
    token = issue_token(http, live_server, client)
    header, payload, signature = token.split(".")
    forged_claims = {**unverified_parts(token)[1], "scope": "admin"}
    cases = {
        "random text": "not a token",
        "three empty parts": "..",
        "three junk parts": "a.b.c",
        "header only": header,
        "no signature": f"{header}.{payload}.",
        "two parts": f"{header}.{payload}",
        "four parts": f"{token}.{signature}",
        "signature cut short": token[:-8],
        "claims altered": f"{header}.{b64url(json.dumps(forged_claims).encode())}.{signature}",
        "JSON, not JWS": json.dumps(forged_claims),
        "non-ASCII": "é.ü.ß",
        "long": "A" * 20000,
    }
    for case, value in cases.items():
        assert_inactive(introspect(http, live_server, client, value), case)
    # The real token is still fine: the cases above failed for what they are.
    assert answer(introspect(http, live_server, client, token))["active"] is True


@pytest.mark.parametrize("kid", ["ours", "unknown"])
def test_token_signed_by_a_foreign_key_is_inactive(
    http: requests.Session, live_server: LiveServer, create_client: CreateClient, kid: str
) -> None:
    client = create_client()
    genuine = issue_token(http, live_server, client)
    header, claims = unverified_parts(genuine)
    foreign_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    foreign = jwt.encode(
        claims,
        foreign_key,
        algorithm="RS256",
        headers={"typ": "at+jwt", "kid": header["kid"] if kid == "ours" else "someone-else"},
    )

    assert_inactive(introspect(http, live_server, client, foreign))


def test_token_whose_signing_key_was_revoked_is_inactive(
    http: requests.Session,
    live_server: LiveServer,
    create_client: CreateClient,
    settings: Settings,
) -> None:
    client = create_client()
    token = issue_token(http, live_server, client)
    kid = jwt.get_unverified_header(token)["kid"]
    assert answer(introspect(http, live_server, client, token))["active"] is True

    revoke_key(settings, kid, timedelta(seconds=settings.access_token_ttl))
    wait_until(
        lambda: answer(introspect(http, live_server, client, token))["active"] is False,
        KEY_RELOAD_TIMEOUT_SECONDS,
        "the token turning inactive once its key was revoked",
    )

    assert_inactive(introspect(http, live_server, client, token))
    fresh = issue_token(http, live_server, client)
    assert jwt.get_unverified_header(fresh)["kid"] != kid
    assert answer(introspect(http, live_server, client, fresh))["active"] is True


def test_unsigned_alg_none_token_is_inactive(
    http: requests.Session, live_server: LiveServer, create_client: CreateClient
) -> None:
    client = create_client()
    header, claims = unverified_parts(issue_token(http, live_server, client))
    for unsigned_header in ({**header, "alg": "none"}, {"alg": "none", "typ": "at+jwt"}):
        unsigned = handmade_jwt(unsigned_header, claims, lambda _: b"")
        assert_inactive(introspect(http, live_server, client, unsigned), str(unsigned_header))


def test_hs256_token_keyed_with_our_public_key_is_inactive(
    http: requests.Session, live_server: LiveServer, create_client: CreateClient
) -> None:
    """The algorithm-confusion attack: an HMAC over the token keyed with the public key."""
    client = create_client()
    header, claims = unverified_parts(issue_token(http, live_server, client))
    jwk = next(k for k in http.get(live_server.jwks_url, timeout=10).json()["keys"])
    public_key = jwt.PyJWK(jwk).key
    spki, pkcs1 = serialization.PublicFormat.SubjectPublicKeyInfo, serialization.PublicFormat.PKCS1
    candidates = {
        "SPKI PEM": public_key.public_bytes(serialization.Encoding.PEM, spki),
        "PKCS#1 PEM": public_key.public_bytes(serialization.Encoding.PEM, pkcs1),
        "SPKI DER": public_key.public_bytes(serialization.Encoding.DER, spki),
        "JWK JSON": json.dumps(jwk).encode(),
    }
    for label, secret in candidates.items():
        forged = handmade_jwt(
            {**header, "alg": "HS256"},
            claims,
            lambda data, key=secret: hmac.new(key, data, hashlib.sha256).digest(),
        )
        assert_inactive(introspect(http, live_server, client, forged), label)


def disable(session: Session, client_id: str) -> None:
    registry.set_enabled(session, client_id, False)


def change_client(app: Flask, change: Callable[[Session, str], Any], client_id: str) -> None:
    """Apply ``change`` (``disable`` or ``registry.delete_client``) to a client and commit."""
    with app.app_context():
        change(db.session(), client_id)
        db.session.commit()


@pytest.mark.parametrize("change", [disable, registry.delete_client], ids=["disabled", "deleted"])
def test_token_of_a_disabled_or_deleted_client_is_inactive(
    http: requests.Session,
    live_server: LiveServer,
    create_client: CreateClient,
    app: Flask,
    change: Callable[[Session, str], Any],
) -> None:
    owner = create_client(name="owner")
    caller = create_client(name="resource server")
    token = issue_token(http, live_server, owner)
    assert answer(introspect(http, live_server, caller, token))["active"] is True

    change_client(app, change, owner.client_id)
    once_workers_see_registry_changes(
        lambda: answer(introspect(http, live_server, caller, token))["active"] is False,
        "the token of the changed client turning inactive",
    )

    assert_inactive(introspect(http, live_server, caller, token))


# --- request errors -------------------------------------------------------------------------


def test_introspection_without_client_authentication_is_invalid_client(
    http: requests.Session, live_server: LiveServer, create_client: CreateClient
) -> None:
    client = create_client()
    token = issue_token(http, live_server, client)

    response = http.post(f"{live_server.url}/oauth2/introspect", data={"token": token}, timeout=10)

    json_error(response, 401, "invalid_client")
    assert response.headers.get("WWW-Authenticate") == 'Basic realm="authserver"'
    assert "active" not in response.json()


@pytest.mark.parametrize("method", SECRET_METHODS)
def test_introspection_with_a_wrong_secret_is_invalid_client(
    http: requests.Session, live_server: LiveServer, create_client: CreateClient, method: str
) -> None:
    client = create_client()
    token = issue_token(http, live_server, client)
    impostor = RegisteredClient(client.client_id, client.client_secret + "x", client.view)

    response = introspect(http, live_server, impostor, token, method)

    json_error(response, 401, "invalid_client")
    assert "active" not in response.json()


def test_introspection_by_an_unknown_client_is_invalid_client(
    http: requests.Session, live_server: LiveServer, create_client: CreateClient
) -> None:
    client = create_client()
    token = issue_token(http, live_server, client)
    stranger = RegisteredClient("cli_nobody", client.client_secret, {})

    json_error(introspect(http, live_server, stranger, token), 401, "invalid_client")


def test_introspection_by_a_disabled_client_is_invalid_client(
    http: requests.Session, live_server: LiveServer, create_client: CreateClient, app: Flask
) -> None:
    owner = create_client(name="owner")
    caller = create_client(name="resource server")
    token = issue_token(http, live_server, owner)
    change_client(app, disable, caller.client_id)

    json_error(introspect(http, live_server, caller, token), 401, "invalid_client")
