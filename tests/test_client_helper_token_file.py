"""``ClientCredentials.from_token_file`` and ``from_platform_token``: workload identity
federation from the client's side. The platform's JWT is read anew at every token fetch (so a
platform that rotates the file needs nothing from the service), sent unchanged as the
``client_assertion``, and never shown; a file that cannot give a token fails the fetch naming
the path. First against a recording token endpoint (what exactly is sent), then against a real
``authserver serve`` that trusts a stand-in Kubernetes issuer (tests/support/workload_issuer.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from authserver.client import (
    AsyncClientCredentials,
    ClientCredentials,
    PlatformTokenError,
    TokenError,
)
from authserver.client.assertion import ASSERTION_TYPE
from authserver.client.platform_token import MAX_TOKEN_BYTES
from tests.support.federated import add_trust, verified
from tests.support.served import ServedAuthServer, served_auth_server
from tests.support.workload_issuer import WorkloadIssuer

TOKEN_URL = "https://auth.example.test/oauth2/token"
AUDIENCE = "https://auth.example.test"


@pytest.fixture(scope="module")
def platform() -> Iterator[WorkloadIssuer]:
    with WorkloadIssuer() as issuer:
        yield issuer


class Recorder:
    """A token endpoint (an httpx transport) that keeps each request's headers and form and
    answers with a new access token each time."""

    def __init__(self) -> None:
        self.posts: list[tuple[httpx.Headers, dict[str, str]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        form = dict(httpx.QueryParams(request.read().decode()))
        self.posts.append((request.headers, form))
        body = {
            "access_token": f"access-{len(self.posts)}",
            "token_type": "Bearer",
            "expires_in": 1800,
            "scope": "api",
        }
        return httpx.Response(200, json=body)

    def assertions(self) -> list[str]:
        return [form["client_assertion"] for _, form in self.posts]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def http(recorder: Recorder) -> Iterator[httpx.Client]:
    with httpx.Client(transport=httpx.MockTransport(recorder)) as client:
        yield client


def kubelet_projected(directory: Path, token: str) -> Path:
    """The file as the kubelet lays out a projected volume: ``token`` is a link through
    ``..data``, a link to a timestamped folder, swapped atomically on each rotation."""
    generation = directory / f"..2026_11_26_{len(list(directory.glob('..2026_*'))):09d}"
    generation.mkdir()
    (generation / "token").write_text(token)
    swap = directory / "..data_tmp"
    swap.symlink_to(generation.name)
    os.replace(swap, directory / "..data")
    path = directory / "token"
    if not path.is_symlink():
        path.symlink_to("..data/token")
    return path


# -- what is sent, and when the file is read --------------------------------------------------


def test_each_fetch_sends_the_file_s_current_token_and_nothing_else(
    platform: WorkloadIssuer, recorder: Recorder, http: httpx.Client, tmp_path: Path
) -> None:
    first = platform.kubernetes_token("payments", "billing", AUDIENCE)
    path = kubelet_projected(tmp_path, first)
    source = ClientCredentials.from_token_file(path, token_url=TOKEN_URL, http_client=http)

    assert source.token() == "access-1"
    [(headers, form)] = recorder.posts
    assert form == {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": first,
    }
    assert "Authorization" not in headers

    # The kubelet rotates the token; the next fetch sends the new one without any restart.
    second = platform.kubernetes_token("payments", "billing", AUDIENCE)
    kubelet_projected(tmp_path, second)
    source.invalidate()
    assert source.token() == "access-2"
    assert recorder.assertions() == [first, second]


def test_the_access_token_is_cached_and_the_file_is_not_read_again_until_it_is_due(
    platform: WorkloadIssuer, recorder: Recorder, http: httpx.Client, tmp_path: Path
) -> None:
    path = tmp_path / "token"
    path.write_text(platform.kubernetes_token("ns", "sa", AUDIENCE) + "\n")
    source = ClientCredentials.from_token_file(path, token_url=TOKEN_URL, http_client=http)
    token = source.token()
    path.unlink()  # a read now would fail: none happens while the access token is fresh
    assert all(source.token() == token for _ in range(5))
    assert len(recorder.posts) == 1
    source.invalidate()
    with pytest.raises(PlatformTokenError):
        source.token()


def test_client_id_scope_and_audience_are_sent_when_given(
    platform: WorkloadIssuer, recorder: Recorder, http: httpx.Client, tmp_path: Path
) -> None:
    path = tmp_path / "token"
    path.write_text(platform.kubernetes_token("ns", "sa", AUDIENCE))
    source = ClientCredentials.from_token_file(
        path, token_url=TOKEN_URL, http_client=http, client_id="cli_billing",
        scope=["read", "write"], audience="https://api.example.test",
    )  # fmt: skip
    source.token()
    [(_, form)] = recorder.posts
    assert form["client_id"] == "cli_billing"
    assert form["scope"] == "read write"
    assert form["audience"] == "https://api.example.test"
    assert source.client_id == "cli_billing"


def test_from_platform_token_calls_get_token_at_each_fetch(
    platform: WorkloadIssuer, recorder: Recorder, http: httpx.Client
) -> None:
    issued: list[str] = []

    def get_token() -> str:
        issued.append(platform.github_actions_token("octo-org/octo-repo", AUDIENCE))
        return issued[-1]

    source = ClientCredentials.from_platform_token(get_token, token_url=TOKEN_URL, http_client=http)
    source.token()
    source.token()
    source.invalidate()
    source.token()
    assert recorder.assertions() == issued
    assert len(issued) == 2


def test_threads_that_find_the_cache_empty_share_one_read_and_one_fetch(
    platform: WorkloadIssuer, recorder: Recorder, http: httpx.Client
) -> None:
    reads = 0
    token = platform.spiffe_svid("spiffe://example.org/billing", AUDIENCE)
    entered = threading.Barrier(8)

    def get_token() -> str:
        nonlocal reads
        reads += 1
        return token

    source = ClientCredentials.from_platform_token(get_token, token_url=TOKEN_URL, http_client=http)
    results: list[str] = []

    def caller() -> None:
        entered.wait()
        results.append(source.token())

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert results == ["access-1"] * 8
    assert (reads, len(recorder.posts)) == (1, 1)


def test_async_source_reads_the_file_at_each_fetch(
    platform: WorkloadIssuer, recorder: Recorder, tmp_path: Path
) -> None:
    path = tmp_path / "token"
    tokens = [platform.kubernetes_token("ns", "sa", AUDIENCE) for _ in range(2)]

    async def main() -> list[str]:
        transport = httpx.MockTransport(recorder)
        async with (
            httpx.AsyncClient(transport=transport) as http,
            AsyncClientCredentials.from_token_file(
                path, token_url=TOKEN_URL, http_client=http
            ) as source,
        ):
            fetched = []
            for token in tokens:
                path.write_text(token)
                source.invalidate()
                fetched.append(await source.token())
            return fetched

    assert asyncio.run(main()) == ["access-1", "access-2"]
    assert recorder.assertions() == tokens


# -- failures: clear, naming the file, never the token ----------------------------------------


def _write(content: bytes) -> Callable[[Path], Path]:
    def make(directory: Path) -> Path:
        path = directory / "token"
        path.write_bytes(content)
        return path

    return make


NOT_A_TOKEN = b"-----BEGIN CERTIFICATE-----\nMIIB secret-looking\n-----END CERTIFICATE-----\n"


@pytest.mark.parametrize(
    ("make", "says"),
    [
        pytest.param(lambda d: d / "missing", "No such file or directory", id="missing"),
        pytest.param(lambda d: d, "Is a directory", id="directory"),
        pytest.param(_write(b""), "is empty", id="empty"),
        pytest.param(_write(b" \n"), "is empty", id="blank"),
        pytest.param(_write(NOT_A_TOKEN), "is not a JWT", id="not-a-jwt"),
        pytest.param(_write("é.é.é".encode()), "does not hold a JWT", id="not-ascii"),
        pytest.param(_write(b"a" * (MAX_TOKEN_BYTES + 1)), "more than 65536", id="too-large"),
    ],
)
def test_a_file_without_a_token_fails_the_fetch_naming_the_path(
    recorder: Recorder,
    http: httpx.Client,
    tmp_path: Path,
    make: Callable[[Path], Path],
    says: str,
) -> None:
    path = make(tmp_path)
    # Not at construction: a pod may start before the kubelet has projected the token.
    source = ClientCredentials.from_token_file(path, token_url=TOKEN_URL, http_client=http)
    with pytest.raises(PlatformTokenError) as raised:
        source.token()
    error = raised.value
    assert isinstance(error, TokenError)
    assert (error.error, error.status) == ("invalid_client", None)
    assert str(path) in str(error)
    assert says in str(error)
    assert "secret-looking" not in str(error) + repr(error)
    assert recorder.posts == []


def test_waiters_share_a_failed_read(recorder: Recorder, http: httpx.Client) -> None:
    """Callers that queued behind a read that failed get its error instead of a read each
    (the first step of a fetch is inside the single flight too)."""
    reads = 0
    reading, release = threading.Event(), threading.Event()

    def get_token() -> str:
        nonlocal reads
        reads += 1
        reading.set()
        release.wait(5)
        raise PlatformTokenError("the platform token file '/x' is empty")

    source = ClientCredentials.from_platform_token(get_token, token_url=TOKEN_URL, http_client=http)
    errors: list[BaseException] = []

    def caller() -> None:
        try:
            source.token()
        except TokenError as exc:
            errors.append(exc)

    first = threading.Thread(target=caller)
    first.start()
    assert reading.wait(5)
    waiters = [threading.Thread(target=caller) for _ in range(2)]
    for thread in waiters:
        thread.start()
    # Nothing to poll for "blocked on the lock"; a moment is plenty for two threads to get
    # there, and a slow machine only makes the waiters read for themselves (reads > 1).
    time.sleep(0.2)
    release.set()
    for thread in [first, *waiters]:
        thread.join(timeout=10)
    assert len(errors) == 3
    assert all(isinstance(error, PlatformTokenError) for error in errors)
    assert "'/x' is empty" in str(errors[-1])
    assert reads == 1
    assert recorder.posts == []


def test_get_token_s_own_failure_becomes_a_platform_token_error(
    recorder: Recorder, http: httpx.Client
) -> None:
    def unreachable() -> str:
        raise ConnectionError("runner token service refused")

    source = ClientCredentials.from_platform_token(
        unreachable, token_url=TOKEN_URL, http_client=http
    )
    with pytest.raises(PlatformTokenError, match="ConnectionError: runner token service refused"):
        source.token()

    passed = TokenError("temporarily_unavailable", "try later", 503)

    def fails_as_token_error() -> str:
        raise passed

    source = ClientCredentials.from_platform_token(
        fails_as_token_error, token_url=TOKEN_URL, http_client=http
    )
    with pytest.raises(TokenError) as raised:
        source.token()
    assert raised.value.error == "temporarily_unavailable"
    assert recorder.posts == []


@pytest.mark.parametrize("returned", ["", "not a jwt", None])
def test_get_token_returning_no_jwt_is_refused_before_sending(
    recorder: Recorder, http: httpx.Client, returned: Any
) -> None:
    source = ClientCredentials.from_platform_token(
        lambda: returned, token_url=TOKEN_URL, http_client=http
    )
    with pytest.raises(PlatformTokenError):
        source.token()
    assert recorder.posts == []


def test_repr_names_the_file_never_the_token(
    platform: WorkloadIssuer, http: httpx.Client, tmp_path: Path
) -> None:
    token = platform.kubernetes_token("ns", "sa", AUDIENCE)
    path = tmp_path / "token"
    path.write_text(token)
    source = ClientCredentials.from_token_file(
        path, issuer="https://auth.example.test/", http_client=http
    )
    shown = repr(source)
    assert f"platform_token=TokenFile({str(path)!r})" in shown
    assert "issuer='https://auth.example.test'" in shown
    assert "client_id=None" in shown
    assert token not in shown
    assert token.split(".")[1] not in shown


def test_configuration_mistakes_are_value_errors_at_construction(tmp_path: Path) -> None:
    path = tmp_path / "token"
    with pytest.raises(ValueError, match="exactly one of token_url or issuer"):
        ClientCredentials.from_token_file(path)
    with pytest.raises(ValueError, match="client_id must not be empty"):
        ClientCredentials.from_token_file(path, token_url=TOKEN_URL, client_id="")
    with pytest.raises(ValueError, match="token file path must not be empty"):
        ClientCredentials.from_token_file("", token_url=TOKEN_URL)
    with pytest.raises(ValueError, match="exactly one of client_secret"):
        ClientCredentials("cli_x", "secret", platform_token=lambda: "a.b.c", token_url=TOKEN_URL)
    with pytest.raises(ValueError, match="key_id names the private_key"):
        ClientCredentials(platform_token=lambda: "a.b.c", key_id="k", token_url=TOKEN_URL)
    with pytest.raises(TypeError, match="callable"):
        ClientCredentials(platform_token="a.b.c", token_url=TOKEN_URL)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="client_secret must not be empty"):
        ClientCredentials(None, "secret", token_url=TOKEN_URL)


def test_a_refusal_carries_the_server_s_words_never_the_token(
    platform: WorkloadIssuer, recorder: Recorder, http: httpx.Client, tmp_path: Path
) -> None:
    """An error raised after a read (the server said no) carries the server's text, not
    the token that was sent."""
    token = platform.kubernetes_token("ns", "sa", AUDIENCE)
    path = tmp_path / "token"
    path.write_text(token)

    def refuse(request: httpx.Request) -> httpx.Response:
        recorder(request)
        body = {"error": "invalid_client", "error_description": "client authentication failed"}
        return httpx.Response(401, json=body)

    with httpx.Client(transport=httpx.MockTransport(refuse)) as refusing:
        source = ClientCredentials.from_token_file(path, token_url=TOKEN_URL, http_client=refusing)
        with pytest.raises(TokenError) as raised:
            source.token()
    assert (raised.value.error, raised.value.status) == ("invalid_client", 401)
    assert token not in json.dumps([str(raised.value), repr(raised.value)])


# -- against a real authserver serve that trusts the stand-in issuer ---------------------------


@pytest.fixture(scope="module")
def auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedAuthServer]:
    with served_auth_server(tmp_path_factory.mktemp("auth")) as served:
        yield served


@pytest.fixture(scope="module")
def trusted(auth: ServedAuthServer, platform: WorkloadIssuer) -> dict[str, str]:
    """Two service accounts of the stand-in cluster, each trusted as its own client."""
    clients = {}
    for account in ("reader", "writer"):
        client_id = auth.create_client("--name", account, "--scope", "api")["client_id"]
        subject = f"system:serviceaccount:payments:{account}"
        add_trust(auth, client_id, platform.issuer, subject, auth.issuer, "--allow-reuse")
        clients[account] = client_id
    return clients


def test_served_the_rotated_file_s_token_is_the_next_fetch_s_credential(
    auth: ServedAuthServer, platform: WorkloadIssuer, trusted: dict[str, str], tmp_path: Path
) -> None:
    """The file first holds the reader's token, then (rotated in place, as the kubelet does)
    the writer's: the access token after the rotation is the writer's, so that fetch sent
    the new file's token; before it, the cached access token is reused."""
    reader = platform.kubernetes_token("payments", "reader", auth.issuer)
    path = kubelet_projected(tmp_path, reader)
    with ClientCredentials.from_token_file(path, issuer=auth.issuer) as source:
        first = source.token()
        claims = verified(auth, first, trusted["reader"])
        assert claims["act"] == {
            "sub": "system:serviceaccount:payments:reader", "iss": platform.issuer
        }  # fmt: skip
        kubelet_projected(tmp_path, platform.kubernetes_token("payments", "writer", auth.issuer))
        assert source.token() == first  # cached: the file is not even read
        source.invalidate()
        second = source.token()
    claims = verified(auth, second, trusted["writer"])
    assert claims["act"] == {"sub": "system:serviceaccount:payments:writer", "iss": platform.issuer}


def test_served_async_source_with_client_id(
    auth: ServedAuthServer, platform: WorkloadIssuer, trusted: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "token"
    path.write_text(platform.kubernetes_token("payments", "reader", auth.issuer))

    async def fetch() -> str:
        async with AsyncClientCredentials.from_token_file(
            path, issuer=auth.issuer, client_id=trusted["reader"]
        ) as source:
            return await source.token()

    claims = verified(auth, asyncio.run(fetch()), trusted["reader"])
    assert claims["act"]["sub"] == "system:serviceaccount:payments:reader"


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"exp": 1_000_000_000, "iat": 999_999_000}, id="expired"),
        pytest.param({"sub": "system:serviceaccount:payments:stranger"}, id="untrusted-subject"),
        pytest.param({"aud": ["https://kubernetes.default.svc"]}, id="another-audience"),
    ],
)
def test_served_a_token_no_trust_accepts_is_invalid_client(
    auth: ServedAuthServer,
    platform: WorkloadIssuer,
    trusted: dict[str, str],
    tmp_path: Path,
    claims: dict[str, Any],
) -> None:
    path = tmp_path / "token"
    path.write_text(platform.kubernetes_token("payments", "reader", auth.issuer, **claims))
    with (
        ClientCredentials.from_token_file(path, issuer=auth.issuer) as source,
        pytest.raises(TokenError) as raised,
    ):
        source.token()
    assert (raised.value.error, raised.value.status) == ("invalid_client", 401)
    assert not isinstance(raised.value, PlatformTokenError)


def test_served_client_id_of_another_client_is_refused(
    auth: ServedAuthServer, platform: WorkloadIssuer, trusted: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "token"
    path.write_text(platform.kubernetes_token("payments", "reader", auth.issuer))
    source = ClientCredentials.from_token_file(
        path, issuer=auth.issuer, client_id=trusted["writer"]
    )
    with source, pytest.raises(TokenError) as raised:
        source.token()
    assert (raised.value.error, raised.value.status) == ("invalid_client", 401)


def test_served_spiffe_svid_file_with_the_bundle_as_jwks_uri(
    auth: ServedAuthServer, tmp_path: Path
) -> None:
    """A SPIFFE helper writes the workload's JWT-SVID to a file; the trust names the SPIFFE
    bundle endpoint as --jwks-uri (SPIFFE has no OpenID discovery)."""
    spiffe_id = "spiffe://example.org/ns/payments/sa/billing"
    with WorkloadIssuer("ES256") as spire:
        client_id = auth.create_client("--name", "svid", "--scope", "api")["client_id"]
        add_trust(
            auth, client_id, spire.issuer, spiffe_id, auth.issuer,
            "--jwks-uri", spire.bundle_uri, "--allow-reuse",
        )  # fmt: skip
        path = tmp_path / "svid.token"
        path.write_text(spire.spiffe_svid(spiffe_id, auth.issuer))
        with ClientCredentials.from_token_file(path, issuer=auth.issuer) as source:
            access_token = source.token()
        assert spire.fetches["/bundle"] >= 1
        assert spire.fetches["/.well-known/openid-configuration"] == 0
        claims = verified(auth, access_token, client_id)
        assert claims["act"] == {"sub": spiffe_id, "iss": spire.issuer}
