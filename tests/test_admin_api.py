"""The admin HTTP API under /admin/v1/, through a real HTTP server: every endpoint with an
admin token got from /oauth2/token, the RFC 6750 refusals of every kind of bad token, RFC 9457
problem details, the audit events with the acting client, and AUTHSERVER_ADMIN_API=off.
Storage-dependent operations run on SQLite and PostgreSQL (``database_url``)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwt
from joserfc.jwk import ECKey
from jsonschema import Draft202012Validator

from authserver.config import Settings
from authserver.errors import ConfigError
from authserver.http.admin_schemas import (
    CLIENT_CREATE,
    CLIENT_UPDATE,
    KEY_ROTATION,
    SECRET_ROTATION,
    TRUST_CREATE,
)
from authserver.http.openapi import DOCUMENT_WITH_ADMIN
from authserver.http.routes import ADMIN_ROUTES
from authserver.security.keys import KeyStore
from tests.conftest import ISSUER, LiveServer, RegisteredClient
from tests.support.cli_in_process import in_process_cli
from tests.support.waiting import wait_until

ADMIN_SCOPE = "authserver:admin"
PROBLEM = "application/problem+json"
API = "/admin/v1"


@dataclass
class Admin:
    """The live server and an admin client's token, with a request helper."""

    server: LiveServer
    client: RegisteredClient
    token: str
    http: requests.Session

    def call(
        self, method: str, path: str, *, token: str | None = None, **kwargs: Any
    ) -> requests.Response:
        headers = {"Authorization": f"Bearer {token or self.token}", **kwargs.pop("headers", {})}
        return self.http.request(
            method, f"{self.server.url}{API}{path}", headers=headers, timeout=30, **kwargs
        )


def get_token(server: LiveServer, client: RegisteredClient, **data: str) -> str:
    response = requests.post(
        server.token_url,
        data={"grant_type": "client_credentials", **data},
        auth=(client.client_id, client.client_secret),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Parametrised indirectly by the tests that switch a setting."""
    overrides: dict[str, Any] = getattr(request, "param", {})
    return overrides


def token_status(server: LiveServer, client: RegisteredClient) -> int:
    response = requests.post(
        server.token_url,
        data={"grant_type": "client_credentials"},
        auth=(client.client_id, client.client_secret),
        timeout=10,
    )
    return response.status_code


@pytest.fixture
def admin(
    live_server: LiveServer,
    create_client: Callable[..., RegisteredClient],
    http: requests.Session,
) -> Admin:
    client = create_client(name="admin", scope=ADMIN_SCOPE)
    return Admin(live_server, client, get_token(live_server, client), http)


@pytest.fixture
def audit_log(caplog: pytest.LogCaptureFixture) -> Callable[[], list[dict[str, Any]]]:
    caplog.set_level(logging.INFO, logger="authserver.audit")

    def events() -> list[dict[str, Any]]:
        return [json.loads(r.getMessage()) for r in caplog.records if r.name == "authserver.audit"]

    return events


def assert_problem(response: requests.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == PROBLEM
    assert response.headers["Cache-Control"] == "no-store"
    body: dict[str, Any] = response.json()
    assert set(body) == {"type", "title", "status", "detail"}
    assert body["status"] == status
    assert body["type"] == "about:blank"
    assert body["title"]
    assert body["detail"]
    assert "Traceback" not in response.text
    return body


# -- clients ---------------------------------------------------------------------------------


def test_clients_are_created_listed_shown_changed_rotated_and_deleted(
    admin: Admin, audit_log: Callable[[], list[dict[str, Any]]]
) -> None:
    created = admin.call(
        "POST",
        "/clients",
        json={"name": "billing", "scope": "api read", "audiences": ["https://api.example.test"]},
        headers={"X-Request-ID": "create-billing"},
    )
    assert created.status_code == 201, created.text
    client = created.json()
    client_id, secret = client["client_id"], client["client_secret"]
    assert created.headers["Location"] == f"{API}/clients/{client_id}"
    assert client["scope"] == "api read"
    assert client["audiences"] == ["https://api.example.test"]
    assert client["token_endpoint_auth_method"] == "client_secret_basic"
    assert client["enabled"] is True
    billing = RegisteredClient(client_id, secret, client)
    get_token(admin.server, billing)  # the secret works at once

    listed = admin.call("GET", "/clients")
    assert listed.status_code == 200
    assert {c["client_id"] for c in listed.json()} == {admin.client.client_id, client_id}
    assert all("client_secret" not in c for c in listed.json())
    shown = admin.call("GET", f"/clients/{client_id}").json()
    expected = {name: value for name, value in client.items() if name != "client_secret"}
    assert shown == {**expected, "last_used_at": shown["last_used_at"]}  # used just now

    changed = admin.call(
        "PATCH",
        f"/clients/{client_id}",
        json={
            "name": "billing v2",
            "scope": "api",
            "audiences": ["urn:example:billing"],
            "token_ttl": 600,
            "max_tokens_per_hour": 50,
        },
    )
    assert changed.status_code == 200, changed.text
    assert {k: changed.json()[k] for k in ("name", "scope", "audiences", "token_ttl")} == {
        "name": "billing v2",
        "scope": "api",
        "audiences": ["urn:example:billing"],
        "token_ttl": 600,
    }
    assert changed.json()["max_tokens_per_hour"] == 50
    lifted = admin.call("PATCH", f"/clients/{client_id}", json={"max_tokens_per_hour": None})
    assert lifted.json()["max_tokens_per_hour"] is None
    assert lifted.json()["token_ttl"] == 600  # absent fields stay
    default_ttl = admin.call("PATCH", f"/clients/{client_id}", json={"token_ttl": None})
    assert default_ttl.json()["token_ttl"] is None

    rotated = admin.call("POST", f"/clients/{client_id}/rotate-secret", json={"grace": 60})
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["client_secret"]
    assert new_secret != secret
    # Changes reach every worker within 2 seconds (this one caches registrations for 1 s).
    wait_until(
        lambda: token_status(admin.server, RegisteredClient(client_id, new_secret, client)) == 200,
        3,
        "the new secret working",
    )
    get_token(admin.server, billing)  # the old one works during the grace

    deleted = admin.call("DELETE", f"/clients/{client_id}")
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert_problem(admin.call("GET", f"/clients/{client_id}"), 404)

    events = {e["event"]: e for e in audit_log() if e.get("actor")}
    for name in ("client.created", "client.updated", "client.secret_rotated", "client.deleted"):
        assert events[name]["actor"] == admin.client.client_id, name
        assert events[name]["client_id"] == client_id
        assert events[name]["outcome"] == "success"
    assert events["client.created"]["request_id"] == "create-billing"
    assert events["client.secret_rotated"]["grace"] == 60
    assert new_secret not in json.dumps(audit_log())


def test_a_client_is_disabled_and_enabled_through_patch(
    admin: Admin,
    create_client: Callable[..., RegisteredClient],
    audit_log: Callable[[], list[dict[str, Any]]],
) -> None:
    service = create_client()
    disabled = admin.call("PATCH", f"/clients/{service.client_id}", json={"enabled": False})
    assert disabled.status_code == 200
    assert disabled.json()["enabled"] is False
    enabled = admin.call("PATCH", f"/clients/{service.client_id}", json={"enabled": True})
    assert enabled.json()["enabled"] is True
    names = [e["event"] for e in audit_log() if e.get("client_id") == service.client_id]
    assert names == ["client.disabled", "client.enabled"]


def test_a_private_key_jwt_client_is_created_with_its_keys_and_has_no_secret_to_rotate(
    admin: Admin,
) -> None:
    public = ECKey.import_key(ec.generate_private_key(ec.SECP256R1()).public_key())
    jwks = {"keys": [public.as_dict(private=False) | {"kid": "k1", "alg": "ES256"}]}
    created = admin.call(
        "POST",
        "/clients",
        json={
            "name": "signer",
            "scope": "api",
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": jwks,
        },
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert "client_secret" not in body
    assert body["token_endpoint_auth_method"] == "private_key_jwt"
    assert body["jwks"]["keys"][0]["kid"] == "k1"
    assert body["jwks_uri"] is None
    refused = admin.call("POST", f"/clients/{body['client_id']}/rotate-secret")
    assert "private_key_jwt" in assert_problem(refused, 422)["detail"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"name": "x", "scope": "api", "client_secret": "chosen-secret-1234"}, "'client_secret'"),
        ({"name": "x"}, "required"),
        ({"name": "x", "scope": "api", "token_ttl": 0}, "token_ttl"),
        ({"name": "x", "scope": "a\\b"}, "scope"),
        ({"name": "x", "scope": "api", "audiences": ["ftp://x"]}, "audience"),
        ({"name": "x\n", "scope": "api"}, "printable"),
        ({"name": "x", "scope": "api", "jwks_uri": "https://keys.example.test/"}, "private_key"),
        (["not", "an", "object"], "object"),
    ],
)
def test_refused_client_fields_are_422_problems_naming_the_field(
    admin: Admin, body: Any, words: str
) -> None:
    response = admin.call("POST", "/clients", json=body)
    assert words in assert_problem(response, 422)["detail"].lower()
    assert [c["name"] for c in admin.call("GET", "/clients").json()] == ["admin"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_numbers_are_json_schema_integers_and_booleans_are_not(admin: Admin) -> None:
    body = {"name": "x", "scope": "api", "token_ttl": 600.0, "max_tokens_per_hour": 1e3}
    created = admin.call("POST", "/clients", json=body)
    assert created.status_code == 201, created.text
    assert (created.json()["token_ttl"], created.json()["max_tokens_per_hour"]) == (600, 1000)
    for wrong in (True, 600.5, "600"):
        refused = admin.call("POST", "/clients", json={**body, "token_ttl": wrong})
        assert "token_ttl" in assert_problem(refused, 422)["detail"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_refusal_quotes_the_offending_members_but_not_all_of_a_flood(admin: Admin) -> None:
    body = {"name": "x", "scope": "api", **{f"m{i:03}" + "x" * 100: 1 for i in range(50)}}
    detail = assert_problem(admin.call("POST", "/clients", json=body), 422)["detail"]
    assert "m000" in detail
    assert len(detail) < 400


@pytest.mark.parametrize(
    "schema",
    [CLIENT_CREATE, CLIENT_UPDATE, SECRET_ROTATION, KEY_ROTATION, TRUST_CREATE],
)
def test_every_request_schema_is_a_valid_json_schema(schema: dict[str, Any]) -> None:
    Draft202012Validator.check_schema(schema)


def test_patch_refuses_unknown_fields_and_an_empty_change(admin: Admin) -> None:
    path = f"/clients/{admin.client.client_id}"
    unknown = admin.call("PATCH", path, json={"colour": "red"})
    assert "'colour' was unexpected" in assert_problem(unknown, 422)["detail"]
    assert_problem(admin.call("PATCH", path, json={}), 422)
    assert_problem(admin.call("PATCH", path, json={"token_ttl": 0}), 422)


def test_malformed_bodies_are_400_and_415_problems(admin: Admin) -> None:
    headers = {"Content-Type": "application/json"}
    assert_problem(admin.call("POST", "/clients", data=b"{not json", headers=headers), 400)
    assert_problem(admin.call("POST", "/clients", data=b"\xff\xfe{", headers=headers), 400)
    assert_problem(admin.call("POST", "/clients", data=b'{"n": NaN}', headers=headers), 400)
    form = admin.call("POST", "/clients", data={"name": "x", "scope": "api"})
    assert_problem(form, 415)
    huge = admin.call("POST", "/clients", data=b"[" + b"1," * 40_000 + b"1]", headers=headers)
    assert_problem(huge, 413)


def test_unknown_paths_ids_and_methods_are_problems(admin: Admin) -> None:
    assert_problem(admin.call("GET", "/nothing"), 404)
    assert_problem(admin.call("GET", "/clients/"), 404)
    assert_problem(admin.call("GET", "/clients/a\nb"), 404)
    assert_problem(admin.call("GET", "/clients/unknown"), 404)
    assert_problem(admin.call("DELETE", "/clients/unknown"), 404)
    assert_problem(admin.call("POST", "/clients/unknown/rotate-secret"), 404)
    assert_problem(admin.call("GET", "/trusts/trs_unknown"), 404)
    assert_problem(admin.call("POST", "/keys/unknown/revoke"), 404)
    for method, path in [("GET", "/clients/a%00b"), ("PATCH", "/clients/a%00b"),
                         ("DELETE", "/clients/a%00b"), ("POST", "/clients/a%00b/rotate-secret"),
                         ("GET", "/trusts/a%00b"), ("DELETE", "/trusts/a%00b"),
                         ("POST", "/keys/a%00b/revoke")]:  # fmt: skip
        # PostgreSQL refuses a NUL in text with an error: not an outage, no such object.
        body = {"scope": "api"} if method == "PATCH" else None
        assert_problem(admin.call(method, path, json=body), 404)
    for unstorable in ("a\x00b", "a\ud800"):  # sent as JSON escapes: NUL, a lone surrogate
        ghost = {"client_id": unstorable, "issuer": "https://issuer.example", "subject": "s",
                 "audience": "a"}  # fmt: skip
        assert_problem(admin.call("POST", "/trusts", json=ghost), 422)
    refused = admin.call("PUT", "/clients")
    assert_problem(refused, 405)
    assert refused.headers["Allow"] == "GET, HEAD, POST"
    assert_problem(admin.call("GET", "/keys/rotate"), 405)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_admin_route_asks_for_a_token_and_refuses_other_methods(
    live_server: LiveServer,
) -> None:
    for route in ADMIN_ROUTES:
        url = live_server.url + route.path.replace("{", "").replace("}", "")
        for method in route.methods:
            assert_problem(requests.request(method, url, timeout=10), 401)
        refused = requests.request("PUT", url, timeout=10)
        assert_problem(refused, 405)
        allowed = {*route.methods, *(["HEAD"] if "GET" in route.methods else [])}
        assert set(refused.headers["Allow"].split(", ")) == allowed


# -- signing keys ----------------------------------------------------------------------------


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_keys_are_listed_rotated_and_revoked(
    admin: Admin, audit_log: Callable[[], list[dict[str, Any]]]
) -> None:
    listed = admin.call("GET", "/keys")
    assert listed.status_code == 200, listed.text
    (active,) = listed.json()
    assert active["state"] == "active"

    staged = admin.call("POST", "/keys/rotate")
    assert staged.status_code == 200, staged.text
    assert staged.json()["state"] == "next"
    now = admin.call("POST", "/keys/rotate", json={"now": True})
    assert now.json()["state"] == "active"
    assert {k["kid"] for k in admin.call("GET", "/keys").json()} == {
        active["kid"],
        staged.json()["kid"],
        now.json()["kid"],
    }

    revoked = admin.call("POST", f"/keys/{now.json()['kid']}/revoke")
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["kid"] == now.json()["kid"]
    assert revoked.json()["signing_kid"] in (active["kid"], staged.json()["kid"])
    assert now.json()["kid"] not in {k["kid"] for k in admin.call("GET", "/keys").json()}

    events = [e for e in audit_log() if e["event"].startswith("key.")]
    assert [e["event"] for e in events] == ["key.rotated", "key.rotated", "key.revoked"]
    assert all(e["actor"] == admin.client.client_id for e in events)
    assert [e.get("immediate") for e in events[:2]] == [False, True]


# -- trusts ----------------------------------------------------------------------------------


def test_trusts_are_added_listed_shown_and_deleted(
    admin: Admin,
    create_client: Callable[..., RegisteredClient],
    audit_log: Callable[[], list[dict[str, Any]]],
) -> None:
    workload = create_client(name="workload")
    body = {
        "client_id": workload.client_id,
        "issuer": "https://token.actions.githubusercontent.com",
        "subject": "repo:example/app:ref:refs/heads/main",
        "audience": ISSUER,
    }
    added = admin.call("POST", "/trusts", json=body)
    assert added.status_code == 201, added.text
    trust = added.json()
    assert trust["trust_id"].startswith("trs_")
    assert added.headers["Location"] == f"{API}/trusts/{trust['trust_id']}"
    assert {k: trust[k] for k in body} == body
    assert (trust["allow_reuse"], trust["max_lifetime"], trust["jwks_uri"]) == (False, 3600, None)
    assert admin.call("GET", "/trusts").json() == [trust]
    assert admin.call("GET", f"/trusts/{trust['trust_id']}").json() == trust
    twin = admin.call("POST", "/trusts", json=body)
    assert "already" in assert_problem(twin, 422)["detail"]
    unknown = admin.call("POST", "/trusts", json={**body, "client_id": "nobody"})
    assert "nobody" in assert_problem(unknown, 422)["detail"]

    assert admin.call("DELETE", f"/trusts/{trust['trust_id']}").status_code == 204
    assert_problem(admin.call("GET", f"/trusts/{trust['trust_id']}"), 404)
    events = [e for e in audit_log() if e["event"].startswith("trust.")]
    assert [e["event"] for e in events] == ["trust.added", "trust.deleted"]
    assert all(
        e["actor"] == admin.client.client_id
        and e["client_id"] == workload.client_id
        and e["trust_id"] == trust["trust_id"]
        for e in events
    )


# -- who may call it -------------------------------------------------------------------------


def sign(keys_dir: Path, claims: dict[str, Any], **header: str) -> str:
    """A token signed with the server's own signing key."""
    (key,) = KeyStore(keys_dir).load_all()
    return jwt.encode(
        {"typ": "at+jwt", "alg": key.alg, "kid": key.kid, **header},
        claims,
        key.jwk,
        algorithms=[key.alg],
    )


def admin_claims(client_id: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": ISSUER,
        "sub": client_id,
        "aud": ISSUER,
        "exp": now + 300,
        "iat": now,
        "jti": f"forged-{now}-{sorted(overrides)}",
        "client_id": client_id,
        "scope": ADMIN_SCOPE,
        **overrides,
    }


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_token_signed_with_our_key_and_right_claims_is_accepted(
    admin: Admin, keys_dir: Path
) -> None:
    """The control for the forged tokens below: only the one claim differs in each."""
    token = sign(keys_dir, admin_claims(admin.client.client_id))
    assert admin.call("GET", "/clients", token=token).status_code == 200


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("claims", "header"),
    [
        pytest.param({"exp": int(time.time()) - 5}, {}, id="expired"),
        pytest.param({"iss": "https://other.example.test"}, {}, id="wrong-issuer"),
        pytest.param({"aud": "https://api.example.test"}, {}, id="aud-without-issuer"),
        pytest.param({"aud": ["https://api.example.test"]}, {}, id="aud-list-without-issuer"),
        pytest.param({}, {"typ": "JWT"}, id="typ-not-at+jwt"),
    ],
)
def test_tokens_failing_a_resource_server_check_are_401_invalid_token(
    admin: Admin, keys_dir: Path, claims: dict[str, Any], header: dict[str, str]
) -> None:
    token = sign(keys_dir, admin_claims(admin.client.client_id, **claims), **header)
    refused = admin.call("GET", "/clients", token=token)
    assert_problem(refused, 401)
    assert refused.headers["WWW-Authenticate"].startswith('Bearer realm="authserver"')
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_token_signed_by_another_key_is_401(admin: Admin) -> None:
    other = ECKey.generate_key("P-256")
    token = jwt.encode(
        {"typ": "at+jwt", "alg": "ES256", "kid": "other"},
        admin_claims(admin.client.client_id),
        other,
        algorithms=["ES256"],
    )
    refused = admin.call("GET", "/clients", token=token)
    assert_problem(refused, 401)
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    "authorization",
    [None, "Basic YWRtaW46c2VjcmV0", "Bearer", "Bearer not-a-jwt", "Bearer a.b.c"],
)
def test_no_or_malformed_credentials_are_401_with_a_bearer_challenge(
    admin: Admin, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    refused = requests.get(f"{admin.server.url}{API}/clients", headers=headers, timeout=10)
    assert_problem(refused, 401)
    challenge = refused.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer")
    sent_a_token = authorization is not None and authorization.startswith("Bearer")
    assert ('error="invalid_token"' in challenge) == sent_a_token


def test_a_revoked_token_is_401(admin: Admin) -> None:
    revoked = requests.post(
        f"{admin.server.url}/oauth2/revoke",
        data={"token": admin.token},
        auth=(admin.client.client_id, admin.client.client_secret),
        timeout=10,
    )
    assert revoked.status_code == 200
    refused = admin.call("GET", "/clients")
    assert "revoked" in assert_problem(refused, 401)["detail"]
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]


def test_the_token_of_a_disabled_client_is_401(admin: Admin) -> None:
    second = admin.call("POST", "/clients", json={"name": "admin 2", "scope": ADMIN_SCOPE}).json()
    other = RegisteredClient(second["client_id"], second["client_secret"], second)
    token = get_token(admin.server, other)
    assert admin.call("GET", "/keys", token=token).status_code == 200
    admin.call("PATCH", f"/clients/{other.client_id}", json={"enabled": False})

    def refused() -> list[requests.Response]:  # a 4xx Response itself is falsy
        response = admin.call("GET", "/keys", token=token)
        return [response] if response.status_code == 401 else []

    (response,) = wait_until(refused, 5, "the disabled client's token refused")
    assert "disabled" in assert_problem(response, 401)["detail"]
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_token_without_the_admin_scope_is_403_insufficient_scope(
    admin: Admin, create_client: Callable[..., RegisteredClient]
) -> None:
    service = create_client(scope=f"api {ADMIN_SCOPE}")
    token = get_token(admin.server, service, scope="api")
    refused = admin.call("POST", "/clients", token=token, json={"name": "x", "scope": "api"})
    assert_problem(refused, 403)
    challenge = refused.headers["WWW-Authenticate"]
    assert 'error="insufficient_scope"' in challenge
    assert f'scope="{ADMIN_SCOPE}"' in challenge
    assert admin.call("GET", "/clients", token=get_token(admin.server, service)).status_code == 200


def test_a_token_whose_client_lost_the_admin_scope_is_403(admin: Admin) -> None:
    second = admin.call("POST", "/clients", json={"name": "admin 2", "scope": ADMIN_SCOPE}).json()
    token = get_token(
        admin.server, RegisteredClient(second["client_id"], second["client_secret"], second)
    )
    assert admin.call("GET", "/trusts", token=token).status_code == 200
    admin.call("PATCH", f"/clients/{second['client_id']}", json={"scope": "api"})

    def refused() -> list[requests.Response]:
        response = admin.call("GET", "/trusts", token=token)
        return [response] if response.status_code == 403 else []

    (response,) = wait_until(refused, 5, "the token refused once its client lost the scope")
    assert "no longer" in assert_problem(response, 403)["detail"]
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_client_with_audiences_needs_the_issuer_among_them(
    admin: Admin, create_client: Callable[..., RegisteredClient]
) -> None:
    elsewhere = create_client(scope=ADMIN_SCOPE, audiences=["https://api.example.test"])
    refused = admin.call("GET", "/clients", token=get_token(admin.server, elsewhere))
    assert "audience" in assert_problem(refused, 401)["detail"]
    both = create_client(scope=ADMIN_SCOPE, audiences=["https://api.example.test", ISSUER])
    assert admin.call("GET", "/clients", token=get_token(admin.server, both)).status_code == 200


# -- the switch and the description ----------------------------------------------------------


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_served_description_holds_the_admin_api(live_server: LiveServer) -> None:
    served = requests.get(f"{live_server.url}/openapi.json", timeout=10).json()
    assert served == DOCUMENT_WITH_ADMIN
    described = {
        (path, method.upper())
        for path, item in served["paths"].items()
        for method in item
        if path.startswith(API)
    }
    assert described == {(r.path, m) for r in ADMIN_ROUTES for m in r.methods}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("settings_overrides", [{"admin_api": False}], indirect=True)
def test_admin_api_off_answers_404_everywhere_and_is_not_described(
    live_server: LiveServer, create_client: Callable[..., RegisteredClient]
) -> None:
    client = create_client(name="admin", scope=ADMIN_SCOPE)
    token = get_token(live_server, client)
    for route in ADMIN_ROUTES:
        path = route.path.replace("{", "").replace("}", "")
        for method in route.methods:
            response = requests.request(
                method,
                f"{live_server.url}{path}",
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            )
            assert response.status_code == 404, (method, path)
    assert requests.get(f"{live_server.url}/admin", timeout=10).status_code == 404
    served = requests.get(f"{live_server.url}/openapi.json", timeout=10).json()
    assert not [p for p in served["paths"] if p.startswith("/admin")]
    assert "adminToken" not in served["components"]["securitySchemes"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_cli_registers_an_admin_client_whose_token_opens_the_api(
    live_server: LiveServer, settings: Settings
) -> None:
    cli = in_process_cli(settings)
    result = cli("clients", "create", "--name", "admin", "--scope", ADMIN_SCOPE, "--json")
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    token = get_token(
        live_server, RegisteredClient(created["client_id"], created["client_secret"], created)
    )
    response = requests.get(
        f"{live_server.url}{API}/clients",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 200
    assert [c["name"] for c in response.json()] == ["admin"]


def test_admin_api_setting_is_on_by_default_and_takes_on_or_off() -> None:
    assert Settings.from_env({}).admin_api is True
    assert Settings.from_env({"AUTHSERVER_ADMIN_API": "off"}).admin_api is False
    with pytest.raises(ConfigError, match="AUTHSERVER_ADMIN_API must be one of on, off"):
        Settings.from_env({"AUTHSERVER_ADMIN_API": "yes"})
