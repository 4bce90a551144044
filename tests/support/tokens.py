"""Getting a client_credentials token over HTTP and verifying it as a resource server would:
PyJWT's ``PyJWKClient`` against the served JWKS."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import time
from collections.abc import Sequence
from typing import Any

import jwt
import requests
from joserfc import jwt as joserfc_jwt
from joserfc.jwk import RSAKey

REQUIRED_CLAIMS = ("iss", "sub", "aud", "exp", "iat", "jti")


def fetch_token(
    token_url: str, client_id: str, client_secret: str, scope: str = "api"
) -> dict[str, Any]:
    """A client_credentials token with client_secret_basic, via curl when it is installed."""
    curl = shutil.which("curl")
    if curl:
        result = subprocess.run(
            [
                curl, "-sS", "--max-time", "10", "-w", "\n%{http_code}",
                "-u", f"{client_id}:{client_secret}",
                "-d", "grant_type=client_credentials", "-d", f"scope={scope}",
                token_url,
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        body, _, status = result.stdout.rpartition("\n")
        assert status == "200", f"{status}: {body}"
        token: dict[str, Any] = json.loads(body)
        return token
    response = requests.post(
        token_url,
        auth=(client_id, client_secret),
        data={"grant_type": "client_credentials", "scope": scope},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    token = response.json()
    return token


def decode_with_jwks(
    jwks_url: str,
    token: str,
    *,
    audience: str | list[str],
    issuer: str,
    require: Sequence[str] = REQUIRED_CLAIMS,
) -> dict[str, Any]:
    """Verify the RS256 signature with the served key named by ``kid``; return the claims."""
    signing_key = jwt.PyJWKClient(jwks_url).get_signing_key_from_jwt(token)
    claims: dict[str, Any] = jwt.decode(
        token,
        signing_key.key,
        algorithms=["RS256"],
        audience=audience,
        issuer=issuer,
        options={"require": list(require)},
    )
    return claims


def verify_access_token(
    jwks_url: str,
    token: str,
    *,
    client_id: str,
    audience: str,
    issuer: str,
    scope: str = "api",
) -> dict[str, Any]:
    """What a resource server does with an RFC 9068 token: ``at+jwt``, RS256 only, key by
    ``kid`` from the JWKS, aud/iss checked; and the token names ``client_id`` and ``scope``."""
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "RS256"
    signing_key = jwt.PyJWKClient(jwks_url).get_signing_key_from_jwt(token)
    assert signing_key.key_id == header["kid"]
    claims = decode_with_jwks(jwks_url, token, audience=audience, issuer=issuer)
    assert claims["sub"] == client_id
    assert claims["client_id"] == client_id
    assert claims["scope"] == scope
    return claims


def rfc9068_token(issuer: str, key: RSAKey, audience: str) -> str:
    """An access token as our server signs it (RFC 9068), for verifier tests that play issuer."""
    now = int(time.time())
    claims = {
        "iss": issuer, "sub": "s", "aud": audience, "exp": now + 600, "iat": now,
        "jti": secrets.token_hex(8), "client_id": "s",
    }  # fmt: skip
    return joserfc_jwt.encode({"typ": "at+jwt", "alg": "RS256", "kid": key.kid}, claims, key)
