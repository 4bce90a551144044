"""``private_key_jwt`` from clients nobody here wrote, against a real ``authserver serve``: for
RS256, PS256, ES256 and EdDSA keys, Authlib's ``PrivateKeyJWT`` (its default 3600 s assertions,
no ``kid``), node ``openid-client`` v6's ``PrivateKeyJwt`` with ``clientCredentialsGrant`` (which
names an Ed25519 key's algorithm ``Ed25519``, RFC 9864), and assertions built with PyJWT. Each
token is verified as a resource server would, and each library's own assertion, posted a second
time, is refused: a ``jti`` is accepted once (RFC 7523 §3)."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import jwt
import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT

from tests.support.served import ServedAuthServer, served_auth_server
from tests.support.tokens import verify_access_token
from tests.test_client_helper_private_key import (
    ALGORITHMS,
    API_AUDIENCE,
    KeyClient,
    joserfc_key,
    pkcs8_pem,
    register_key_clients,
    unverified_claims,
)
from tests.test_example_nextjs import NPM_INSTALL_TIMEOUT_SECONDS, quiet_env, require

#: The openid-client release the node tests install (v6, the current major).
OPENID_CLIENT = "openid-client@6.9.0"
NODE_RUN_TIMEOUT_SECONDS = 60
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

#: Reads ``{"issuer", "cases": [{"algorithm", "client_id", "kid", "pem"}]}`` on stdin and, for
#: each case, gets a client_credentials token the way openid-client's documentation shows,
#: recording the form it posted; prints ``{algorithm: {"access_token"|"error", "form"}}``.
OPENID_CLIENT_SCRIPT = """
import * as client from 'openid-client'
import { importPKCS8 } from 'jose'

let input = ''
for await (const chunk of process.stdin) input += chunk
const { issuer, cases } = JSON.parse(input)
const results = {}
for (const { algorithm, client_id, kid, pem } of cases) {
  const key = await importPKCS8(pem, algorithm === 'EdDSA' ? 'Ed25519' : algorithm)
  const config = await client.discovery(
    new URL(issuer), client_id, undefined, client.PrivateKeyJwt({ key, kid }),
    { algorithm: 'oauth2', execute: [client.allowInsecureRequests] },
  )
  const forms = []
  config[client.customFetch] = (url, options) => {
    forms.push(String(options.body))
    return fetch(url, options)
  }
  try {
    const tokens = await client.clientCredentialsGrant(config, { scope: 'api' })
    results[algorithm] = { access_token: tokens.access_token, form: forms[0] }
  } catch (error) {
    results[algorithm] = { error: `${error.name}: ${error.message}`, form: forms[0] }
  }
}
process.stdout.write(JSON.stringify(results))
"""


@pytest.fixture(scope="module")
def auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedAuthServer]:
    with served_auth_server(tmp_path_factory.mktemp("auth")) as served:
        yield served


@pytest.fixture(scope="module")
def key_clients(
    auth: ServedAuthServer, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, KeyClient]:
    return register_key_clients(auth, tmp_path_factory.mktemp("jwks"))


def verified(auth: ServedAuthServer, access_token: str, client: KeyClient) -> dict[str, Any]:
    return verify_access_token(
        f"{auth.issuer}/.well-known/jwks.json",
        access_token,
        client_id=client.client_id,
        audience=API_AUDIENCE,
        issuer=auth.issuer,
    )


def assert_replay_refused(auth: ServedAuthServer, form: dict[str, str]) -> None:
    """The very request a library sent, sent again: its assertion's jti is spent (and the
    assertion is still unexpired, so that is the only reason to refuse it)."""
    assert form["client_assertion_type"] == ASSERTION_TYPE
    assert time.time() < unverified_claims(form["client_assertion"])["exp"] - 5
    replay = httpx.post(auth.token_url, data=form, timeout=10)
    assert replay.status_code == 401, replay.text
    assert replay.json()["error"] == "invalid_client"


# -- Authlib ----------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_authlib_private_key_jwt(
    auth: ServedAuthServer, key_clients: dict[str, KeyClient], algorithm: str
) -> None:
    client = key_clients[algorithm]
    # Authlib reads a PEM as an RSA key; other key types go in as joserfc keys.
    key = pkcs8_pem(client.key) if algorithm in ("RS256", "PS256") else joserfc_key(client.key)
    session = OAuth2Session(
        client.client_id,
        key,
        token_endpoint_auth_method=PrivateKeyJWT(auth.token_url, alg=algorithm),
        scope="api",
    )
    sent: list[requests.PreparedRequest] = []
    session.hooks["response"].append(
        lambda response, *args, **kwargs: sent.append(response.request)
    )
    with session:
        token = session.fetch_token(auth.token_url, grant_type="client_credentials", timeout=30)

    verified(auth, token["access_token"], client)
    [request] = sent
    assert "Authorization" not in request.headers
    assert isinstance(request.body, str)
    form = dict(parse_qsl(request.body))
    assertion = form["client_assertion"]
    assert jwt.get_unverified_header(assertion) == {"alg": algorithm, "typ": "JWT"}
    claims = unverified_claims(assertion)
    assert claims["aud"] == auth.token_url
    assert claims["exp"] - claims["iat"] == 3600  # Authlib's default, the contract's ceiling
    assert_replay_refused(auth, form)


# -- PyJWT ------------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_pyjwt_assertion(
    auth: ServedAuthServer, key_clients: dict[str, KeyClient], algorithm: str
) -> None:
    client = key_clients[algorithm]
    now = int(time.time())
    claims = {
        "iss": client.client_id, "sub": client.client_id, "aud": [auth.issuer],
        "iat": now, "exp": now + 300, "jti": secrets.token_urlsafe(16),
    }  # fmt: skip
    assertion = jwt.encode(claims, client.key, algorithm=algorithm, headers={"kid": client.kid})
    form = {
        "grant_type": "client_credentials",
        "client_id": client.client_id,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }
    first = httpx.post(auth.token_url, data=form, timeout=10)
    assert first.status_code == 200, first.text
    verified(auth, first.json()["access_token"], client)
    assert_replay_refused(auth, form)


# -- node openid-client -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def openid_client(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """node, and a scratch folder with openid-client (and its jose and oauth4webapi)
    installed by npm, as the Next.js test installs jose."""
    node, npm = require("node"), require("npm")
    scratch = tmp_path_factory.mktemp("openid-client")
    (scratch / "package.json").write_text('{"private": true, "type": "module"}\n')
    command = [
        npm, "install", "--no-save", "--no-package-lock", "--no-audit", "--no-fund",
        "--ignore-scripts", OPENID_CLIENT,
    ]  # fmt: skip
    try:
        installed = subprocess.run(
            command, cwd=scratch, env=quiet_env(), stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=NPM_INSTALL_TIMEOUT_SECONDS, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail(f"npm install {OPENID_CLIENT} took over {NPM_INSTALL_TIMEOUT_SECONDS}s")
    if installed.returncode != 0 or not (scratch / "node_modules" / "openid-client").is_dir():
        pytest.fail(f"npm install {OPENID_CLIENT} failed:\n{installed.stdout}\n{installed.stderr}")
    (scratch / "interop.mjs").write_text(OPENID_CLIENT_SCRIPT)
    return node, scratch


@pytest.fixture(scope="module")
def openid_client_results(
    auth: ServedAuthServer, key_clients: dict[str, KeyClient], openid_client: tuple[str, Path]
) -> dict[str, dict[str, Any]]:
    """One node run for every algorithm (node and the npm packages load once)."""
    node, scratch = openid_client
    cases = [
        {
            "algorithm": client.algorithm,
            "client_id": client.client_id,
            "kid": client.kid,
            "pem": pkcs8_pem(client.key).decode(),
        }
        for client in key_clients.values()
    ]
    run = subprocess.run(
        [node, "interop.mjs"], cwd=scratch, env=quiet_env(),
        input=json.dumps({"issuer": auth.issuer, "cases": cases}),
        capture_output=True, text=True, timeout=NODE_RUN_TIMEOUT_SECONDS, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    results: dict[str, dict[str, Any]] = json.loads(run.stdout)
    return results


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_openid_client_private_key_jwt(
    auth: ServedAuthServer,
    key_clients: dict[str, KeyClient],
    openid_client_results: dict[str, dict[str, Any]],
    algorithm: str,
) -> None:
    client = key_clients[algorithm]
    result = openid_client_results[algorithm]
    assert "error" not in result, result["error"]
    verified(auth, result["access_token"], client)
    form = dict(parse_qsl(result["form"]))
    # openid-client also sends client_id, which must then match the assertion's sub.
    assert form["client_id"] == client.client_id
    header = jwt.get_unverified_header(form["client_assertion"])
    assert header == {"alg": "Ed25519" if algorithm == "EdDSA" else algorithm, "kid": client.kid}
    assert unverified_claims(form["client_assertion"])["aud"] == auth.issuer
    assert_replay_refused(auth, form)
