"""Property-based fuzzing of the OAuth endpoints over real HTTP: whatever arrives, the answer
is a JSON OAuth error or success, never a 5xx, and the server stays healthy."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import LiveServer, RegisteredClient

PATHS = ["/oauth2/token", "/oauth2/introspect", "/oauth2/revoke"]
PARAMETER_NAMES = st.sampled_from(
    [
        "grant_type",
        "scope",
        "resource",
        "audience",
        "client_id",
        "client_secret",
        "token",
        "token_type_hint",
    ]
) | st.text(max_size=20)
PARAMETER_VALUES = st.sampled_from(
    ["client_credentials", "api", "https://auth.example.test", "", "%", "\x00"]
) | st.text(max_size=200)
CONTENT_TYPES = st.sampled_from(
    [
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=latin-1",
        "application/json",
        "multipart/form-data; boundary=x",
        "text/plain",
        "",
    ]
)
AUTHORIZATIONS = (
    st.none()
    | st.sampled_from(["Basic", "Basic !!!", "Bearer x", "Basic Og=="])
    | (st.binary(max_size=60).map(lambda raw: "Basic " + raw.hex()))
)

#: Hypothesis examples per test: enough to cover the shapes, bounded so CI stays quick.
EXAMPLES = 150


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    """Fuzzing fails authentication constantly; the limits would turn that into 429s."""
    return {"ratelimit_enabled": False}


def assert_oauth_answer(response: requests.Response) -> None:
    assert response.status_code < 500, response.text
    body = response.json()
    assert isinstance(body, dict)
    if response.status_code >= 400:
        assert isinstance(body["error"], str)
        assert isinstance(body["error_description"], str)
    assert "Traceback" not in response.text


def test_fuzzed_form_requests_never_get_a_server_error(
    http: requests.Session, live_server: LiveServer, create_client: Callable[..., RegisteredClient]
) -> None:
    client = create_client()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        path=st.sampled_from(PATHS),
        pairs=st.lists(st.tuples(PARAMETER_NAMES, PARAMETER_VALUES), max_size=8),
        content_type=CONTENT_TYPES,
        authorization=AUTHORIZATIONS,
        use_real_credentials=st.booleans(),
    )
    def check(
        path: str,
        pairs: list[tuple[str, str]],
        content_type: str,
        authorization: str | None,
        use_real_credentials: bool,
    ) -> None:
        headers = {"Content-Type": content_type}
        if authorization is not None:
            headers["Authorization"] = authorization
        auth = (client.client_id, client.client_secret) if use_real_credentials else None
        body = "&".join(f"{name}={value}" for name, value in pairs).encode("utf-8", "replace")
        response = http.post(
            live_server.url + path, data=body, headers=headers, auth=auth, timeout=10
        )
        assert_oauth_answer(response)

    check()
    assert http.get(live_server.url + "/readyz", timeout=10).status_code == 200


def test_fuzzed_raw_bytes_never_get_a_server_error(
    http: requests.Session, live_server: LiveServer
) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(path=st.sampled_from(PATHS), body=st.binary(max_size=2000))
    def check(path: str, body: bytes) -> None:
        response = http.post(
            live_server.url + path,
            data=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            timeout=10,
        )
        assert_oauth_answer(response)

    check()
    assert http.get(live_server.url + "/healthz", timeout=10).status_code == 200
