"""The stand-in platform issuer (tests/support/workload_issuer.py): its tokens verify against
what it publishes, with the headers and claims each platform puts in them, so tests built on
it test what a real cluster, runner or SPIRE server would send."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
import requests
from cryptography import x509

from tests.support.workload_issuer import WorkloadIssuer


@pytest.fixture(scope="module")
def issuer() -> Iterator[WorkloadIssuer]:
    with WorkloadIssuer() as served:
        yield served


def verified(token: str, jwks: dict[str, Any], audience: str, **options: Any) -> dict[str, Any]:
    """The claims, verified with PyJWT against the key the header's kid names."""
    kid = jwt.get_unverified_header(token)["kid"]
    [key] = [key for key in jwt.PyJWKSet.from_dict(jwks).keys if key.key_id == kid]
    claims: dict[str, Any] = jwt.decode(
        token, key.key, algorithms=[key.algorithm_name], audience=audience, **options
    )
    return claims


def test_discovery_names_the_issuer_and_its_key_set(issuer: WorkloadIssuer) -> None:
    response = requests.get(issuer.discovery_url, timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Cache-Control"] == "public, max-age=300"
    document = response.json()
    assert document["issuer"] == issuer.issuer
    assert document["jwks_uri"] == issuer.jwks_uri
    assert document["response_types_supported"] == ["id_token"]
    assert document["subject_types_supported"] == ["public"]
    assert document["id_token_signing_alg_values_supported"] == ["RS256"]

    jwks = requests.get(document["jwks_uri"], timeout=5)
    assert "max-age=300" in jwks.headers["Cache-Control"]
    [key] = jwks.json()["keys"]
    assert (key["kty"], key["kid"], key["use"], key["alg"]) == ("RSA", issuer.kid, "sig", "RS256")
    assert {"n", "e"} <= set(key)
    assert not {"d", "p", "q"} & set(key)


def test_kubernetes_token_is_shaped_like_a_projected_service_account_token(
    issuer: WorkloadIssuer,
) -> None:
    token = issuer.kubernetes_token("payments", "billing", "https://auth.example")
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "kid": issuer.kid}
    claims = verified(token, issuer.jwks(), "https://auth.example", issuer=issuer.issuer)
    assert claims["sub"] == "system:serviceaccount:payments:billing"
    assert claims["aud"] == ["https://auth.example"]
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["nbf"] == claims["iat"]
    assert claims["jti"]
    kubernetes = claims["kubernetes.io"]
    assert kubernetes["namespace"] == "payments"
    assert kubernetes["serviceaccount"]["name"] == "billing"
    assert {"name", "uid"} <= set(kubernetes["pod"])
    assert {"name", "uid"} <= set(kubernetes["node"])


def test_github_actions_token_is_shaped_like_github_s(issuer: WorkloadIssuer) -> None:
    token = issuer.github_actions_token("octo-org/octo-repo", "https://auth.example")
    header = jwt.get_unverified_header(token)
    assert set(header) == {"typ", "alg", "x5t", "kid"}
    assert (header["typ"], header["alg"], header["kid"]) == ("JWT", "RS256", issuer.kid)
    [published] = issuer.jwks()["keys"]
    assert header["x5t"] == published["x5t"]
    certificate = x509.load_der_x509_certificate(base64.b64decode(published["x5c"][0]))
    assert certificate.public_key().public_numbers().n == int.from_bytes(  # type: ignore[union-attr]
        base64.urlsafe_b64decode(published["n"] + "=="), "big"
    )
    claims = verified(token, issuer.jwks(), "https://auth.example", issuer=issuer.issuer)
    assert claims["sub"] == "repo:octo-org/octo-repo:ref:refs/heads/main"
    assert claims["aud"] == "https://auth.example"
    assert claims["exp"] - claims["iat"] == 300
    assert claims["nbf"] < claims["iat"]
    for name in ("repository_owner_id", "run_id", "run_number", "run_attempt"):
        assert isinstance(claims[name], str)
    assert (claims["repository_owner"], claims["ref_type"]) == ("octo-org", "branch")
    assert claims["job_workflow_ref"].startswith("octo-org/octo-repo/.github/workflows/")

    deploying = issuer.github_actions_token("o/r", "aud", environment="prod")
    assert jwt.decode(deploying, options={"verify_signature": False})["sub"] == (
        "repo:o/r:environment:prod"
    )


def test_actions_request_endpoint_hands_a_token_to_the_job_s_bearer(
    issuer: WorkloadIssuer,
) -> None:
    bearer = {"Authorization": f"Bearer {issuer.actions_request_token}"}
    url = f"{issuer.actions_request_url}&audience=https%3A%2F%2Fauth.example"
    answer = requests.get(url, headers=bearer, timeout=5)
    assert answer.status_code == 200
    token = answer.json()["value"]
    assert token == issuer.actions_tokens[-1]
    claims = verified(token, issuer.jwks(), "https://auth.example")
    assert claims["repository"] == "octo-org/octo-repo"

    default = requests.get(issuer.actions_request_url, headers=bearer, timeout=5).json()
    assert jwt.decode(default["value"], options={"verify_signature": False})["aud"] == (
        "https://github.com/octo-org"
    )
    wrong = requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=5)
    assert wrong.status_code == 401
    assert requests.get(url, timeout=5).status_code == 401


def test_spiffe_svid_and_bundle() -> None:
    with WorkloadIssuer("ES256") as issuer:
        token = issuer.spiffe_svid("spiffe://example.org/ns/prod/sa/billing", "https://a.example")
        assert jwt.get_unverified_header(token) == {
            "alg": "ES256", "kid": issuer.kid, "typ": "JWT"
        }  # fmt: skip
        response = requests.get(issuer.bundle_uri, timeout=5)
        assert "max-age" in response.headers["Cache-Control"]
        bundle = response.json()
        assert bundle["spiffe_sequence"] == 1
        assert bundle["spiffe_refresh_hint"] > 0
        jwt_keys = [key for key in bundle["keys"] if key["use"] == "jwt-svid"]
        [x509_key] = [key for key in bundle["keys"] if key["use"] == "x509-svid"]
        assert x509_key["x5c"]
        assert [(key["kid"], key["kty"], key["crv"]) for key in jwt_keys] == [
            (issuer.kid, "EC", "P-256")
        ]
        claims = verified(token, {"keys": jwt_keys}, "https://a.example")
        assert set(claims) == {"sub", "aud", "exp", "iat", "iss"}
        assert "jti" not in claims
        assert claims["aud"] == ["https://a.example"]
        assert claims["exp"] - claims["iat"] == 300
        without_iss = issuer.spiffe_svid("spiffe://example.org/x", "aud", iss=None)
        assert "iss" not in jwt.decode(without_iss, options={"verify_signature": False})


def test_rotate_publishes_both_keys_and_signs_with_the_new_one() -> None:
    with WorkloadIssuer("ES256", "/id/cluster-1") as issuer:
        assert issuer.issuer.endswith("/id/cluster-1")
        old = issuer.kubernetes_token("ns", "sa", "aud")
        old_kid = issuer.kid
        issuer.rotate()
        assert issuer.kid != old_kid
        new = issuer.kubernetes_token("ns", "sa", "aud")
        assert jwt.get_unverified_header(new)["kid"] == issuer.kid
        jwks = requests.get(issuer.jwks_uri, timeout=5).json()
        assert [key["kid"] for key in jwks["keys"]] == [old_kid, issuer.kid]
        for token in (old, new):
            assert verified(token, jwks, "aud")["sub"] == "system:serviceaccount:ns:sa"
        assert issuer.fetches["/id/cluster-1/.well-known/jwks"] == 1
        assert requests.get(issuer.bundle_uri, timeout=5).json()["spiffe_sequence"] == 2


def test_sign_overrides_or_removes_claims_and_headers(issuer: WorkloadIssuer) -> None:
    token = issuer.sign({"sub": "x", "aud": "a", "jti": None}, {"typ": "at+jwt", "kid": None})
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "typ": "at+jwt"}
    assert jwt.decode(token, options={"verify_signature": False}) == {"sub": "x", "aud": "a"}
    no_jti = issuer.kubernetes_token("ns", "sa", "aud", jti=None, exp=1)
    claims = jwt.decode(no_jti, options={"verify_signature": False})
    assert "jti" not in claims
    assert claims["exp"] == 1


def test_unavailable_answers_503_and_unknown_paths_404(issuer: WorkloadIssuer) -> None:
    assert requests.get(issuer.issuer + "/nope", timeout=5).status_code == 404
    issuer.unavailable = True
    try:
        assert requests.get(issuer.jwks_uri, timeout=5).status_code == 503
    finally:
        issuer.unavailable = False
