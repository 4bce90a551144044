"""The published OpenAPI document against the live server: schemathesis generates requests for
every documented operation (valid and invalid ones, some with the real client's credentials
and a real token) and every answer must be exactly what the document says — status code,
content type, headers, body schema — never a 5xx, and the server stays ready afterwards."""

from __future__ import annotations

import base64
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    missing_required_header,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from authserver.http.openapi import DOCUMENT
from tests.conftest import LiveServer, RegisteredClient

#: Every path of the contract's HTTP table.
CONTRACT_PATHS = {
    "/oauth2/token",
    "/oauth2/introspect",
    "/oauth2/revoke",
    "/.well-known/jwks.json",
    "/oauth2/jwks",
    "/.well-known/oauth-authorization-server",
    "/healthz",
    "/readyz",
    "/metrics",
}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    unsupported_method,
    missing_required_header,
]

schema = schemathesis.openapi.from_dict(DOCUMENT)

#: How a request authenticates: as generated, or with the real client's secret in either way.
AUTH_MODES = ("generated", "basic", "post")


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    """Generated credentials fail constantly; the limits would turn that into 429s. The
    admin API is fuzzed with an admin token by test_admin_api_fuzz.py: here, without it,
    ``DOCUMENT`` is exactly what is served."""
    return {"ratelimit_enabled": False, "admin_api": False}


@dataclass(frozen=True)
class Target:
    url: str
    client: RegisteredClient
    access_token: str


@pytest.fixture
def target(
    live_server: LiveServer, create_client: Callable[..., RegisteredClient]
) -> Iterator[Target]:
    """The live server, a registered client and one of its tokens; ready again at the end."""
    client = create_client()
    response = requests.post(
        live_server.token_url,
        data={"grant_type": "client_credentials"},
        auth=(client.client_id, client.client_secret),
        timeout=10,
    )
    response.raise_for_status()
    yield Target(live_server.url, client, response.json()["access_token"])
    ready = requests.get(f"{live_server.url}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text


def _with_real_credentials(case: schemathesis.Case, target: Target, mode: str) -> None:
    headers = case.headers if case.headers is not None else {}
    case.headers = headers
    body = case.body if isinstance(case.body, dict) else None
    if mode == "basic":
        raw = f"{target.client.client_id}:{target.client.client_secret}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        if body is not None:
            body.pop("client_secret", None)
            body.pop("client_id", None)
    elif mode == "post" and body is not None:
        headers.pop("Authorization", None)
        body["client_id"] = target.client.client_id
        body["client_secret"] = target.client.client_secret
    if body is not None and "token" in body:
        body["token"] = target.access_token


def _auth_mode(case: schemathesis.Case) -> str:
    """Chosen from the generated data itself, so a failing example replays identically
    (``@schema.given`` would rule out the schema's examples, the likeliest successes)."""
    digest = zlib.crc32(repr((case.body, case.headers)).encode())
    return AUTH_MODES[digest % len(AUTH_MODES)]


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_operation_answers_as_documented(case: schemathesis.Case, target: Target) -> None:
    auth_mode = _auth_mode(case)
    if case.operation.method.upper() == "POST" and auth_mode != "generated":
        _with_real_credentials(case, target, auth_mode)
    case.call_and_validate(base_url=target.url, checks=CHECKS, timeout=10)


def test_served_document_loads_and_names_every_contract_path(live_server: LiveServer) -> None:
    response = requests.get(f"{live_server.url}/openapi.json", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Cache-Control"].startswith("public")
    assert response.json() == DOCUMENT  # what the fuzzing test reads is what is served
    loaded = schemathesis.openapi.from_url(f"{live_server.url}/openapi.json")
    assert loaded.raw_schema["openapi"].startswith("3.1")
    assert set(loaded.raw_schema["paths"]) == CONTRACT_PATHS | {"/openapi.json"}
    # Every operation resolves (refs, schemas); schemathesis leaves out the document's own path.
    operations = {result.ok().label for result in loaded.get_all_operations()}
    assert operations == {
        f"{method.upper()} {path}"
        for path, item in loaded.raw_schema["paths"].items()
        for method in item
        if path != "/openapi.json"
    }


@pytest.mark.parametrize("path", ["/oauth2/token", "/oauth2/introspect", "/oauth2/revoke"])
def test_repeated_parameter_named_with_a_quote_is_a_documented_400(
    path: str, target: Target
) -> None:
    """A shape the fuzzing above found (at higher example counts): a repeated parameter whose
    name holds a single quote. Pinned here so that it is checked on every run."""
    operation = schema[path]["POST"]
    case = operation.Case(
        body={"grant_type": "client_credentials", "token": "x", "a'": ["1", "2"]},
        media_type="application/x-www-form-urlencoded",
    )
    response = case.call_and_validate(base_url=target.url, checks=CHECKS, timeout=10)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
