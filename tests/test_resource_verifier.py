"""``authserver.resource`` against a real ``authserver serve``: tokens issued over HTTP, keys
fetched over HTTP, forged tokens signed with real keys (the server's own key file for tokens
that are validly signed but carry bad claims, fresh keys for forgeries), and the Flask
decorator behind a real HTTP server. A tiny local issuer (a real werkzeug server too) covers
what the auth server cannot be made to do: other key types, ``Cache-Control`` variants, errors.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from flask import Flask, g, jsonify
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.jwk import ECKey, Key, OKPKey, RSAKey
from werkzeug.wrappers import Request, Response

from authserver.resource import (
    InvalidToken,
    JWTVerifier,
    VerifierUnavailable,
    cache_max_age,
)
from authserver.resource.flask import require_scope
from tests.support.cli import ok_json
from tests.support.cli_in_process import run_in_process
from tests.support.clock import ManualClock
from tests.support.postgres import free_port
from tests.support.served import ServedAuthServer, served_auth_server
from tests.support.waiting import wait_until
from tests.support.wsgi import serving

API = "https://tasks.example.test"
JWKS_PATH = "/.well-known/jwks.json"
METADATA_PATH = "/.well-known/oauth-authorization-server"


# -- fixtures and helpers ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedAuthServer]:
    with served_auth_server(tmp_path_factory.mktemp("auth")) as served:
        yield served


@pytest.fixture(scope="module")
def reader(auth: ServedAuthServer) -> dict[str, Any]:
    return auth.create_client("--name", "reader", "--scope", "tasks:read api", "--audience", API)


@pytest.fixture(scope="module")
def outsider(auth: ServedAuthServer) -> dict[str, Any]:
    """A client whose tokens are for another API."""
    return auth.create_client(
        "--name", "outsider", "--scope", "tasks:read", "--audience", "https://other.example.test"
    )


def issue(auth: ServedAuthServer, client: dict[str, Any], **form: str) -> str:
    response = httpx.post(
        auth.token_url,
        auth=(client["client_id"], client["client_secret"]),
        data={"grant_type": "client_credentials", **form},
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


@pytest.fixture(scope="module")
def token(auth: ServedAuthServer, reader: dict[str, Any]) -> str:
    return issue(auth, reader)


def header_of(token: str) -> dict[str, Any]:
    segment = token.split(".")[0]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    )
    return decoded


def claims_of(token: str) -> dict[str, Any]:
    segment = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    )
    return decoded


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value: Any) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


@dataclass
class Fetches:
    """Requests a verifier's httpx client sent, by path (an httpx event hook: real HTTP)."""

    paths: Counter[str] = field(default_factory=Counter)

    def __call__(self, request: httpx.Request) -> None:
        self.paths[request.url.path] += 1

    @property
    def jwks(self) -> int:
        return self.paths[JWKS_PATH]


def counting_verifier(
    issuer: str, audience: str = API, **kwargs: Any
) -> tuple[JWTVerifier, Fetches]:
    fetches = Fetches()
    client = httpx.Client(timeout=5, event_hooks={"request": [fetches]})
    return JWTVerifier(issuer, audience, http_client=client, **kwargs), fetches


@pytest.fixture
def make_verifier() -> Iterator[Callable[..., tuple[JWTVerifier, Fetches]]]:
    made: list[JWTVerifier] = []

    def make(issuer: str, audience: str = API, **kwargs: Any) -> tuple[JWTVerifier, Fetches]:
        verifier, fetches = counting_verifier(issuer, audience, **kwargs)
        made.append(verifier)
        return verifier, fetches

    yield make
    for verifier in made:
        verifier.close()


def server_key(auth: ServedAuthServer, kid: str) -> RSAKey:
    """The server's own private key (its key file: ``<kid>.key.json`` holding PKCS#8 PEM)."""
    document = json.loads((auth.server.keys_dir / f"{kid}.key.json").read_text())
    return RSAKey.import_key(document["private_key"], {"kid": kid})


def sign(key: Key, claims: dict[str, Any], **header: Any) -> str:
    """A JWT signed with ``key``; ``typ`` at+jwt unless the header says otherwise
    (``typ=None`` leaves it out)."""
    full = {"typ": "at+jwt", "alg": "RS256", "kid": key.kid, **header}
    full = {name: value for name, value in full.items() if value is not None}
    return jwt.encode(full, claims, key, algorithms=[full["alg"]], default_type=None)


@dataclass(frozen=True)
class FromNow:
    """A time claim ``seconds`` after the moment the token is made: parameters are built at
    collection, which may be many minutes before the test runs."""

    seconds: int


def good_claims(auth: ServedAuthServer, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": auth.issuer,
        "sub": "cli_forged",
        "aud": API,
        "exp": now + 600,
        "iat": now,
        "jti": secrets.token_urlsafe(16),
        "client_id": "cli_forged",
        "scope": "tasks:read",
    }
    claims.update(
        {name: now + v.seconds if isinstance(v, FromNow) else v for name, v in changes.items()}
    )
    return {name: value for name, value in claims.items() if value is not None}


@pytest.fixture(scope="module")
def probe(auth: ServedAuthServer) -> dict[str, Any]:
    return auth.create_client("--name", "kid-probe", "--scope", "api")


@pytest.fixture
def signed_by_server(auth: ServedAuthServer, probe: dict[str, Any]) -> Callable[..., str]:
    """Tokens with chosen claims and header, validly signed by the server's current key (the
    kid of a token issued now, so this holds after a key rotation too)."""

    def make(claims: dict[str, Any] | None = None, **header: Any) -> str:
        kid = header_of(issue(auth, probe))["kid"]
        return sign(server_key(auth, kid), claims or good_claims(auth), **header)

    return make


def rejected(verifier: JWTVerifier, token: str) -> str:
    """Verification fails with InvalidToken; its message never repeats the token."""
    with pytest.raises(InvalidToken) as caught:
        verifier.verify(token)
    message = str(caught.value)
    assert 0 < len(message) < 80
    for part in token.split("."):
        if len(part) >= 8:
            assert part not in message
    return message


# -- the real auth server ------------------------------------------------------------------------


def test_valid_token_gives_its_claims(
    auth: ServedAuthServer, reader: dict[str, Any], token: str
) -> None:
    verifier = JWTVerifier(auth.issuer, API)
    claims = verifier.verify(token)
    assert claims["iss"] == auth.issuer
    assert claims["aud"] == API
    assert claims["client_id"] == claims["sub"] == reader["client_id"]
    assert claims["scope"] == "tasks:read api"
    assert {"exp", "iat", "jti"} <= claims.keys()
    verifier.close()


def test_the_jwks_is_cached_per_its_max_age(
    auth: ServedAuthServer, token: str, make_verifier: Any
) -> None:
    verifier, fetches = make_verifier(auth.issuer)
    for _ in range(3):
        verifier.verify(token)
    assert fetches.paths == {METADATA_PATH: 1, JWKS_PATH: 1}


def test_many_threads_share_one_fetch(
    auth: ServedAuthServer, token: str, make_verifier: Any
) -> None:
    verifier, fetches = make_verifier(auth.issuer)
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(verifier.verify, [token] * 64))
    assert all(claims["aud"] == API for claims in results)
    assert fetches.jwks == 1


def test_wrong_audience_is_rejected(auth: ServedAuthServer, outsider: dict[str, Any]) -> None:
    verifier = JWTVerifier(auth.issuer, API)
    assert rejected(verifier, issue(auth, outsider)) == "invalid aud claim"
    verifier.close()


def test_audience_may_be_one_of_several(auth: ServedAuthServer, signed_by_server: Any) -> None:
    verifier = JWTVerifier(auth.issuer, API)
    several = good_claims(auth, aud=["https://other.example.test", API])
    assert verifier.verify(signed_by_server(several))["aud"] == several["aud"]
    others = good_claims(auth, aud=["https://other.example.test", "https://x.example.test"])
    assert rejected(verifier, signed_by_server(others)) == "invalid aud claim"
    verifier.close()


def test_a_verifier_for_another_issuer_name_refuses_to_start(
    auth: ServedAuthServer, token: str
) -> None:
    """The metadata's issuer must be exactly the configured one (RFC 8414 §3.3)."""
    verifier = JWTVerifier(auth.issuer + "/", API)
    with pytest.raises(VerifierUnavailable, match="different issuer"):
        verifier.verify(token)
    verifier.close()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"iss": "https://evil.example.test"}, "invalid iss claim"),
        ({"exp": None}, "missing claim: exp"),
        ({"client_id": None}, "missing claim: client_id"),
        ({"exp": "tomorrow"}, "invalid exp claim"),
        ({"nbf": FromNow(600)}, "token not yet valid"),
        ({"iat": FromNow(600)}, "invalid iat claim"),
        ({"scope": ["tasks:read"]}, "invalid scope claim"),
    ],
)
def test_bad_claims_are_rejected_even_when_signed_by_the_server(
    auth: ServedAuthServer, signed_by_server: Any, changes: dict[str, Any], message: str
) -> None:
    verifier = JWTVerifier(auth.issuer, API)
    assert rejected(verifier, signed_by_server(good_claims(auth, **changes))) == message
    verifier.close()


def test_expiry_with_leeway(auth: ServedAuthServer, signed_by_server: Any) -> None:
    now = int(time.time())
    long_gone = signed_by_server(good_claims(auth, exp=now - 120, iat=now - 600))
    just_gone = signed_by_server(good_claims(auth, exp=now - 5, iat=now - 600))
    soon = signed_by_server(good_claims(auth, nbf=now + 5))
    lenient = JWTVerifier(auth.issuer, API)  # default leeway: 30 s
    strict = JWTVerifier(auth.issuer, API, leeway=0)
    assert rejected(lenient, long_gone) == "token expired"
    assert lenient.verify(just_gone)["exp"] == now - 5
    assert lenient.verify(soon)
    assert rejected(strict, just_gone) == "token expired"
    assert rejected(strict, soon) == "token not yet valid"
    lenient.close()
    strict.close()


def test_a_real_short_lived_token_expires(auth: ServedAuthServer) -> None:
    client = auth.create_client(
        "--name", "brief", "--scope", "api", "--audience", API, "--token-ttl", "1"
    )
    short = issue(auth, client)
    exp = claims_of(short)["exp"]
    wall = ManualClock(exp - 1)  # the verifiers read the time from it instead of waiting
    lenient = JWTVerifier(auth.issuer, API, wall_clock=wall)  # default leeway: 30 s
    strict = JWTVerifier(auth.issuer, API, leeway=0, wall_clock=wall)
    assert lenient.verify(short)["exp"] - claims_of(short)["iat"] == 1
    assert strict.verify(short)
    wall.now = exp  # RFC 7519 §4.1.4: not accepted "on or after" exp
    assert rejected(strict, short) == "token expired"
    assert lenient.verify(short)
    wall.now = exp + 30
    assert rejected(lenient, short) == "token expired"
    lenient.close()
    strict.close()


@pytest.mark.parametrize(
    ("typ", "accepted"),
    [
        ("at+jwt", True),
        ("AT+JWT", True),
        ("application/at+jwt", True),
        (None, False),
        ("JWT", False),
        ("jwt", False),
        ("application/jwt", False),
        ("at+jwt; x", False),
    ],
)
def test_typ_must_be_at_jwt(
    auth: ServedAuthServer, signed_by_server: Any, typ: str | None, accepted: bool
) -> None:
    verifier = JWTVerifier(auth.issuer, API)
    forged = signed_by_server(typ=typ)
    if accepted:
        assert verifier.verify(forged)["sub"] == "cli_forged"
    else:
        assert rejected(verifier, forged) == "not an access token (typ must be at+jwt)"
    verifier.close()


def test_alg_none_is_rejected(auth: ServedAuthServer, token: str) -> None:
    verifier = JWTVerifier(auth.issuer, API)
    kid = header_of(token)["kid"]
    for alg in ("none", "None", "NONE"):
        header = b64json({"typ": "at+jwt", "alg": alg, "kid": kid})
        for signature in ("", token.split(".")[2]):
            forged = f"{header}.{b64json(good_claims(auth))}.{signature}"
            assert rejected(verifier, forged) == "algorithm not allowed"
    verifier.close()


def test_hs256_with_the_public_key_as_secret_is_rejected(
    auth: ServedAuthServer, token: str
) -> None:
    """The classic confusion: HMAC keyed with the published public key's bytes."""
    kid = header_of(token)["kid"]
    jwk = next(k for k in httpx.get(auth.issuer + JWKS_PATH).json()["keys"] if k["kid"] == kid)
    public = RSAKey.import_key(jwk)
    secrets_to_try = [
        public.as_pem(private=False),
        public.as_der(private=False),
        json.dumps(jwk).encode(),
        json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode(),
        base64.urlsafe_b64decode(jwk["n"] + "=" * (-len(jwk["n"]) % 4)),
    ]
    verifier = JWTVerifier(auth.issuer, API)
    for alg, digest in (("HS256", hashlib.sha256), ("HS512", hashlib.sha512)):
        for secret in secrets_to_try:
            header = b64json({"typ": "at+jwt", "alg": alg, "kid": kid})
            signing_input = f"{header}.{b64json(good_claims(auth))}"
            signature = hmac.new(secret, signing_input.encode(), digest).digest()
            assert (
                rejected(verifier, f"{signing_input}.{b64(signature)}") == "algorithm not allowed"
            )
    verifier.close()


@pytest.mark.parametrize("algorithms", [("HS256",), ("RS256", "HS256"), ("none",), (), ("XS999",)])
def test_symmetric_or_unknown_algorithms_cannot_be_configured(algorithms: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="algorithm"):
        JWTVerifier("https://auth.example.test", API, algorithms)


def test_es256_signed_token_naming_the_servers_rsa_kid_is_rejected(
    auth: ServedAuthServer, token: str
) -> None:
    """RS/ES confusion: even with both algorithms allowed, the alg must fit the key's type."""
    verifier = JWTVerifier(auth.issuer, API, algorithms=("RS256", "ES256"))
    ec = ECKey.generate_key("P-256")
    forged = sign(ec, good_claims(auth), alg="ES256", kid=header_of(token)["kid"])
    assert rejected(verifier, forged) == "algorithm does not match the signing key"
    assert verifier.verify(token)  # the RSA-signed token still passes
    verifier.close()


def test_forgeries_are_rejected(auth: ServedAuthServer, token: str) -> None:
    verifier = JWTVerifier(auth.issuer, API)
    kid = header_of(token)["kid"]
    mine = RSAKey.generate_key(2048)
    # Our key, the server's kid: the signature cannot match.
    assert rejected(verifier, sign(mine, good_claims(auth), kid=kid)) == "bad signature"
    # A real token with a widened scope: the signature no longer covers the payload.
    header, payload, signature = token.split(".")
    widened = {**claims_of(token), "scope": "tasks:read tasks:admin"}
    assert rejected(verifier, f"{header}.{b64json(widened)}.{signature}") == "bad signature"
    # Signature stripped or garbled.
    assert rejected(verifier, f"{header}.{payload}.") == "bad signature"
    assert rejected(verifier, f"{header}.{payload}.{signature[::-1]}") == "bad signature"
    # No kid at all.
    assert rejected(verifier, sign(mine, good_claims(auth), kid=None)) == "missing kid"
    verifier.close()


GARBAGE = [
    "",
    " ",
    "abc",
    "a.b",
    "a.b.c",
    "...",
    "a.b.c.d.e",
    "eyJ.eyJ.",
    "☃.☃.☃",
    "\x00.\x00.\x00",
    f"{b64json([])}.{b64json({})}.",
    f"{b64json('at+jwt')}.{b64json({})}.",
    f"{b64(b'{not json')}.{b64json({})}.",
    "x" * 200_000,
    f"{b64json({'typ': 'at+jwt', 'alg': 'RS256', 'kid': 'k' * 1000})}.e30.",
]


@pytest.mark.parametrize("garbage", GARBAGE, ids=range(len(GARBAGE)))
def test_garbage_is_invalid_token(auth: ServedAuthServer, garbage: str) -> None:
    verifier = JWTVerifier(auth.issuer, API)
    rejected(verifier, garbage)
    verifier.close()


@pytest.fixture(scope="module")
def fuzz_verifier(auth: ServedAuthServer, token: str) -> Iterator[JWTVerifier]:
    """One verifier, keys already fetched, for every fuzzed example."""
    verifier = JWTVerifier(auth.issuer, API)
    verifier.verify(token)
    yield verifier
    verifier.close()


@settings(
    max_examples=150,
    deadline=None,
)
@given(
    header=st.dictionaries(
        st.sampled_from(["typ", "alg", "kid", "crit", "b64", "jku", "x"]),
        st.one_of(st.text(max_size=12), st.integers(), st.none(), st.lists(st.text(max_size=4))),
    ),
    payload=st.one_of(st.text(max_size=40), st.binary(max_size=40)),
    signature=st.text(max_size=20),
)
def test_fuzzed_tokens_only_ever_raise_invalid_token(
    fuzz_verifier: JWTVerifier, header: dict[str, Any], payload: str | bytes, signature: str
) -> None:
    verifier = fuzz_verifier
    raw = payload.encode() if isinstance(payload, str) else payload
    with pytest.raises(InvalidToken):
        verifier.verify(f"{b64json(header)}.{b64(raw)}.{signature}")
    with pytest.raises(InvalidToken):
        verifier.verify(f"{b64json(header)}.{b64(raw)}{signature}")


def jwks_requests_logged(auth: ServedAuthServer) -> int:
    """JWKS requests in the server's own access log."""
    return sum(
        1
        for line in auth.server.stderr().splitlines()
        if '"event":"http.request"' in line and f'"path":"{JWKS_PATH}"' in line
    )


def random_kid_tokens(auth: ServedAuthServer, count: int) -> list[str]:
    mine = RSAKey.generate_key(2048)
    return [sign(mine, good_claims(auth), kid=secrets.token_urlsafe(32)) for _ in range(count)]


def test_random_kids_cause_no_refetch_right_after_a_fetch(
    auth: ServedAuthServer, token: str, make_verifier: Any
) -> None:
    verifier, fetches = make_verifier(auth.issuer)  # default: refetch at most every 30 s
    verifier.verify(token)
    for forged in random_kid_tokens(auth, 50):
        assert rejected(verifier, forged) == "unknown signing key"
    assert fetches.jwks == 1


def test_fifty_random_kids_cause_at_most_one_refetch(
    auth: ServedAuthServer, token: str, make_verifier: Any
) -> None:
    """Once the refetch interval has passed, a burst of forged kids (from many threads) costs
    the authorization server exactly one more JWKS request, counted in its own access log."""
    forged = random_kid_tokens(auth, 50)
    clock = ManualClock()
    verifier, fetches = make_verifier(auth.issuer, refetch_interval=1.5, clock=clock)
    verifier.verify(token)
    clock.now += 1.5
    logged_before = jwks_requests_logged(auth)
    with ThreadPoolExecutor(10) as pool:
        messages = list(pool.map(lambda t: rejected(verifier, t), forged))
    assert set(messages) == {"unknown signing key"}
    assert fetches.jwks == 2
    # The server writes a request's access-log line before it sends the response, so every
    # JWKS request the verifier has had an answer to is already logged: nothing to wait for.
    assert jwks_requests_logged(auth) == logged_before + 1


def test_key_rotation_needs_one_refetch(
    auth: ServedAuthServer, reader: dict[str, Any], make_verifier: Any
) -> None:
    old_token = issue(auth, reader)
    clock = ManualClock()
    verifier, fetches = make_verifier(auth.issuer, refetch_interval=0.5, clock=clock)
    verifier.verify(old_token)
    assert fetches.jwks == 1

    new_kid = ok_json(run_in_process(auth.server.env, "keys", "rotate", "--now", "--json"))["kid"]
    assert new_kid != header_of(old_token)["kid"]

    def signed_with_the_new_key() -> str | None:
        fresh = issue(auth, reader)
        return fresh if header_of(fresh)["kid"] == new_kid else None

    # The contract: running servers see CLI changes within 2 s.
    new_token = wait_until(signed_with_the_new_key, 5, f"the server signing with {new_kid}")
    clock.now += 0.5  # the refetch interval since the first fetch

    # Many threads meet the new kid at once: one refetch between them.
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(verifier.verify, [new_token] * 16))
    assert {claims["jti"] for claims in results} == {claims_of(new_token)["jti"]}
    assert fetches.jwks == 2
    assert verifier.verify(old_token)  # the retired key stays published
    assert fetches.jwks == 2


def test_unreachable_issuer_is_unavailable_not_invalid(token: str) -> None:
    verifier = JWTVerifier(f"http://127.0.0.1:{free_port()}", API, timeout=2)
    with pytest.raises(VerifierUnavailable):
        verifier.verify(token)
    # Garbage is still judged without the keys.
    rejected(verifier, "not-a-token")
    verifier.close()


def test_importing_the_module_loads_no_web_framework() -> None:
    code = (
        "import sys, authserver.resource\n"
        "loaded = {'flask', 'fastapi', 'starlette', 'werkzeug'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("public, max-age=300", 300),
        ("max-age=60", 60),
        ('max-age="60"', 60),
        ("PUBLIC, MAX-AGE=5", 5),
        ("no-store", 0),
        ("no-cache", 0),
        ("max-age=600, no-cache", 0),
        ("max-age=0", 0),
        ("max-age=-5", 0),
        ("max-age=soon", 123),
        ("public", 123),
        ("", 123),
        (None, 123),
    ],
)
def test_cache_max_age(header: str | None, seconds: float) -> None:
    assert cache_max_age(header, 123) == seconds


# -- a local issuer for what the real server cannot be made to do -------------------------------


class LocalIssuer:
    """Metadata and a JWKS served by a real werkzeug server, with knobs."""

    def __init__(self) -> None:
        self.url = ""  # set once it is served
        self.issuer = ""
        self.jwks: list[dict[str, Any]] = []
        self.cache_control: str | None = "max-age=300"
        self.etag: str | None = None
        self.jwks_status = 200
        self.hits: Counter[str] = Counter()

    def publish(self, *keys: Key) -> None:
        self.jwks = [{**key.as_dict(private=False), "use": "sig"} for key in keys]

    def app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.hits[request.path] += 1
        if request.path == METADATA_PATH:
            response = Response(
                json.dumps({"issuer": self.issuer, "jwks_uri": self.url + JWKS_PATH}),
                mimetype="application/json",
            )
        elif request.path == JWKS_PATH and self.jwks_status != 200:
            response = Response("oops", status=self.jwks_status)
        elif request.path == JWKS_PATH:
            response = Response(json.dumps({"keys": self.jwks}), mimetype="application/json")
            if self.cache_control is not None:
                response.headers["Cache-Control"] = self.cache_control
            if self.etag:
                response.set_etag(self.etag)
                if request.if_none_match.contains(self.etag):
                    response.status_code = 304
                    response.set_data(b"")
        else:
            response = Response("not found", status=404)
        return response(environ, start_response)

    def claims(self, **changes: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": "s", "aud": API, "exp": now + 600, "iat": now}
        return {**claims, "jti": secrets.token_hex(8), "client_id": "s", **changes}


@pytest.fixture
def local() -> Iterator[LocalIssuer]:
    issuer = LocalIssuer()
    with serving(issuer.app) as url:
        issuer.url = issuer.issuer = url
        yield issuer


@pytest.fixture(scope="module")
def rsa_key() -> RSAKey:
    return RSAKey.generate_key(2048, auto_kid=True)


def test_es256_and_ed25519_when_allowed(
    local: LocalIssuer, rsa_key: RSAKey, make_verifier: Any
) -> None:
    ec = ECKey.generate_key("P-256", auto_kid=True)
    ed = OKPKey.generate_key("Ed25519", auto_kid=True)
    local.publish(rsa_key, ec, ed)
    es_token = sign(ec, local.claims(), alg="ES256")
    ed_token = sign(ed, local.claims(), alg="Ed25519")
    rs_token = sign(rsa_key, local.claims())
    verifier, _ = make_verifier(local.url, algorithms=("ES256", "Ed25519"))
    assert verifier.verify(es_token)["iss"] == local.url
    assert verifier.verify(ed_token)["iss"] == local.url
    assert rejected(verifier, rs_token) == "algorithm not allowed"
    default, _ = make_verifier(local.url)
    assert rejected(default, es_token) == "algorithm not allowed"
    assert default.verify(rs_token)


def test_alg_must_fit_the_key(local: LocalIssuer, rsa_key: RSAKey, make_verifier: Any) -> None:
    ec = ECKey.generate_key("P-256", auto_kid=True)
    local.publish(rsa_key, ec)
    verifier, _ = make_verifier(local.url, algorithms=("RS256", "ES256", "ES384"))
    # RS256 naming the EC key's kid; ES384 naming a P-256 key; ES256 naming the RSA key.
    other_rsa = RSAKey.generate_key(2048)
    assert rejected(verifier, sign(other_rsa, local.claims(), kid=ec.kid)) == (
        "algorithm does not match the signing key"
    )
    p384 = ECKey.generate_key("P-384")
    assert rejected(verifier, sign(p384, local.claims(), alg="ES384", kid=ec.kid)) == (
        "algorithm does not match the signing key"
    )
    assert rejected(verifier, sign(ec, local.claims(), alg="ES256", kid=rsa_key.kid)) == (
        "algorithm does not match the signing key"
    )


def test_the_jwks_alg_binds_the_key(
    local: LocalIssuer, rsa_key: RSAKey, make_verifier: Any
) -> None:
    local.publish(rsa_key)
    local.jwks[0]["alg"] = "PS256"
    verifier, _ = make_verifier(local.url, algorithms=("RS256", "PS256"))
    assert (
        rejected(verifier, sign(rsa_key, local.claims()))
        == "algorithm does not match the signing key"
    )
    assert verifier.verify(sign(rsa_key, local.claims(), alg="PS256"))


def test_unusable_keys_in_the_jwks_are_skipped(
    local: LocalIssuer, rsa_key: RSAKey, make_verifier: Any
) -> None:
    local.publish(rsa_key)
    local.jwks[:0] = [
        {"kty": "XYZ", "kid": "future"},
        {"kty": "RSA", "kid": "broken", "n": "!", "e": "AQAB"},
        "not a key",  # type: ignore[list-item]
        {**local.jwks[0], "kid": "for-encryption", "use": "enc"},
    ]
    verifier, _ = make_verifier(local.url)
    assert verifier.verify(sign(rsa_key, local.claims()))
    assert (
        rejected(verifier, sign(rsa_key, local.claims(), kid="for-encryption"))
        == "unknown signing key"
    )


@pytest.mark.parametrize(
    ("cache_control", "fetches_for_two"),
    [("no-store", 2), ("no-cache", 2), (None, 1), ("max-age=300", 1)],
)
def test_cache_control_decides_refetching(
    local: LocalIssuer,
    rsa_key: RSAKey,
    make_verifier: Any,
    cache_control: str | None,
    fetches_for_two: int,
) -> None:
    local.publish(rsa_key)
    local.cache_control = cache_control
    verifier, fetches = make_verifier(local.url)
    verifier.verify(sign(rsa_key, local.claims()))
    verifier.verify(sign(rsa_key, local.claims()))
    assert fetches.jwks == fetches_for_two
    assert fetches.paths[METADATA_PATH] == 1


def test_max_age_expiry_and_etag_revalidation(
    local: LocalIssuer, rsa_key: RSAKey, make_verifier: Any
) -> None:
    local.publish(rsa_key)
    local.cache_control = "max-age=1"
    local.etag = "v1"
    clock = ManualClock()
    fetched_at = clock.now
    verifier, fetches = make_verifier(local.url, clock=clock)
    verifier.verify(sign(rsa_key, local.claims()))
    clock.now = fetched_at + 0.99
    verifier.verify(sign(rsa_key, local.claims()))
    assert fetches.jwks == 1
    clock.now = fetched_at + 1
    verifier.verify(sign(rsa_key, local.claims()))  # revalidated: 304, the cached keys stay
    assert fetches.jwks == 2
    verifier.verify(sign(rsa_key, local.claims()))
    assert fetches.jwks == 2


def test_keys_unavailable_then_stale_keys_then_recovery(
    local: LocalIssuer, rsa_key: RSAKey, make_verifier: Any
) -> None:
    local.publish(rsa_key)
    local.jwks_status = 500
    verifier, fetches = make_verifier(local.url)
    good = sign(rsa_key, local.claims())
    with pytest.raises(VerifierUnavailable, match="500"):
        verifier.verify(good)
    with pytest.raises(VerifierUnavailable):  # no fetch per request while it is down
        verifier.verify(good)
    assert fetches.jwks == 1

    verifier.RETRY_AFTER_FAILURE_SECONDS = 0.0
    local.jwks_status = 200
    local.cache_control = "no-store"
    assert verifier.verify(good)
    assert fetches.jwks == 2

    # The issuer breaks again: the keys fetched a moment ago keep working.
    local.jwks_status = 503
    assert verifier.verify(good)
    assert fetches.jwks == 3


def test_malformed_jwks_is_unavailable(local: LocalIssuer, make_verifier: Any) -> None:
    local.jwks = []
    verifier, _ = make_verifier(local.url)
    with pytest.raises(VerifierUnavailable, match="no usable keys"):
        verifier.verify(sign(RSAKey.generate_key(2048, auto_kid=True), local.claims()))


def test_metadata_naming_another_issuer_is_unavailable(
    local: LocalIssuer, rsa_key: RSAKey, make_verifier: Any
) -> None:
    local.publish(rsa_key)
    local.issuer = "https://impostor.example.test"
    verifier, fetches = make_verifier(local.url)
    with pytest.raises(VerifierUnavailable, match="different issuer"):
        verifier.verify(sign(rsa_key, local.claims(iss=local.url)))
    assert fetches.jwks == 0


# -- the Flask decorator over real HTTP ---------------------------------------------------------


@pytest.fixture(scope="module")
def flask_api(auth: ServedAuthServer) -> Iterator[str]:
    verifier = JWTVerifier(auth.issuer, API)
    down = JWTVerifier(f"http://127.0.0.1:{free_port()}", API, timeout=2)
    app = Flask(__name__)

    @app.get("/tasks")
    @require_scope(verifier, "tasks:read", realm="tasks")
    def tasks() -> Any:
        return jsonify(client_id=g.token_claims["client_id"], tasks=["write tests"])

    @app.post("/tasks")
    @require_scope(verifier, "tasks:read", "tasks:write", realm="tasks")
    def add_task() -> Any:
        return jsonify(created=True), 201

    @app.get("/down")
    @require_scope(down, "tasks:read")
    def unavailable() -> Any:
        return jsonify(reached=True)

    with serving(app) as url:
        yield url
    verifier.close()
    down.close()


def test_flask_valid_token_reaches_the_view(
    flask_api: str, reader: dict[str, Any], token: str
) -> None:
    response = httpx.get(f"{flask_api}/tasks", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json() == {"client_id": reader["client_id"], "tasks": ["write tests"]}
    lower_scheme = httpx.get(f"{flask_api}/tasks", headers={"Authorization": f"bearer {token}"})
    assert lower_scheme.status_code == 200


@pytest.mark.parametrize("authorization", [None, "", "Bearer", "Basic dXNlcjpwYXNz", "Token abc"])
def test_flask_no_token_is_a_bare_challenge(flask_api: str, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = httpx.get(f"{flask_api}/tasks", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="tasks"'
    assert response.json()["error_description"] == "a Bearer access token is required"


def test_flask_invalid_token(flask_api: str, token: str) -> None:
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    response = httpx.get(f"{flask_api}/tasks", headers={"Authorization": f"Bearer {tampered}"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == (
        'Bearer realm="tasks", error="invalid_token", error_description="bad signature"'
    )
    assert response.json() == {"error": "invalid_token", "error_description": "bad signature"}
    assert tampered not in response.text


def test_flask_insufficient_scope(flask_api: str, token: str) -> None:
    response = httpx.post(f"{flask_api}/tasks", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    assert response.headers["WWW-Authenticate"] == (
        'Bearer realm="tasks", error="insufficient_scope", '
        'error_description="the token lacks a required scope", scope="tasks:read tasks:write"'
    )
    assert response.json()["error"] == "insufficient_scope"


def test_flask_unavailable_keys_are_503(flask_api: str, token: str) -> None:
    response = httpx.get(f"{flask_api}/down", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"
    assert "WWW-Authenticate" not in response.headers
