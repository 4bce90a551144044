"""A key client whose keys are at a ``jwks_uri``, through a real ``authserver serve`` (granian,
one worker, requests on its event loop): the server fetches the keys and issues the token; a
key host that never answers costs its own client a 401, while a secret client of the same
worker keeps getting tokens at once.

The key hosts are plain-http servers on loopback (the one place http is allowed).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from joserfc.jwk import ECKey

from authserver.oauth.client_assertion import JWT_BEARER
from tests.support.served import ServedAuthServer, served_auth_server

GRANT = {"grant_type": "client_credentials"}


class KeyHost:
    """A loopback http server serving one JWK Set, or holding every request when ``stalled``."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.stalled = threading.Event()
        self.released = threading.Event()
        self.requests = 0
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                host.requests += 1
                if host.stalled.is_set():
                    host.released.wait(30)
                    return
                body = json.dumps(host.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/jwk-set+json")
                self.send_header("Cache-Control", "max-age=300")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the test reads ``requests`` instead."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/jwks.json"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> KeyHost:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.released.set()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def key() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": "pod-key-1"})


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedAuthServer]:
    with served_auth_server(tmp_path_factory.mktemp("jwks-uri"), workers=1) as server:
        yield server


def key_client(served: ServedAuthServer, jwks_uri: str) -> str:
    created = served.create_client(
        "--name", "fetched", "--scope", "api", "--auth-method", "private_key_jwt",
        "--jwks-uri", jwks_uri,
    )  # fmt: skip
    client_id: str = created["client_id"]
    return client_id


def assertion(key: ECKey, client_id: str, audience: str) -> str:
    now = int(time.time())
    claims = {
        "iss": client_id, "sub": client_id, "aud": audience,
        "iat": now, "exp": now + 60, "jti": uuid.uuid4().hex,
    }  # fmt: skip
    return jwt.encode(claims, key.as_pem(private=True), algorithm="ES256", headers={"kid": key.kid})


def post_assertion(served: ServedAuthServer, signed: str) -> requests.Response:
    form = {**GRANT, "client_assertion_type": JWT_BEARER, "client_assertion": signed}
    return requests.post(served.token_url, data=form, timeout=20)


def test_the_server_fetches_the_clients_keys_once_and_issues_tokens(
    served: ServedAuthServer, key: ECKey
) -> None:
    with KeyHost({"keys": [key.as_dict(private=False)]}) as host:
        client_id = key_client(served, host.url)

        first = post_assertion(served, assertion(key, client_id, served.issuer))
        second = post_assertion(served, assertion(key, client_id, served.issuer))

    assert first.status_code == 200, first.text
    assert second.status_code == 200, second.text
    assert host.requests == 1  # cached for its max-age


def test_a_key_host_that_never_answers_costs_its_client_a_401_and_nobody_else_anything(
    served: ServedAuthServer, key: ECKey, tmp_path: Path
) -> None:
    secret_client = served.create_client("--name", "bystander", "--scope", "api")
    bystander = (secret_client["client_id"], secret_client["client_secret"])
    with KeyHost({"keys": [key.as_dict(private=False)]}) as host:
        host.stalled.set()
        client_id = key_client(served, host.url)
        outcome: dict[str, Any] = {}

        def stuck_client() -> None:
            started = time.monotonic()
            response = post_assertion(served, assertion(key, client_id, served.issuer))
            outcome.update(status=response.status_code, seconds=time.monotonic() - started)

        waiting = threading.Thread(target=stuck_client)
        waiting.start()
        deadline = time.monotonic() + 10
        while host.requests == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert host.requests == 1, "the server never asked the key host"

        # The one worker's event loop is free while the fetch hangs: the bystander's tokens
        # come while the stuck request is still waiting for its client's keys.
        for _ in range(5):
            response = requests.post(served.token_url, data=GRANT, auth=bystander, timeout=20)
            assert response.status_code == 200, response.text
        still_waiting = waiting.is_alive()
        waiting.join(timeout=20)

    assert still_waiting
    assert outcome["status"] == 401
    assert outcome["seconds"] >= 4  # it waited out the fetch's 5 s deadline, no longer
    assert "jwks_uri" in served.server.stderr()
