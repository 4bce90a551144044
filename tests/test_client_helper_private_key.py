"""``ClientCredentials(private_key=...)``: ``private_key_jwt`` (RFC 7523 §2.2) from the client
helper, against a real ``authserver serve`` with clients registered by the CLI from their public
JWK Sets, and against a small recording token endpoint that keeps exactly what it received (the
assertion's claims are read there, including with an injected wall clock). Also the key
helpers that the interop and example tests share."""

from __future__ import annotations

import asyncio
import base64
import json
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from joserfc import jwt
from joserfc.jwk import ECKey, OKPKey, RSAKey
from werkzeug.wrappers import Request, Response

from authserver.client import AsyncClientCredentials, ClientCredentials, TokenError
from authserver.client.assertion import ASSERTION_LIFETIME, ASSERTION_TYPE
from authserver.wellknown import METADATA_PATH
from tests.support.clock import ManualClock
from tests.support.served import ServedAuthServer, served_auth_server
from tests.support.wsgi import serving

#: What the helper can sign with, and so what every test here runs through.
ALGORITHMS = ("RS256", "PS256", "ES256", "EdDSA")
API_AUDIENCE = "https://api.example.test"

PrivateKeyObject = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


# -- keys and key clients (shared with the interop and example tests) ----------------------


def new_private_key(algorithm: str) -> PrivateKeyObject:
    """A fresh key that ``algorithm`` signs with (RSA 2048 for RS256 and PS256)."""
    if algorithm in ("RS256", "PS256"):
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    return ed25519.Ed25519PrivateKey.generate()


def joserfc_key(key: PrivateKeyObject) -> RSAKey | ECKey | OKPKey:
    if isinstance(key, rsa.RSAPrivateKey):
        return RSAKey.import_key(key)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return ECKey.import_key(key)
    return OKPKey.import_key(key)


def pkcs8_pem(key: PrivateKeyObject) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_jwk(key: PrivateKeyObject, kid: str) -> dict[str, Any]:
    """The public half as a JWK, as an admin registers it (no ``alg``: the server then lets
    the key's type decide, so ``EdDSA`` and ``Ed25519`` both verify with an Ed25519 key)."""
    public: dict[str, Any] = joserfc_key(key).as_dict(private=False)
    return {**public, "kid": kid, "use": "sig"}


def register_key_client(
    auth: ServedAuthServer, directory: Path, name: str, *jwks: dict[str, Any]
) -> dict[str, Any]:
    """``clients create --auth-method private_key_jwt --jwks-file`` for a set of public JWKs."""
    path = directory / f"{name}.jwks.json"
    path.write_text(json.dumps({"keys": list(jwks)}))
    return auth.create_client(
        "--name", name, "--scope", "api", "--audience", API_AUDIENCE,
        "--auth-method", "private_key_jwt", "--jwks-file", str(path),
    )  # fmt: skip


@dataclass(frozen=True)
class KeyClient:
    """A client registered with the public half of ``key``, which it signs with."""

    client_id: str
    key: PrivateKeyObject
    kid: str
    algorithm: str


def register_key_clients(auth: ServedAuthServer, directory: Path) -> dict[str, KeyClient]:
    """One key client per algorithm, each registered with the public half of its own key."""
    clients = {}
    for algorithm in ALGORITHMS:
        key, kid = new_private_key(algorithm), f"{algorithm.lower()}-1"
        created = register_key_client(auth, directory, algorithm, public_jwk(key, kid))
        assert "client_secret" not in created
        clients[algorithm] = KeyClient(created["client_id"], key, kid, algorithm)
    return clients


def decoded(assertion: str, key: PrivateKeyObject, algorithm: str) -> jwt.Token:
    """The assertion verified with the public half of ``key`` (so it was signed with it)."""
    public = joserfc_key(key).as_dict(private=False)
    verifier = type(joserfc_key(key)).import_key(public)
    return jwt.decode(assertion, verifier, algorithms=[algorithm])


def unverified_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


# -- what the helper sends -------------------------------------------------------------------


@dataclass
class Sent:
    """Every request an httpx client sends: method, url, headers and url-decoded form."""

    requests: list[tuple[str, str, httpx.Headers, dict[str, str]]] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> None:
        form = dict(httpx.QueryParams(request.read().decode()))
        self.requests.append((request.method, str(request.url), request.headers, form))

    async def on_async(self, request: httpx.Request) -> None:
        self(request)

    def posts(self) -> list[tuple[httpx.Headers, dict[str, str]]]:
        return [(headers, form) for method, _, headers, form in self.requests if method == "POST"]


@pytest.fixture
def sent() -> Sent:
    return Sent()


@pytest.fixture
def http(sent: Sent) -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10, event_hooks={"request": [sent]}) as client:
        yield client


# -- a live server with one key client per algorithm -----------------------------------------


@pytest.fixture(scope="module")
def auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedAuthServer]:
    with served_auth_server(tmp_path_factory.mktemp("auth")) as served:
        yield served


@pytest.fixture(scope="module")
def key_clients(
    auth: ServedAuthServer, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, KeyClient]:
    return register_key_clients(auth, tmp_path_factory.mktemp("jwks"))


def key_source(client: KeyClient, http: httpx.Client, **where: Any) -> ClientCredentials:
    return ClientCredentials(
        client.client_id, private_key=client.key, key_id=client.kid,
        algorithm=client.algorithm, http_client=http, **where,
    )  # fmt: skip


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_key_client_gets_a_token_and_reuses_it(
    auth: ServedAuthServer,
    key_clients: dict[str, KeyClient],
    http: httpx.Client,
    sent: Sent,
    algorithm: str,
) -> None:
    client = key_clients[algorithm]
    source = key_source(client, http, issuer=auth.issuer)
    token = source.token()
    assert all(source.token() == token for _ in range(5))

    assert [method for method, *_ in sent.requests] == ["GET", "POST"]
    [(headers, form)] = sent.posts()
    # RFC 7521 §4.2: the assertion is the credential; nothing goes in a Basic header.
    assert "Authorization" not in headers
    assert form["client_assertion_type"] == ASSERTION_TYPE
    assertion = decoded(form["client_assertion"], client.key, algorithm)
    assert assertion.header["alg"] == algorithm
    assert assertion.header["kid"] == client.kid
    assert assertion.claims["aud"] == auth.issuer
    claims = unverified_claims(token)
    assert claims["client_id"] == claims["sub"] == client.client_id
    assert claims["iss"] == auth.issuer


def test_each_fetch_sends_a_new_assertion_and_each_is_accepted(
    auth: ServedAuthServer, key_clients: dict[str, KeyClient], http: httpx.Client, sent: Sent
) -> None:
    clock = ManualClock()
    source = ClientCredentials(
        key_clients["ES256"].client_id, private_key=key_clients["ES256"].key,
        algorithm="ES256", token_url=auth.token_url, http_client=http, clock=clock,
    )  # fmt: skip
    first = source.token()
    clock.now += 1800  # past the refresh point of a 1800 s token: a new fetch
    second = source.token()
    source.invalidate()
    third = source.token()

    assert len({first, second, third}) == 3
    assertions = [form["client_assertion"] for _, form in sent.posts()]
    jtis = [unverified_claims(assertion)["jti"] for assertion in assertions]
    assert len(set(jtis)) == 3
    # With token_url alone the assertion names the token endpoint, which the server accepts.
    assert {unverified_claims(assertion)["aud"] for assertion in assertions} == {auth.token_url}


def test_a_key_the_client_did_not_register_is_invalid_client(
    auth: ServedAuthServer, key_clients: dict[str, KeyClient], http: httpx.Client
) -> None:
    registered = key_clients["RS256"]
    impostor = new_private_key("RS256")
    source = ClientCredentials(
        registered.client_id, private_key=impostor, key_id=registered.kid,
        token_url=auth.token_url, http_client=http,
    )  # fmt: skip
    with pytest.raises(TokenError) as raised:
        source.token()
    assert raised.value.error == "invalid_client"
    assert raised.value.status == 401


def test_a_secret_client_cannot_use_a_key(auth: ServedAuthServer, http: httpx.Client) -> None:
    secret_client = auth.create_client("--name", "secret-client", "--scope", "api")
    source = ClientCredentials(
        secret_client["client_id"], private_key=new_private_key("ES256"), algorithm="ES256",
        token_url=auth.token_url, http_client=http,
    )  # fmt: skip
    with pytest.raises(TokenError) as raised:
        source.token()
    assert (raised.value.error, raised.value.status) == ("invalid_client", 401)


def test_async_tasks_share_one_fetch(
    auth: ServedAuthServer, key_clients: dict[str, KeyClient], sent: Sent
) -> None:
    client = key_clients["EdDSA"]

    async def main() -> list[str]:
        hooks = {"request": [sent.on_async]}
        async with (
            httpx.AsyncClient(timeout=10, event_hooks=hooks) as http,
            AsyncClientCredentials(
                client.client_id, private_key=client.key, key_id=client.kid,
                algorithm="EdDSA", issuer=auth.issuer, http_client=http,
            ) as source,
        ):  # fmt: skip
            return await asyncio.gather(*(source.token() for _ in range(8)))

    tokens = asyncio.run(main())
    assert len(set(tokens)) == 1
    assert unverified_claims(tokens[0])["client_id"] == client.client_id
    assert len(sent.posts()) == 1


# -- exactly what an assertion says: a recording token endpoint ------------------------------


@dataclass
class RecordingServer:
    """RFC 8414 metadata naming itself as issuer, and a token endpoint that records each
    request's headers and form and answers with an opaque token."""

    url: str = ""
    received: list[tuple[dict[str, str], dict[str, str]]] = field(default_factory=list)

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"

    def app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        if request.path == METADATA_PATH:
            body = {"issuer": self.url, "token_endpoint": self.token_url}
        else:
            self.received.append((dict(request.headers), request.form.to_dict()))
            body = {
                "access_token": f"opaque-{len(self.received)}",
                "token_type": "Bearer",
                "expires_in": 600,
            }
        return Response(json.dumps(body), mimetype="application/json")(environ, start_response)


@pytest.fixture(scope="module")
def _recording_server() -> Iterator[RecordingServer]:
    server = RecordingServer()
    with serving(server.app) as url:
        server.url = url
        yield server


@pytest.fixture
def recording(_recording_server: RecordingServer) -> RecordingServer:
    _recording_server.received.clear()
    return _recording_server


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_assertion_claims_as_rfc_7523_section_3_asks(
    recording: RecordingServer, algorithm: str
) -> None:
    key = new_private_key(algorithm)
    wall = ManualClock(1_800_000_000.0)
    with ClientCredentials(
        "cli_key", private_key=key, key_id="k-1", algorithm=algorithm, issuer=recording.url,
        scope="api", wall_clock=wall,
    ) as source:  # fmt: skip
        source.token()

    [(headers, form)] = recording.received
    assert "Authorization" not in headers
    assert set(form) == {"grant_type", "scope", "client_assertion_type", "client_assertion"}
    assert form["client_assertion_type"] == ASSERTION_TYPE
    assertion = decoded(form["client_assertion"], key, algorithm)
    assert assertion.header == {"alg": algorithm, "kid": "k-1", "typ": "JWT"}
    claims = assertion.claims
    assert set(claims) == {"iss", "sub", "aud", "iat", "exp", "jti"}
    assert claims["iss"] == claims["sub"] == "cli_key"
    assert claims["aud"] == recording.url
    assert claims["iat"] == 1_800_000_000
    assert claims["exp"] == 1_800_000_000 + ASSERTION_LIFETIME == claims["iat"] + 60
    jti = claims["jti"]
    assert len(base64.urlsafe_b64decode(jti + "=" * (-len(jti) % 4))) * 8 >= 128


def test_assertion_times_follow_the_wall_clock_not_the_cache_clock(
    recording: RecordingServer,
) -> None:
    key = new_private_key("ES256")
    cache_clock, wall = ManualClock(5.0), ManualClock(1_800_000_000.0)
    source = ClientCredentials(
        "cli_key", private_key=key, algorithm="ES256", token_url=recording.token_url,
        clock=cache_clock, wall_clock=wall,
    )  # fmt: skip
    with source:
        source.token()
        cache_clock.now += 10_000  # the cached token is due for refresh; wall time stands still
        source.token()
        wall.now += 123
        source.invalidate()
        source.token()

    claims = [unverified_claims(form["client_assertion"]) for _, form in recording.received]
    assert [c["iat"] for c in claims] == [1_800_000_000, 1_800_000_000, 1_800_000_123]
    assert len({c["jti"] for c in claims}) == 3
    assert {c["aud"] for c in claims} == {recording.token_url}


def test_signing_with_eddsa_warns_no_one(recording: RecordingServer) -> None:
    # joserfc warns on each EdDSA signature (RFC 9864 prefers "Ed25519"); the caller chose
    # EdDSA by name, and a warning per token request would only fill the service's logs.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with ClientCredentials(
            "cli_key", private_key=new_private_key("EdDSA"), algorithm="EdDSA",
            token_url=recording.token_url,
        ) as source:  # fmt: skip
            source.token()
    assert [str(warning.message) for warning in caught] == []
    assert len(recording.received) == 1


def test_key_id_is_optional(recording: RecordingServer) -> None:
    key = new_private_key("PS256")
    with ClientCredentials(
        "cli_key", private_key=key, algorithm="PS256", token_url=recording.token_url
    ) as source:
        source.token()
    [(_, form)] = recording.received
    assert decoded(form["client_assertion"], key, "PS256").header == {"alg": "PS256", "typ": "JWT"}


def key_forms(key: ec.EllipticCurvePrivateKey, directory: Path) -> dict[str, Any]:
    """The same key in each form ``private_key`` takes."""
    path = directory / "client.pem"
    path.write_bytes(pkcs8_pem(key))
    traditional = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return {
        "path": path,
        "path str": str(path),
        "PKCS#8 PEM bytes": pkcs8_pem(key),
        "SEC1 PEM bytes": traditional,
        "joserfc key": ECKey.import_key(key),
        "cryptography key": key,
    }


def test_every_form_of_the_key_signs_the_same_way(
    recording: RecordingServer, tmp_path: Path
) -> None:
    key = new_private_key("ES256")
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    for form_name, private_key in key_forms(key, tmp_path).items():
        with ClientCredentials(
            "cli_key", private_key=private_key, algorithm="ES256", token_url=recording.token_url
        ) as source:
            source.token()
        _, form = recording.received[-1]
        assert decoded(form["client_assertion"], key, "ES256").claims["sub"] == "cli_key", form_name


def test_the_pem_file_is_read_once_when_the_source_is_made(
    recording: RecordingServer, tmp_path: Path
) -> None:
    key = new_private_key("RS256")
    path = tmp_path / "client.pem"
    path.write_bytes(pkcs8_pem(key))
    source = ClientCredentials("cli_key", private_key=path, token_url=recording.token_url)
    path.unlink()  # nothing on the request path reads it again
    with source:
        source.token()
        source.invalidate()
        source.token()
    assert len(recording.received) == 2
    for _, form in recording.received:
        decoded(form["client_assertion"], key, "RS256")


def test_repr_never_shows_the_key(tmp_path: Path) -> None:
    key = new_private_key("RS256")
    source = ClientCredentials(
        "cli_key", private_key=key, key_id="k-1", token_url="http://127.0.0.1:9/token"
    )
    text = repr(source)
    assert text == (
        "ClientCredentials(client_id='cli_key', private_key='***', key_id='k-1', "
        "algorithm='RS256', token_url='http://127.0.0.1:9/token', scope=None, audience=None)"
    )
    private_jwk = joserfc_key(key).as_dict(private=True)
    for member in ("d", "p", "q"):
        assert private_jwk[member] not in text
    assert repr(source._credential).count("***") == 1
    source.close()


# -- construction errors: at once, before any request ----------------------------------------


def encrypted_pem(key: PrivateKeyObject) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    )


def public_pem(key: PrivateKeyObject) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


RSA_KEY = new_private_key("RS256")
#: The key the helper must refuse for being too short.
WEAK_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
EC_KEY = new_private_key("ES256")
ED_KEY = new_private_key("EdDSA")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"client_secret": "s", "private_key": EC_KEY}, "exactly one of client_secret"),
        ({}, "exactly one of client_secret"),
        ({"client_secret": "s", "key_id": "k"}, "key_id .* needs private_key"),
        ({"client_id": "", "private_key": EC_KEY, "algorithm": "ES256"}, "client_id"),
        ({"private_key": EC_KEY, "algorithm": "HS256"}, "'HS256' is not one of"),
        ({"private_key": EC_KEY, "algorithm": "none"}, "'none' is not one of"),
        ({"private_key": EC_KEY}, "RS256 needs an RSA key, not an EC secp256r1 key"),
        ({"private_key": ED_KEY, "algorithm": "PS256"}, "PS256 needs an RSA key"),
        ({"private_key": RSA_KEY, "algorithm": "ES256"}, "ES256 needs an EC P-256 key"),
        ({"private_key": ED_KEY, "algorithm": "ES256"}, "ES256 needs an EC P-256 key"),
        ({"private_key": EC_KEY, "algorithm": "EdDSA"}, "EdDSA needs an Ed25519 key"),
        (
            {"private_key": ec.generate_private_key(ec.SECP384R1()), "algorithm": "ES256"},
            "not an EC secp384r1 key",
        ),
        (
            {"private_key": WEAK_RSA_KEY},
            "1024-bit RSA key: RS256 needs at least 2048 bits",
        ),
        ({"private_key": RSA_KEY.public_key()}, "is a public key"),
        ({"private_key": RSAKey.import_key(RSA_KEY.public_key())}, "is a public key"),
        ({"private_key": public_pem(RSA_KEY)}, "not an unencrypted PEM private key"),
        ({"private_key": encrypted_pem(RSA_KEY)}, "encrypted private key"),
        ({"private_key": b"not a key"}, "not an unencrypted PEM private key"),
        ({"private_key": pkcs8_pem(RSA_KEY).decode()}, "a str private_key is a file path"),
        ({"private_key": "/nonexistent/client.pem"}, "cannot read private_key"),
        ({"private_key": RSA_KEY, "key_id": ""}, "key_id must be a non-empty string"),
    ],
)
def test_bad_arguments_fail_at_construction(arguments: dict[str, Any], message: str) -> None:
    arguments = {"client_id": "cli_key", **arguments}
    client_id = arguments.pop("client_id")
    secret = arguments.pop("client_secret", None)
    for kind in (ClientCredentials, AsyncClientCredentials):
        with pytest.raises(ValueError, match=message) as raised:
            kind(client_id, secret, token_url="http://127.0.0.1:9/token", **arguments)
        assert "PRIVATE KEY" not in str(raised.value)
