"""Fixtures of the fast tier: the OAuth layer in memory (no server, database, Flask or sleep).

Keys are real and generated once per session (RSA generation is the slowest step of the
tier); everything else is rebuilt per test, so tests share nothing but the keys.
"""

from __future__ import annotations

import socket
import subprocess
import time
from typing import Any, NoReturn

import jwt
import pytest

from authserver.oauth.server import AuthorizationServer
from authserver.security.keys import KeyStore, SigningKey
from tests.support.clock import ManualClock
from tests.support.memory_backend import (
    EPOCH,
    ISSUER,
    MemoryBackend,
    MemoryClient,
    build_server,
)

#: What a generated secret looks like (``ascs_`` + 43 URL-safe characters).
SECRET = "ascs_" + "k" * 43
OTHER_SECRET = "ascs_" + "o" * 43
SCOPES = ("read", "write")
API_A = "https://a.example.test/api"
API_B = "https://b.example.test"


@pytest.fixture(autouse=True)
def _no_sleep_socket_or_subprocess(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tier's rules, enforced rather than hoped for: a test that sleeps, connects, serves
    or starts a process belongs to the slow tier, and fails here saying so."""

    def refused(*args: object, **kwargs: object) -> NoReturn:
        raise AssertionError(
            "the fast tier has no sleep, socket or subprocess: move the clock (ManualClock) "
            "or move the test out of tests/fast"
        )

    monkeypatch.setattr(time, "sleep", refused)
    monkeypatch.setattr(socket.socket, "connect", refused)
    monkeypatch.setattr(socket.socket, "bind", refused)
    monkeypatch.setattr(subprocess, "Popen", refused)


@pytest.fixture(scope="session")
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> SigningKey:
    """The server's RS256 key, made by the real KeyStore (so shaped as the server's are)."""
    return KeyStore(tmp_path_factory.mktemp("fast-keys") / "keys").generate()


@pytest.fixture(scope="session")
def other_key(tmp_path_factory: pytest.TempPathFactory) -> SigningKey:
    """A second RS256 key: a foreign signer, or the server's next key in a rotation."""
    return KeyStore(tmp_path_factory.mktemp("fast-other-keys") / "keys").generate()


@pytest.fixture
def clock() -> ManualClock:
    """Epoch seconds, moved only by the test."""
    return ManualClock(EPOCH)


@pytest.fixture
def backend(clock: ManualClock, signing_key: SigningKey) -> MemoryBackend:
    return MemoryBackend(clock, keys=[signing_key], signing_key=signing_key)


@pytest.fixture
def server(backend: MemoryBackend, clock: ManualClock) -> AuthorizationServer:
    return build_server(backend, clock)


@pytest.fixture
def client(backend: MemoryBackend) -> MemoryClient:
    """A client with a generated secret, two scopes and no audiences of its own."""
    return backend.register("cli_fast", SECRET, scopes=SCOPES)


@pytest.fixture
def other_client(backend: MemoryBackend) -> MemoryClient:
    return backend.register("cli_other", OTHER_SECRET, scopes=("api",))


def verified_claims(
    access_token: str, key: SigningKey, audience: str | list[str], issuer: str = ISSUER
) -> dict[str, Any]:
    """What a resource server accepts: the RS256 signature under ``key``'s public half, and
    the audience and issuer. ``exp``/``iat`` are left to the test: PyJWT compares them with
    real time, and these tokens live on the fake clock."""
    public = jwt.PyJWK(key.public_jwk()).key
    claims: dict[str, Any] = jwt.decode(
        access_token,
        public,
        algorithms=["RS256"],
        audience=audience,
        issuer=issuer,
        options={
            "require": ["iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope"],
            "verify_exp": False,
            "verify_iat": False,
            "verify_nbf": False,
        },
    )
    return claims
