"""Error responses of ``POST /oauth2/token`` over real HTTP: every row of the contract's error
table except rate limiting (RFC 6749 §5.2 JSON, ``Cache-Control: no-store``, never a 5xx)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
import requests
from flask import Flask

from authserver.extensions import db
from authserver.services import registry
from tests.conftest import LiveServer, RegisteredClient
from tests.support.oauth import once_workers_see_registry_changes

FORM = "application/x-www-form-urlencoded"
CHALLENGE = 'Basic realm="authserver"'


def assert_oauth_error(response: requests.Response, status: int, error: str) -> dict[str, Any]:
    """An RFC 6749 §5.2 error with the given status and code, uncacheable."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers.get("Content-Type", "").startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["error"] == error, body
    assert isinstance(body.get("error_description"), str)
    assert body["error_description"]
    assert response.headers.get("Cache-Control") == "no-store"
    assert "Set-Cookie" not in response.headers
    return body


def basic_header(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def post_basic(
    http: requests.Session,
    live_server: LiveServer,
    client: RegisteredClient,
    data: Any,
    **kwargs: Any,
) -> requests.Response:
    return http.post(
        live_server.token_url,
        data=data,
        auth=(client.client_id, client.client_secret),
        timeout=30,
        **kwargs,
    )


@pytest.fixture
def client(create_client: Callable[..., RegisteredClient]) -> RegisteredClient:
    return create_client(scope="read write", audiences=["https://a.example.test"])


# --- 400 invalid_request -----------------------------------------------------------------


def test_token_rejects_missing_grant_type(
    live_server: LiveServer, http: requests.Session, client: RegisteredClient
) -> None:
    response = post_basic(http, live_server, client, {"scope": "read"})
    assert_oauth_error(response, 400, "invalid_request")


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("grant_type=client_credentials&scope=read&scope=read", id="duplicated-scope"),
        pytest.param(
            "grant_type=client_credentials&grant_type=client_credentials",
            id="duplicated-grant_type",
        ),
        pytest.param(
            "grant_type=client_credentials&audience=https%3A%2F%2Fa.example.test"
            "&audience=https%3A%2F%2Fa.example.test",
            id="duplicated-audience",
        ),
        pytest.param(b"grant_type=client_credentials&scope=read\xff", id="raw-invalid-utf8"),
        pytest.param(b"grant_type=client_credentials&scope=\xc3\x28", id="raw-bad-continuation"),
        pytest.param(b"grant_type=client_credentials&scope=read%FF", id="encoded-invalid-utf8"),
        pytest.param(b"grant_type=client_credentials&scope=read%C3%28", id="encoded-bad-seq"),
        pytest.param(b"grant_type=client_credentials&scope=read%zz", id="percent-non-hex"),
        pytest.param(b"grant_type=client_credentials&scope=read%4", id="percent-truncated"),
        pytest.param(b"grant_type=client_credentials&scope=read&extra=%", id="lone-percent"),
    ],
)
def test_token_rejects_duplicated_parameter_or_body_not_utf8_or_bad_percent_encoding(
    live_server: LiveServer, http: requests.Session, client: RegisteredClient, body: str | bytes
) -> None:
    response = post_basic(http, live_server, client, body, headers={"Content-Type": FORM})
    assert_oauth_error(response, 400, "invalid_request")


def test_token_rejects_duplicated_client_id_in_body(
    live_server: LiveServer, http: requests.Session, client: RegisteredClient
) -> None:
    data = [
        ("grant_type", "client_credentials"),
        ("client_id", client.client_id),
        ("client_id", client.client_id),
        ("client_secret", client.client_secret),
    ]
    response = http.post(live_server.token_url, data=data, timeout=30)
    assert_oauth_error(response, 400, "invalid_request")


def test_token_rejects_json_body(
    live_server: LiveServer, http: requests.Session, client: RegisteredClient
) -> None:
    response = post_basic(
        http, live_server, client, None, json={"grant_type": "client_credentials"}
    )
    assert_oauth_error(response, 400, "invalid_request")


def test_token_rejects_multipart_body(
    live_server: LiveServer, http: requests.Session, client: RegisteredClient
) -> None:
    response = post_basic(
        http,
        live_server,
        client,
        {"grant_type": "client_credentials"},
        files={"scope": ("scope.txt", b"read")},
    )
    assert response.request.headers["Content-Type"].startswith("multipart/form-data")
    assert_oauth_error(response, 400, "invalid_request")


def test_token_rejects_form_body_without_content_type(
    live_server: LiveServer, http: requests.Session, client: RegisteredClient
) -> None:
    request = requests.Request(
        "POST",
        live_server.token_url,
        data=b"grant_type=client_credentials",
        auth=(client.client_id, client.client_secret),
    ).prepare()
    request.headers.pop("Content-Type", None)
    response = http.send(request, timeout=30)
    assert_oauth_error(response, 400, "invalid_request")


def test_token_rejects_resource_together_with_audience(
    live_server: LiveServer, http: requests.Session, client: RegisteredClient
) -> None:
    data = {
        "grant_type": "client_credentials",
        "resource": "https://a.example.test",
        "audience": "https://a.example.test",
    }
    response = post_basic(http, live_server, client, data)
    assert_oauth_error(response, 400, "invalid_request")


def test_token_rejects_secret_in_both_basic_header_and_body(
    live_server: LiveServer, http: requests.Session, client: RegisteredClient
) -> None:
    data = {"grant_type": "client_credentials", "client_secret": client.client_secret}
    response = post_basic(http, live_server, client, data)
    assert_oauth_error(response, 400, "invalid_request")


# --- 405 and 413 ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_token_endpoint_answers_other_methods_with_405_allow_post(
    live_server: LiveServer, http: requests.Session, client: RegisteredClient, method: str
) -> None:
    response = http.request(
        method,
        live_server.token_url,
        data={"grant_type": "client_credentials"},
        auth=(client.client_id, client.client_secret),
        timeout=30,
    )
    assert_oauth_error(response, 405, "invalid_request")
    assert response.headers["Allow"] == "POST"


def test_token_rejects_body_over_64_kib_with_413(
    live_server: LiveServer, http: requests.Session, client: RegisteredClient
) -> None:
    body = "grant_type=client_credentials&padding=" + "a" * (64 * 1024)
    response = post_basic(http, live_server, client, body, headers={"Content-Type": FORM})
    assert_oauth_error(response, 413, "invalid_request")


def test_token_accepts_body_just_under_64_kib(
    live_server: LiveServer, http: requests.Session, client: RegisteredClient
) -> None:
    """The 413 boundary is the limit, not some smaller size."""
    prefix = "grant_type=client_credentials&padding="
    body = prefix + "a" * (64 * 1024 - len(prefix))
    assert len(body) == 64 * 1024
    response = post_basic(http, live_server, client, body, headers={"Content-Type": FORM})
    assert response.status_code == 200, response.text


# --- 401 invalid_client --------------------------------------------------------------------


def test_token_rejects_request_without_client_authentication(
    live_server: LiveServer, http: requests.Session, client: RegisteredClient
) -> None:
    response = http.post(
        live_server.token_url, data={"grant_type": "client_credentials"}, timeout=30
    )
    assert_oauth_error(response, 401, "invalid_client")


def test_token_rejects_client_secret_post_without_secret(
    live_server: LiveServer, http: requests.Session, client: RegisteredClient
) -> None:
    data = {"grant_type": "client_credentials", "client_id": client.client_id}
    response = http.post(live_server.token_url, data=data, timeout=30)
    assert_oauth_error(response, 401, "invalid_client")


@pytest.mark.parametrize(
    "wrong", ["client_id", "client_secret"], ids=["unknown-client", "wrong-secret"]
)
def test_token_rejects_unknown_client_or_wrong_secret_with_basic_challenge(
    live_server: LiveServer, http: requests.Session, client: RegisteredClient, wrong: str
) -> None:
    if wrong == "client_id":
        auth = ("cli_doesnotexist", client.client_secret)
    else:
        auth = (client.client_id, client.client_secret + "x")
    response = http.post(
        live_server.token_url, data={"grant_type": "client_credentials"}, auth=auth, timeout=30
    )
    assert_oauth_error(response, 401, "invalid_client")
    assert response.headers["WWW-Authenticate"] == CHALLENGE


def test_token_rejects_wrong_secret_in_body_without_basic_challenge(
    live_server: LiveServer, http: requests.Session, client: RegisteredClient
) -> None:
    """README: a failed client_secret_post gets the 401 without a Basic challenge."""
    data = {
        "grant_type": "client_credentials",
        "client_id": client.client_id,
        "client_secret": client.client_secret + "x",
    }
    response = http.post(live_server.token_url, data=data, timeout=30)
    assert_oauth_error(response, 401, "invalid_client")
    assert "WWW-Authenticate" not in response.headers


def test_token_rejects_unknown_client_in_body(
    live_server: LiveServer, http: requests.Session, client: RegisteredClient
) -> None:
    data = {
        "grant_type": "client_credentials",
        "client_id": "cli_doesnotexist",
        "client_secret": client.client_secret,
    }
    response = http.post(live_server.token_url, data=data, timeout=30)
    assert_oauth_error(response, 401, "invalid_client")


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_token_rejects_disabled_client(
    app: Flask,
    live_server: LiveServer,
    http: requests.Session,
    client: RegisteredClient,
    method: str,
) -> None:
    form = {"grant_type": "client_credentials"}
    auth = (client.client_id, client.client_secret)
    post_form = {**form, "client_id": client.client_id, "client_secret": client.client_secret}
    # Enabled first, so the 401 below is caused by disabling and nothing else.
    assert post_basic(http, live_server, client, form).status_code == 200
    with app.app_context():
        registry.set_enabled(db.session(), client.client_id, False)
        db.session.commit()
    once_workers_see_registry_changes(
        lambda: post_basic(http, live_server, client, form).status_code == 401,
        "the disabled client refused",
    )

    if method == "client_secret_basic":
        response = http.post(live_server.token_url, data=form, auth=auth, timeout=30)
        assert_oauth_error(response, 401, "invalid_client")
        assert response.headers["WWW-Authenticate"] == CHALLENGE
    else:
        response = http.post(live_server.token_url, data=post_form, timeout=30)
        assert_oauth_error(response, 401, "invalid_client")


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"no-colon-in-here").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:\xfd").decode(),
        "Basic " + base64.b64encode(b":secret-without-id").decode(),
        "Basic",
        "Basic ",
    ],
    ids=["bad-base64", "missing-colon", "not-utf8", "empty-id", "no-credentials", "empty"],
)
def test_token_rejects_malformed_basic_header_with_challenge(
    live_server: LiveServer,
    http: requests.Session,
    client: RegisteredClient,
    authorization: str,
) -> None:
    response = http.post(
        live_server.token_url,
        data={"grant_type": "client_credentials"},
        headers={"Authorization": authorization},
        timeout=30,
    )
    assert_oauth_error(response, 401, "invalid_client")
    assert response.headers["WWW-Authenticate"] == CHALLENGE


@pytest.mark.parametrize("scheme", ["Bearer", "Digest", "Negotiate"])
def test_token_rejects_non_basic_authorization_scheme(
    live_server: LiveServer,
    http: requests.Session,
    client: RegisteredClient,
    scheme: str,
) -> None:
    # The body credentials are valid: an Authorization header in another scheme must not be
    # silently ignored in favour of them.
    data = {
        "grant_type": "client_credentials",
        "client_id": client.client_id,
        "client_secret": client.client_secret,
    }
    response = http.post(
        live_server.token_url,
        data=data,
        headers={"Authorization": f"{scheme} abcdef"},
        timeout=30,
    )
    assert_oauth_error(response, 401, "invalid_client")
    # RFC 7235 §3.1: a 401 carries a challenge; Basic is the only scheme accepted here.
    assert response.headers["WWW-Authenticate"] == CHALLENGE


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
@pytest.mark.parametrize(
    "where", ["client_id", "client_secret"], ids=["nul-in-client-id", "nul-in-secret"]
)
def test_token_rejects_nul_byte_in_credentials_as_invalid_client(
    live_server: LiveServer,
    http: requests.Session,
    client: RegisteredClient,
    method: str,
    where: str,
) -> None:
    credentials = {"client_id": client.client_id, "client_secret": client.client_secret}
    credentials[where] += "\x00"
    if method == "client_secret_basic":
        response = http.post(
            live_server.token_url,
            data={"grant_type": "client_credentials"},
            auth=(credentials["client_id"], credentials["client_secret"]),
            timeout=30,
        )
    else:
        data = {"grant_type": "client_credentials", **credentials}
        response = http.post(live_server.token_url, data=data, timeout=30)
    assert_oauth_error(response, 401, "invalid_client")


# --- unsupported_grant_type, invalid_scope, invalid_target --------------------------------


@pytest.mark.parametrize(
    "grant_type",
    [
        "authorization_code",
        "password",
        "refresh_token",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "CLIENT_CREDENTIALS",
        'garbage"with\\quotes',
        "gr\u00e4nt-\u2603-\U0001f600",
    ],
)
def test_token_rejects_grant_type_other_than_client_credentials(
    live_server: LiveServer, http: requests.Session, client: RegisteredClient, grant_type: str
) -> None:
    data = {"grant_type": grant_type, "code": "x", "username": "u", "password": "p"}
    response = post_basic(http, live_server, client, data)
    body = assert_oauth_error(response, 400, "unsupported_grant_type")
    # RFC 6749 §5.2: error_description is limited to %x20-21 / %x23-5B / %x5D-7E.
    assert all(0x20 <= ord(c) <= 0x7E and c not in '"\\' for c in body["error_description"])


@pytest.mark.parametrize(
    "scope", ["admin", "read admin", "READ", "read:all"], ids=["other", "mixed", "case", "suffix"]
)
def test_token_rejects_scope_not_registered_for_client(
    live_server: LiveServer, http: requests.Session, client: RegisteredClient, scope: str
) -> None:
    data = {"grant_type": "client_credentials", "scope": scope}
    response = post_basic(http, live_server, client, data)
    assert_oauth_error(response, 400, "invalid_scope")


@pytest.mark.parametrize(
    "data",
    [
        [("resource", "https://other.example.test")],
        [("resource", "https://a.example.test"), ("resource", "https://other.example.test")],
        [("resource", "https://a.example.test/")],
        [("resource", "https://a.example.test#frag")],
        [("resource", "not a uri")],
        [("audience", "https://other.example.test")],
        [("audience", "https://auth.example.test")],
    ],
    ids=[
        "resource-other",
        "one-of-two-resources",
        "resource-trailing-slash",
        "resource-fragment",
        "resource-not-uri",
        "audience-other",
        "audience-default-not-registered",
    ],
)
def test_token_rejects_resource_or_audience_not_allowed_for_client(
    live_server: LiveServer,
    http: requests.Session,
    client: RegisteredClient,
    data: list[tuple[str, str]],
) -> None:
    form = [("grant_type", "client_credentials"), *data]
    response = post_basic(http, live_server, client, form)
    assert_oauth_error(response, 400, "invalid_target")


def test_token_rejects_audience_for_client_without_audiences_other_than_default(
    live_server: LiveServer,
    http: requests.Session,
    create_client: Callable[..., RegisteredClient],
) -> None:
    client = create_client(audiences=[])
    data = {"grant_type": "client_credentials", "resource": "https://a.example.test"}
    response = post_basic(http, live_server, client, data)
    assert_oauth_error(response, 400, "invalid_target")


# --- hostile input -------------------------------------------------------------------------


def hostile_requests(live_server: LiveServer, client: RegisteredClient) -> list[dict[str, Any]]:
    """Requests that must all fail cleanly; none carries working credentials."""
    url = live_server.token_url
    bad_auth = basic_header(client.client_id, "wrong")
    many_params = "&".join(f"p{i}=v" for i in range(7000))
    assert len(many_params) < 64 * 1024
    return [
        {"headers": {"Authorization": "Basic " + "A" * 8000}},
        {"headers": {"Authorization": "Basic " + base64.b64encode(b"i:" * 3000).decode()}},
        {"headers": {"Authorization": bad_auth, "X-Padding": "x" * 8000}},
        {"headers": {"Authorization": "Basic " + base64.b64encode(b"\x00:\x00").decode()}},
        {"headers": {"Authorization": basic_header(client.client_id + "\x00", "x")}},
        {"headers": {"Authorization": basic_header(client.client_id, "x\x00")}},
        {"headers": {"Authorization": "Basic \x00\x00"}},
        {"headers": {"Authorization": "\x00 \x00"}},
        {"headers": {"Authorization": bad_auth, "Content-Type": FORM + "; charset=\x00"}},
        {"data": b"grant_type=client_credentials\x00&scope=\x00", "ctype": FORM},
        {"data": b"\x00\x00\x00", "ctype": FORM},
        {"data": b"grant_type=client_credentials%00", "ctype": FORM},
        {"data": b"grant_type=client_credentials", "ctype": FORM + "; charset=latin-1"},
        {"data": b"grant_type=client_credentials", "ctype": FORM + '; charset="unterminated'},
        {"data": b"grant_type=client_credentials", "ctype": FORM + ";;;=;=="},
        {"data": b"grant_type=client_credentials", "ctype": FORM + "; boundary=--x; q=\u00ff"},
        {"data": b"grant_type=client_credentials", "ctype": "multipart/form-data"},
        {"data": b"--x\r\n\r\n", "ctype": "multipart/form-data; boundary=x"},
        {"data": b"grant_type=client_credentials", "ctype": ""},
        {"data": b"grant_type=client_credentials", "ctype": "/"},
        {"data": b"grant_type=client_credentials", "ctype": "text/plain; charset=utf-8"},
        {"data": b'{"grant_type": "client_credentials"}', "ctype": "application/json"},
        {"data": b"\xef\xbb\xbfgrant_type=client_credentials", "ctype": FORM},
        {"data": ("grant_type=client_credentials&" + many_params).encode(), "ctype": FORM},
        {"data": ("&" * 60000).encode(), "ctype": FORM},
        {"data": ("=" * 60000).encode(), "ctype": FORM},
        {"data": ("%" * 60000).encode(), "ctype": FORM},
        {"data": ("resource=https%3A%2F%2Fa.example.test&" * 1500).encode(), "ctype": FORM},
        {"data": b"grant_type=client_credentials&scope=" + b"a " * 30000, "ctype": FORM},
        {"data": b"grant_type=client_credentials&client_id=\xff&client_secret=x", "ctype": FORM},
        {"data": b"grant_type=client_credentials&client_id=%00&client_secret=%00", "ctype": FORM},
        {"data": b"grant_type=client_credentials", "ctype": FORM, "url": url + "?x=%ff&y"},
        {"data": b"grant_type=client_credentials", "ctype": FORM, "url": url + "/"},
    ]


def test_token_answers_hostile_inputs_with_json_errors_never_5xx(
    live_server: LiveServer, http: requests.Session, client: RegisteredClient
) -> None:
    failures: list[str] = []
    for index, spec in enumerate(hostile_requests(live_server, client)):
        headers = {"Content-Type": spec.get("ctype", FORM), **spec.get("headers", {})}
        response = http.post(
            spec.get("url", live_server.token_url),
            data=spec.get("data", b"grant_type=client_credentials"),
            headers=headers,
            timeout=30,
        )
        problem = _problem_with_error_response(response)
        if problem:
            failures.append(f"#{index} {spec!r:.160}: {problem}")
    assert not failures, "\n".join(failures)


def _problem_with_error_response(response: requests.Response) -> str | None:
    if response.status_code >= 500:
        return f"status {response.status_code}: {response.text[:200]!r}"
    if not 400 <= response.status_code < 500:
        return f"status {response.status_code} is not a 4xx error"
    try:
        body = response.json()
    except json.JSONDecodeError:
        return f"body is not JSON: {response.text[:200]!r}"
    if not isinstance(body, dict) or not body.get("error") or not body.get("error_description"):
        return f"body lacks error/error_description: {body!r}"
    if response.headers.get("Cache-Control") != "no-store":
        return f"Cache-Control is {response.headers.get('Cache-Control')!r}"
    return None
