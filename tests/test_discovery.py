"""The JWK Set (RFC 7517) and server metadata (RFC 8414), fetched over real HTTP."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from authserver.security.keys import KeyStore
from tests.conftest import ISSUER, LiveServer
from tests.support.waiting import wait_until

JWKS_PATHS = ("/.well-known/jwks.json", "/oauth2/jwks")
METADATA_PATH = "/.well-known/oauth-authorization-server"
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Tests may pass overrides with ``indirect`` parametrization."""
    return dict(getattr(request, "param", {}))


def b64url_int(value: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")


def get_jwks(http: requests.Session, live_server: LiveServer, **headers: str) -> requests.Response:
    return http.get(live_server.jwks_url, headers=headers, timeout=10)


def assert_json_error(response: requests.Response) -> dict[str, Any]:
    assert response.headers["Content-Type"].startswith("application/json")
    assert "<html" not in response.text.lower()
    assert "Traceback" not in response.text
    body: dict[str, Any] = response.json()
    assert isinstance(body.get("error"), str)
    return body


# --- JWKS -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", JWKS_PATHS)
def test_jwks_is_served_as_json_at_both_paths(
    http: requests.Session, live_server: LiveServer, path: str
) -> None:
    response = http.get(live_server.url + path, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert isinstance(response.json()["keys"], list)


def test_jwks_paths_return_identical_bodies_and_etags(
    http: requests.Session, live_server: LiveServer
) -> None:
    first, second = (http.get(live_server.url + path, timeout=10) for path in JWKS_PATHS)
    assert first.content == second.content
    assert first.headers["ETag"] == second.headers["ETag"]


def test_jwks_publishes_the_key_on_disk_with_public_members_only(
    http: requests.Session, live_server: LiveServer, keys_dir: Path
) -> None:
    [on_disk] = KeyStore(keys_dir).load_all()
    keys = get_jwks(http, live_server).json()["keys"]
    assert len(keys) == 1
    [jwk] = keys
    assert jwk["kid"] == on_disk.kid
    assert jwk["kty"] == "RSA"
    assert jwk["alg"] == "RS256"
    assert jwk["use"] == "sig"
    assert not PRIVATE_MEMBERS & set(jwk)

    private_key = on_disk.jwk.private_key
    assert isinstance(private_key, rsa.RSAPrivateKey)
    numbers = private_key.public_key().public_numbers()
    assert b64url_int(jwk["n"]) == numbers.n
    assert b64url_int(jwk["e"]) == numbers.e


def test_jwks_body_never_contains_private_key_material(
    http: requests.Session, live_server: LiveServer, keys_dir: Path
) -> None:
    [on_disk] = KeyStore(keys_dir).load_all()
    private = on_disk.jwk.as_dict(private=True)
    body = get_jwks(http, live_server).text
    for member in ("d", "p", "q", "dp", "dq", "qi"):
        value = private[member]
        assert isinstance(value, str)
        assert value not in body
    assert "PRIVATE KEY" not in body


def test_jwks_is_publicly_cacheable_for_the_default_max_age(
    http: requests.Session, live_server: LiveServer
) -> None:
    response = get_jwks(http, live_server)
    assert response.headers["Cache-Control"] == "public, max-age=300"


@pytest.mark.parametrize(
    "settings_overrides", [{"jwks_max_age": 1234, "key_propagation_delay": 1234}], indirect=True
)
@pytest.mark.parametrize("path", JWKS_PATHS)
def test_jwks_max_age_follows_the_setting(
    http: requests.Session, live_server: LiveServer, path: str
) -> None:
    response = http.get(live_server.url + path, timeout=10)
    assert response.headers["Cache-Control"] == "public, max-age=1234"


def test_jwks_has_a_strong_etag(http: requests.Session, live_server: LiveServer) -> None:
    etag = get_jwks(http, live_server).headers["ETag"]
    assert etag.startswith('"')
    assert etag.endswith('"')
    assert len(etag) > 2


def test_jwks_etag_is_stable_between_requests(
    http: requests.Session, live_server: LiveServer
) -> None:
    first = get_jwks(http, live_server).headers["ETag"]
    assert get_jwks(http, live_server).headers["ETag"] == first


@pytest.mark.parametrize("form", ["exact", "weak", "star", "in_list"])
def test_jwks_matching_if_none_match_gets_304_with_empty_body(
    http: requests.Session, live_server: LiveServer, form: str
) -> None:
    etag = get_jwks(http, live_server).headers["ETag"]
    header = {
        "exact": etag,
        "weak": f"W/{etag}",
        "star": "*",
        "in_list": f'"something-else", {etag}',
    }[form]
    response = get_jwks(http, live_server, **{"If-None-Match": header})
    assert response.status_code == 304
    assert response.content == b""
    # RFC 9110 §15.4.5: a 304 carries the ETag and Cache-Control a 200 would have.
    assert response.headers["ETag"] == etag
    assert response.headers["Cache-Control"].startswith("public, max-age=")


def test_jwks_304_is_also_served_at_the_alias_path(
    http: requests.Session, live_server: LiveServer
) -> None:
    etag = get_jwks(http, live_server).headers["ETag"]
    response = http.get(
        live_server.url + "/oauth2/jwks", headers={"If-None-Match": etag}, timeout=10
    )
    assert response.status_code == 304
    assert response.content == b""


def test_jwks_other_etag_gets_the_full_document(
    http: requests.Session, live_server: LiveServer
) -> None:
    fresh = get_jwks(http, live_server)
    response = get_jwks(http, live_server, **{"If-None-Match": '"0123456789abcdef"'})
    assert response.status_code == 200
    assert response.content == fresh.content
    assert response.json()["keys"]


def test_new_key_file_is_published_within_two_seconds_with_a_new_etag(
    http: requests.Session, live_server: LiveServer, keys_dir: Path
) -> None:
    before = get_jwks(http, live_server)
    old_kids = {k["kid"] for k in before.json()["keys"]}

    added = KeyStore(keys_dir).generate()

    def published() -> requests.Response | None:
        response = get_jwks(http, live_server)
        return response if added.kid in {k["kid"] for k in response.json()["keys"]} else None

    response = wait_until(published, 2.0, f"the new key {added.kid} in the JWKS")
    kids = {k["kid"] for k in response.json()["keys"]}

    assert kids == old_kids | {added.kid}
    assert response.headers["ETag"] != before.headers["ETag"]
    # The old ETag no longer matches, so caches that revalidate get the new set.
    revalidated = get_jwks(http, live_server, **{"If-None-Match": before.headers["ETag"]})
    assert revalidated.status_code == 200
    assert added.kid in {k["kid"] for k in revalidated.json()["keys"]}


@pytest.mark.parametrize("path", [*JWKS_PATHS, METADATA_PATH])
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS"])
def test_discovery_documents_refuse_other_methods_with_405_json(
    http: requests.Session, live_server: LiveServer, path: str, method: str
) -> None:
    response = http.request(method, live_server.url + path, data={"a": "b"}, timeout=10)
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD"
    assert_json_error(response)


@pytest.mark.parametrize("path", [*JWKS_PATHS, METADATA_PATH])
def test_discovery_head_has_the_get_headers_and_no_body(
    http: requests.Session, live_server: LiveServer, path: str
) -> None:
    full = http.get(live_server.url + path, timeout=10)
    head = http.head(live_server.url + path, timeout=10)
    assert head.status_code == 200
    assert head.content == b""
    for name in ("Content-Type", "Content-Length", "Cache-Control"):
        assert head.headers[name] == full.headers[name]
    assert head.headers.get("ETag") == full.headers.get("ETag")


# --- RFC 8414 metadata ----------------------------------------------------------------------


def get_metadata(http: requests.Session, live_server: LiveServer, **headers: str) -> Any:
    response = http.get(live_server.url + METADATA_PATH, headers=headers, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    return response.json()


def test_metadata_issuer_is_the_configured_issuer(
    http: requests.Session, live_server: LiveServer
) -> None:
    assert get_metadata(http, live_server)["issuer"] == ISSUER


def test_metadata_is_not_derived_from_the_host_header(
    http: requests.Session, live_server: LiveServer
) -> None:
    response = http.get(
        live_server.url + METADATA_PATH,
        headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example"},
        timeout=10,
    )
    assert response.status_code == 200
    assert "evil.example" not in response.text
    document = response.json()
    assert document["issuer"] == ISSUER
    assert document["token_endpoint"] == f"{ISSUER}/oauth2/token"
    assert document["jwks_uri"] == f"{ISSUER}/.well-known/jwks.json"


def test_metadata_endpoints_are_urls_under_the_issuer(
    http: requests.Session, live_server: LiveServer
) -> None:
    document = get_metadata(http, live_server)
    assert document["token_endpoint"] == f"{ISSUER}/oauth2/token"
    assert document["jwks_uri"] == f"{ISSUER}/.well-known/jwks.json"
    assert document["jwks_uri"].endswith("/.well-known/jwks.json")


def test_metadata_lists_only_the_client_credentials_grant(
    http: requests.Session, live_server: LiveServer
) -> None:
    assert get_metadata(http, live_server)["grant_types_supported"] == ["client_credentials"]


def test_metadata_lists_both_client_secret_auth_methods(
    http: requests.Session, live_server: LiveServer
) -> None:
    methods = get_metadata(http, live_server)["token_endpoint_auth_methods_supported"]
    assert "client_secret_basic" in methods
    assert "client_secret_post" in methods


def test_metadata_supports_no_response_types(
    http: requests.Session, live_server: LiveServer
) -> None:
    assert get_metadata(http, live_server)["response_types_supported"] == []


def test_metadata_names_the_introspection_and_revocation_endpoints(
    http: requests.Session, live_server: LiveServer
) -> None:
    """CONTRACT.md's metadata row lists both (RFC 8414 §2, RFC 7662 §4, RFC 7009 §3)."""
    document = get_metadata(http, live_server)
    assert document.get("introspection_endpoint") == f"{ISSUER}/oauth2/introspect"
    assert document.get("revocation_endpoint") == f"{ISSUER}/oauth2/revoke"


def test_metadata_issuer_is_an_https_url_without_query_or_fragment(
    http: requests.Session, live_server: LiveServer
) -> None:
    response = http.get(live_server.url + METADATA_PATH, timeout=10)
    document = json.loads(response.content)
    assert isinstance(document, dict)
    assert document["issuer"].startswith("https://")
    assert "?" not in document["issuer"]
    assert "#" not in document["issuer"]


# --- unknown paths --------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/nope", "/.well-known/openid-configuration", "/oauth2/"])
def test_unknown_path_is_a_json_404(
    http: requests.Session, live_server: LiveServer, path: str
) -> None:
    response = http.get(live_server.url + path, timeout=10)
    assert response.status_code == 404
    assert_json_error(response)
