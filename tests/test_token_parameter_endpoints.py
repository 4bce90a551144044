"""Request errors that introspection (RFC 7662) and revocation (RFC 7009) answer alike, over
real HTTP on SQLite and PostgreSQL. Introspection errors are also checked for a JSON body with
an ``error_description`` (``json_error``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from tests.conftest import LiveServer
from tests.support.oauth import (
    SECRET_METHODS,
    CreateClient,
    TokenParameterEndpoint,
    introspect,
    json_error,
    oauth_error,
    revoke,
)

CheckError = Callable[[requests.Response, int, str], Any]


@pytest.mark.parametrize("method", SECRET_METHODS)
@pytest.mark.parametrize(
    ("endpoint", "check"),
    [
        pytest.param(introspect, json_error, id="introspect"),
        pytest.param(revoke, oauth_error, id="revoke"),
    ],
)
def test_a_request_without_a_token_is_invalid_request(
    http: requests.Session,
    live_server: LiveServer,
    create_client: CreateClient,
    endpoint: TokenParameterEndpoint,
    check: CheckError,
    method: str,
) -> None:
    client = create_client()
    for form in ({}, {"token": ""}, {"token_type_hint": "access_token"}):
        check(endpoint(http, live_server, client, None, method, form), 400, "invalid_request")


@pytest.mark.parametrize(
    ("endpoint", "check", "verbs"),
    [
        pytest.param(introspect, json_error, ("GET", "PUT", "DELETE", "PATCH"), id="introspect"),
        pytest.param(revoke, oauth_error, ("GET",), id="revoke"),
    ],
)
def test_methods_other_than_post_are_405_with_allow_post(
    http: requests.Session,
    live_server: LiveServer,
    create_client: CreateClient,
    endpoint: TokenParameterEndpoint,
    check: CheckError,
    verbs: tuple[str, ...],
) -> None:
    client = create_client()
    for verb in verbs:
        response = http.request(
            verb,
            f"{live_server.url}{endpoint.path}",
            auth=(client.client_id, client.client_secret),
            timeout=10,
        )
        check(response, 405, "invalid_request")
        assert response.headers["Allow"] == "POST", verb
