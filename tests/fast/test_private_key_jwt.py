"""``private_key_jwt`` (RFC 7523 §2.2, §3) as the OAuth layer verifies it, every rule of the
contract with the check that enforces it: each rejection here passes if and only if that check
is in place, since every other claim of the assertion is right.

Assertions are signed with PyJWT (an independent implementation) and joserfc for RFC 9864's
``Ed25519`` name; times are wall-clock, as the verifier's claims registry reads them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey
from joserfc.jwt import encode as joserfc_encode

from authserver.oauth.client_assertion import JWT_BEARER, MAX_JTI_LENGTH
from authserver.oauth.clients import GRANT_TYPE
from authserver.oauth.server import (
    INTROSPECTION_ENDPOINT,
    REVOCATION_ENDPOINT,
    TOKEN_ENDPOINT,
    AuthorizationServer,
    Response,
)
from tests.support.memory_backend import (
    CLIENT_ADDRESS,
    ENDPOINT_PATHS,
    ISSUER,
    MemoryBackend,
    MemoryClient,
    issue,
    post,
)

GRANT = {"grant_type": GRANT_TYPE}
TOKEN_URL = f"{ISSUER}{ENDPOINT_PATHS[TOKEN_ENDPOINT]}"
KEY_CLIENT = "cli_keyclient"


@pytest.fixture(scope="module")
def keys() -> dict[str, Any]:
    """One private key per algorithm family, generated once for the module."""
    return {
        "RS256": RSAKey.generate_key(2048, parameters={"kid": "rsa"}),
        "ES256": ECKey.generate_key("P-256", parameters={"kid": "ec"}),
        "EdDSA": OKPKey.generate_key("Ed25519", parameters={"kid": "ed"}),
    }


def public_set(*private: Any) -> KeySet:
    return KeySet.import_key_set({"keys": [key.as_dict(private=False) for key in private]})


@pytest.fixture
def key_client(backend: MemoryBackend, keys: dict[str, Any]) -> MemoryClient:
    registered = public_set(keys["RS256"], keys["ES256"], keys["EdDSA"])
    return backend.register(KEY_CLIENT, "unused", key_set=registered)


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": KEY_CLIENT,
        "sub": KEY_CLIENT,
        "aud": ISSUER,
        "iat": now,
        "exp": now + 60,
        "jti": uuid.uuid4().hex,
    }
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not None}


def signed(key: Any, alg: str = "RS256", headers: dict[str, Any] | None = None, **over: Any) -> str:
    """PyJWT's assertion with ``key``'s PEM; the header names the key's kid unless told."""
    header = {"kid": key.kid} if headers is None else headers
    pem = key.as_pem(private=True)
    return jwt.encode(claims(**over), pem, algorithm=alg, headers=header)


def with_assertion(
    server: AuthorizationServer, assertion: str, endpoint: str = TOKEN_ENDPOINT, **form: Any
) -> Response:
    body = {"client_assertion_type": JWT_BEARER, "client_assertion": assertion, **form}
    if endpoint == TOKEN_ENDPOINT:
        body = {**GRANT, **body}
    return post(server, endpoint, body)


def failure_checks(backend: MemoryBackend) -> list[str]:
    return [
        e.details["check"]
        for e in backend.events
        if e.event == "client.authentication" and e.outcome == "failure"
    ]


def assert_refused(server: AuthorizationServer, backend: MemoryBackend, assertion: str) -> str:
    """401 invalid_client, no Basic challenge, logged with its check (returned)."""
    status, body, headers = with_assertion(server, assertion)
    assert (status, body["error"]) == (401, "invalid_client"), body
    assert all(name.lower() != "www-authenticate" for name, _ in headers)
    checks = failure_checks(backend)
    assert len(checks) == 1, backend.events
    assert assertion not in repr(backend.events)
    return checks[0]


# --- accepted ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("family", "alg"),
    [("RS256", "RS256"), ("RS256", "PS256"), ("ES256", "ES256"), ("EdDSA", "EdDSA")],
)
def test_an_assertion_signed_with_a_registered_key_gets_a_token(
    server: AuthorizationServer,
    key_client: MemoryClient,
    keys: dict[str, Any],
    family: str,
    alg: str,
) -> None:
    status, body, _ = with_assertion(server, signed(keys[family], alg))

    assert status == 200, body
    assert (
        jwt.decode(body["access_token"], options={"verify_signature": False})["sub"] == KEY_CLIENT
    )


def test_rfc_9864s_ed25519_algorithm_name_is_accepted(
    server: AuthorizationServer, key_client: MemoryClient, keys: dict[str, Any]
) -> None:
    """openid-client names an Ed25519 signature ``Ed25519`` (RFC 9864), not ``EdDSA``."""
    assertion = joserfc_encode(
        {"alg": "Ed25519", "kid": "ed"}, claims(), keys["EdDSA"], algorithms=["Ed25519"]
    )

    assert with_assertion(server, assertion)[0] == 200


@pytest.mark.parametrize("audience", [ISSUER, TOKEN_URL, [f"{ISSUER}/elsewhere", ISSUER]])
def test_aud_may_name_the_issuer_or_the_token_endpoint(
    server: AuthorizationServer, key_client: MemoryClient, keys: dict[str, Any], audience: Any
) -> None:
    assert with_assertion(server, signed(keys["RS256"], aud=audience))[0] == 200


def test_without_a_kid_the_only_key_that_fits_the_algorithm_is_used(
    server: AuthorizationServer, key_client: MemoryClient, keys: dict[str, Any]
) -> None:
    assert with_assertion(server, signed(keys["ES256"], "ES256", headers={}))[0] == 200


def test_client_id_may_be_sent_when_it_is_the_assertions_subject(
    server: AuthorizationServer, key_client: MemoryClient, keys: dict[str, Any]
) -> None:
    assert with_assertion(server, signed(keys["RS256"]), client_id=KEY_CLIENT)[0] == 200


@pytest.mark.parametrize("endpoint", [INTROSPECTION_ENDPOINT, REVOCATION_ENDPOINT])
def test_introspection_and_revocation_accept_assertions_addressed_to_them(
    server: AuthorizationServer,
    backend: MemoryBackend,
    key_client: MemoryClient,
    keys: dict[str, Any],
    endpoint: str,
) -> None:
    other = backend.register("cli_other", "ascs_" + "x" * 43)
    token = issue(server, other)
    own_url = f"{ISSUER}{ENDPOINT_PATHS[endpoint]}"

    status, body, _ = with_assertion(
        server, signed(keys["RS256"], aud=own_url), endpoint, token=token
    )

    assert status == 200, body


# --- refused: each check -------------------------------------------------------------------

Refusal = Callable[[dict[str, Any]], str]

REFUSALS: dict[str, Refusal] = {
    "iss differs from sub": lambda k: signed(k["RS256"], iss="cli_someone_else"),
    "sub names no client": lambda k: signed(k["RS256"], iss="cli_nobody", sub="cli_nobody"),
    "aud names someone else": lambda k: signed(k["RS256"], aud="https://rs.example.test"),
    "aud missing": lambda k: signed(k["RS256"], aud=None),
    "exp missing": lambda k: signed(k["RS256"], exp=None),
    "exp passed": lambda k: signed(k["RS256"], exp=int(time.time()) - 61),
    "exp over an hour ahead": lambda k: signed(k["RS256"], exp=int(time.time()) + 3600 + 120),
    "iat in the future": lambda k: signed(k["RS256"], iat=int(time.time()) + 120),
    "nbf in the future": lambda k: signed(k["RS256"], nbf=int(time.time()) + 120),
    "jti missing": lambda k: signed(k["RS256"], jti=None),
    "jti not a string": lambda k: signed(k["RS256"], jti=12345),
    "jti too long": lambda k: signed(k["RS256"], jti="j" * (MAX_JTI_LENGTH + 1)),
    "alg not allowed (RS384)": lambda k: signed(k["RS256"], "RS384"),
    "alg does not fit the key": lambda k: signed(k["RS256"], "RS256", headers={"kid": "ec"}),
    "unknown kid": lambda k: signed(k["RS256"], headers={"kid": "not-registered"}),
    "signed by an unregistered key": lambda k: signed(
        RSAKey.generate_key(2048, parameters={"kid": "rsa"})
    ),
    "no kid and two keys fit": lambda k: _two_rsa_keys_no_kid(k),
    "alg none": lambda k: _unsigned(),
    "HMAC with the public key as secret": lambda k: _hmac_with_public_key(k["RS256"]),
    "not a JWT": lambda k: "not-a-jwt",
}


def _two_rsa_keys_no_kid(keys: dict[str, Any]) -> str:
    # RS256 and PS256 both fit the one RSA key: that is one key, so it must verify; a second
    # RSA key registered below makes the choice ambiguous.
    return signed(keys["RS256"], headers={})


def _unsigned() -> str:
    return jwt.encode(claims(), None, algorithm="none")


def _hmac_with_public_key(key: RSAKey) -> str:
    """The classic confusion: HS256 keyed with the public key's PEM the server holds."""
    import hashlib
    import hmac
    import json

    from joserfc.util import urlsafe_b64encode

    def part(value: dict[str, Any]) -> bytes:
        return urlsafe_b64encode(json.dumps(value).encode())

    signing_input = part({"alg": "HS256", "kid": "rsa"}) + b"." + part(claims())
    mac = hmac.new(key.as_pem(private=False), signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + urlsafe_b64encode(mac)).decode()


@pytest.mark.parametrize("case", list(REFUSALS))
def test_each_broken_rule_is_refused_and_logged_with_its_check(
    server: AuthorizationServer,
    backend: MemoryBackend,
    key_client: MemoryClient,
    keys: dict[str, Any],
    case: str,
) -> None:
    if case == "no kid and two keys fit":
        second = RSAKey.generate_key(2048, parameters={"kid": "rsa-2"})
        key_client.key_set = public_set(keys["RS256"], second)

    check = assert_refused(server, backend, REFUSALS[case](keys))

    assert check


def test_the_same_assertion_is_accepted_once(
    server: AuthorizationServer,
    backend: MemoryBackend,
    key_client: MemoryClient,
    keys: dict[str, Any],
) -> None:
    assertion = signed(keys["RS256"])
    assert with_assertion(server, assertion)[0] == 200

    assert assert_refused(server, backend, assertion) == "JWT ID is used before."


def test_a_refused_assertion_does_not_spend_its_jti(
    server: AuthorizationServer,
    backend: MemoryBackend,
    key_client: MemoryClient,
    keys: dict[str, Any],
) -> None:
    """The jti is spent last, so a request refused for another reason cannot burn the jti of
    the client's next, valid assertion."""
    jti = uuid.uuid4().hex
    with_assertion(server, signed(keys["RS256"], aud="https://rs.example.test", jti=jti))

    assert with_assertion(server, signed(keys["RS256"], jti=jti))[0] == 200


def test_a_disabled_client_cannot_authenticate(
    server: AuthorizationServer,
    backend: MemoryBackend,
    key_client: MemoryClient,
    keys: dict[str, Any],
) -> None:
    key_client.enabled = False

    assert assert_refused(server, backend, signed(keys["RS256"])) == "sub names no enabled client"


def test_a_secret_client_cannot_authenticate_with_an_assertion(
    server: AuthorizationServer, backend: MemoryBackend, keys: dict[str, Any]
) -> None:
    backend.register(KEY_CLIENT, "ascs_" + "s" * 43)

    check = assert_refused(server, backend, signed(keys["RS256"]))

    assert "not private_key_jwt" in check


def test_client_id_other_than_the_subject_is_refused(
    server: AuthorizationServer,
    backend: MemoryBackend,
    key_client: MemoryClient,
    keys: dict[str, Any],
) -> None:
    status, body, _ = with_assertion(server, signed(keys["RS256"]), client_id="cli_other")

    assert (status, body["error"]) == (401, "invalid_client")
    assert failure_checks(backend) == ["client_id differs from the assertion's sub"]


@pytest.mark.parametrize(
    "form",
    [
        {"client_assertion_type": "urn:example:other"},
        {"client_assertion": ""},
        {"client_assertion_type": JWT_BEARER, "client_assertion": ""},
    ],
)
def test_an_incomplete_assertion_request_is_invalid_client(
    server: AuthorizationServer,
    backend: MemoryBackend,
    key_client: MemoryClient,
    form: dict[str, str],
) -> None:
    status, body, _ = post(server, TOKEN_ENDPOINT, {**GRANT, **form})

    assert (status, body["error"]) == (401, "invalid_client")
    assert len(failure_checks(backend)) == 1


def test_an_assertion_with_a_secret_too_is_invalid_request(
    server: AuthorizationServer,
    backend: MemoryBackend,
    key_client: MemoryClient,
    keys: dict[str, Any],
) -> None:
    """RFC 6749 §2.3: a client MUST NOT use more than one authentication method per request."""
    assertion = signed(keys["RS256"])
    in_body = with_assertion(server, assertion, client_secret="whatever")
    in_basic = post(
        server,
        TOKEN_ENDPOINT,
        {**GRANT, "client_assertion_type": JWT_BEARER, "client_assertion": assertion},
        basic=(KEY_CLIENT, "whatever"),
    )

    for status, body, _ in (in_body, in_basic):
        assert (status, body["error"]) == (400, "invalid_request")


def test_each_refusal_counts_against_the_claimed_client_and_the_address(
    server: AuthorizationServer,
    backend: MemoryBackend,
    key_client: MemoryClient,
    keys: dict[str, Any],
) -> None:
    with_assertion(server, signed(keys["RS256"], aud="https://rs.example.test"))
    with_assertion(server, signed(keys["RS256"], exp=int(time.time()) - 120))

    assert backend.client_failures[KEY_CLIENT].count == 2
    assert backend.address_failures == {CLIENT_ADDRESS: 2}


def test_a_locked_client_id_gets_429_for_a_bad_assertion_and_a_token_for_a_good_one(
    server: AuthorizationServer,
    backend: MemoryBackend,
    key_client: MemoryClient,
    keys: dict[str, Any],
) -> None:
    """As for generated secrets: verifying an assertion is cheap, so it is always checked."""
    for _ in range(backend.lock_threshold):
        with_assertion(server, signed(keys["RS256"], aud="https://rs.example.test"))

    refused = with_assertion(server, signed(keys["RS256"], aud="https://rs.example.test"))
    accepted = with_assertion(server, signed(keys["RS256"]))

    assert (refused[0], refused[1]["error"]) == (429, "too_many_requests")
    assert accepted[0] == 200
