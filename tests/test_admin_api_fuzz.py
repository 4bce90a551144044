"""The admin API's part of /openapi.json against the live server: schemathesis generates
requests for every admin operation (valid and invalid bodies and parameters) with a valid
admin token, and every answer must be what the document says — status code, content type,
headers, body schema — never a 5xx. Then each operation once with real ids, so that the
success answers are checked against their schemas too."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Response
from schemathesis.checks import CheckContext
from schemathesis.generation.meta import CoveragePhaseData, CoverageScenario
from schemathesis.specs.openapi.checks import negative_data_rejection

from authserver.http.openapi import DOCUMENT_WITH_ADMIN
from tests.conftest import LiveServer, RegisteredClient
from tests.test_admin_api import get_token
from tests.test_openapi_fuzz import CHECKS

schema = schemathesis.openapi.from_dict(DOCUMENT_WITH_ADMIN).include(path_regex="^/admin/")


def rejects_negative_data_unless_too_large(
    ctx: CheckContext, response: Response, case: schemathesis.Case
) -> bool | None:
    """``negative_data_rejection``, but a body over 64 KiB is refused unread (413, as the
    document says), whatever it holds: schemathesis does not count 413 as a rejection."""
    if response.status_code == 413:
        return None
    result: bool | None = negative_data_rejection(ctx, response, case)
    return result


ADMIN_CHECKS = [
    rejects_negative_data_unless_too_large if check is negative_data_rejection else check
    for check in CHECKS
]


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


@dataclass(frozen=True)
class Target:
    url: str
    token: str
    #: A client the generated requests may change, rotate or delete (not the admin client).
    client_id: str


@pytest.fixture
def target(
    live_server: LiveServer, create_client: Callable[..., RegisteredClient]
) -> Iterator[Target]:
    admin = create_client(name="admin", scope="authserver:admin")
    victim = create_client(name="victim")
    yield Target(live_server.url, get_token(live_server, admin), victim.client_id)
    ready = requests.get(f"{live_server.url}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text


def _tests_a_missing_token(case: schemathesis.Case) -> bool:
    """Whether schemathesis left the token out on purpose: the answer must then be 401."""
    data = case.meta.phase.data if case.meta is not None else None
    return (
        isinstance(data, CoveragePhaseData)
        and data.scenario == CoverageScenario.MISSING_PARAMETER
        and (data.parameter or "").lower() == "authorization"
    )


def _authorised(case: schemathesis.Case, target: Target) -> None:
    if not _tests_a_missing_token(case):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {target.token}"}


@schema.parametrize()
@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_admin_operation_answers_as_documented(
    case: schemathesis.Case, target: Target
) -> None:
    _authorised(case, target)
    parameters = case.path_parameters or {}
    if "client_id" in parameters and zlib.crc32(repr(case.body).encode()) % 2:
        parameters["client_id"] = target.client_id  # a client that exists, half the time
    case.call_and_validate(base_url=target.url, checks=ADMIN_CHECKS, timeout=30)


def _call(
    target: Target,
    method: str,
    path: str,
    status: int = 200,
    *,
    path_parameters: dict[str, str] | None = None,
    body: Any = None,
) -> Any:
    """One request through schemathesis, checked like the generated ones, answered ``status``;
    its JSON body (None for 204)."""
    operation = schema[path][method]
    with_body = {} if body is None else {"body": body, "media_type": "application/json"}
    case = operation.Case(path_parameters=path_parameters or {}, **with_body)
    _authorised(case, target)
    response = case.call_and_validate(base_url=target.url, checks=ADMIN_CHECKS, timeout=30)
    assert response.status_code == status, response.text
    return None if status == 204 else response.json()


def test_each_admin_operation_succeeds_as_documented(target: Target) -> None:
    clients, trusts = "/admin/v1/clients", "/admin/v1/trusts"
    created = _call(target, "POST", clients, 201, body={"name": "new", "scope": "api"})
    by_id = {"client_id": created["client_id"]}
    assert len(_call(target, "GET", clients)) == 3
    _call(target, "GET", clients + "/{client_id}", path_parameters=by_id)
    change = {"max_tokens_per_hour": 10, "enabled": False, "audiences": ["urn:example:a"]}
    _call(target, "PATCH", clients + "/{client_id}", path_parameters=by_id, body=change)
    rotation = clients + "/{client_id}/rotate-secret"
    _call(target, "POST", rotation, path_parameters=by_id, body={"grace": 0})
    trust = {
        "client_id": created["client_id"],
        "issuer": "https://issuer.example.test",
        "subject": "system:serviceaccount:*",
        "audience": "authserver",
        "allow_reuse": True,
    }
    by_trust = {"trust_id": _call(target, "POST", trusts, 201, body=trust)["trust_id"]}
    assert _call(target, "GET", trusts)
    _call(target, "GET", trusts + "/{trust_id}", path_parameters=by_trust)
    _call(target, "DELETE", trusts + "/{trust_id}", 204, path_parameters=by_trust)
    _call(target, "DELETE", clients + "/{client_id}", 204, path_parameters=by_id)
    assert _call(target, "GET", "/admin/v1/keys")
    staged = _call(target, "POST", "/admin/v1/keys/rotate", body={"now": False})
    revoked = _call(
        target, "POST", "/admin/v1/keys/{kid}/revoke", path_parameters={"kid": staged["kid"]}
    )
    assert revoked["kid"] == staged["kid"]
