"""Requests to the live server's OAuth endpoints (token, introspection, revocation) as a
registered client, with either client authentication method."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from tests.conftest import LiveServer, RegisteredClient
from tests.support.waiting import wait_until

SECRET_METHODS = ["client_secret_basic", "client_secret_post"]
#: The contract: a registry change (a client disabled or deleted, a secret rotated) reaches
#: every worker within 2 seconds.
REGISTRY_CHANGE_SECONDS = 2.0

CreateClient = Callable[..., RegisteredClient]


def once_workers_see_registry_changes(observed: Callable[[], object], what: str) -> None:
    """Wait until ``observed()`` is true: the effect of a registry change seen through the
    server, whose workers keep client registrations for a moment. Fails naming ``what`` if
    the change takes longer than the contract's 2 seconds to count."""
    wait_until(observed, REGISTRY_CHANGE_SECONDS, what)


def issue_token(
    http: requests.Session, live_server: LiveServer, client: RegisteredClient, **data: str
) -> str:
    """A client_credentials access token for ``client`` (client_secret_basic)."""
    form = {"grant_type": "client_credentials", **data}
    response = http.post(
        live_server.token_url, data=form, auth=(client.client_id, client.client_secret), timeout=10
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def post_as(
    http: requests.Session,
    url: str,
    caller: RegisteredClient | None,
    form: dict[str, str],
    method: str = "client_secret_basic",
) -> requests.Response:
    """POST ``form`` to ``url`` authenticating ``caller`` with ``method`` (nobody: ``None``)."""
    if caller is None:
        return http.post(url, data=form, timeout=10)
    if method == "client_secret_basic":
        return http.post(url, data=form, auth=(caller.client_id, caller.client_secret), timeout=10)
    assert method == "client_secret_post"
    form = {**form, "client_id": caller.client_id, "client_secret": caller.client_secret}
    return http.post(url, data=form, timeout=10)


@dataclass(frozen=True)
class TokenParameterEndpoint:
    """An endpoint that takes a ``token`` parameter: introspection or revocation."""

    path: str

    def __call__(
        self,
        http: requests.Session,
        live_server: LiveServer,
        caller: RegisteredClient | None,
        token: str | None,
        method: str = "client_secret_basic",
        extra: dict[str, str] | None = None,
    ) -> requests.Response:
        """POST ``extra`` and, unless it is ``None``, ``token``, authenticating ``caller``."""
        form: dict[str, str] = dict(extra or {})
        if token is not None:
            form["token"] = token
        return post_as(http, f"{live_server.url}{self.path}", caller, form, method)


introspect = TokenParameterEndpoint("/oauth2/introspect")
revoke = TokenParameterEndpoint("/oauth2/revoke")


def oauth_error(response: requests.Response, status: int, error: str) -> dict[str, Any]:
    """A JSON error with this status and ``error`` code that no cache may keep."""
    assert response.status_code == status, response.text
    assert response.headers.get("Cache-Control") == "no-store"
    body: dict[str, Any] = response.json()
    assert body["error"] == error
    return body


def json_error(response: requests.Response, status: int, error: str) -> dict[str, Any]:
    """``oauth_error``, and the body is JSON with an ``error_description``."""
    body = oauth_error(response, status, error)
    assert response.headers["Content-Type"].startswith("application/json")
    assert isinstance(body.get("error_description"), str)
    return body
