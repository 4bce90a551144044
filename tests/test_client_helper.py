"""``authserver.client`` against a real ``authserver serve``: discovery, caching, refresh,
single-flight across threads and asyncio tasks, OAuth errors, and the requests/httpx auth
classes against a small protected API served over real HTTP. Token requests are counted at the
HTTP level with httpx event hooks on a real transport."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from werkzeug.wrappers import Request, Response

from authserver.client import (
    AsyncClientCredentials,
    BearerAuth,
    ClientCredentials,
    HTTPXBearerAuth,
    TokenError,
)
from tests.support.cli import ok_json
from tests.support.cli_in_process import run_in_process
from tests.support.clock import ManualClock
from tests.support.postgres import free_port
from tests.support.served import ServedAuthServer, served_auth_server
from tests.support.waiting import wait_until
from tests.support.wsgi import serving

API_AUDIENCE = "https://api.example.test"
OTHER_AUDIENCE = "https://other.example.test"
#: An admin-chosen secret with every character that RFC 6749 §2.3.1's form-encoding changes.
ODD_SECRET = "p@ss:w%rd +x/y&z=1"


@pytest.fixture(scope="module")
def auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedAuthServer]:
    with served_auth_server(tmp_path_factory.mktemp("auth")) as served:
        yield served


@pytest.fixture(scope="module")
def client(auth: ServedAuthServer) -> dict[str, Any]:
    return auth.create_client(
        "--name", "svc", "--scope", "api read",
        "--audience", API_AUDIENCE, "--audience", OTHER_AUDIENCE,
    )  # fmt: skip


@pytest.fixture(scope="module")
def short_lived(auth: ServedAuthServer) -> dict[str, Any]:
    return auth.create_client("--name", "short", "--scope", "api", "--token-ttl", "2")


# -- counting real HTTP -------------------------------------------------------------------


@dataclass
class Recorder:
    """Every request an httpx client sends, as (method, url)."""

    sent: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> None:
        self.sent.append((request.method, str(request.url)))

    async def on_async(self, request: httpx.Request) -> None:
        self(request)

    def posts(self) -> int:
        return sum(1 for method, _ in self.sent if method == "POST")


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def http(recorder: Recorder) -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10, event_hooks={"request": [recorder]}) as client:
        yield client


def source_for(
    client: dict[str, Any], http: httpx.Client, *, token_url: str, **kwargs: Any
) -> ClientCredentials:
    return ClientCredentials(
        client["client_id"], client["client_secret"], token_url=token_url, http_client=http,
        **kwargs,
    )  # fmt: skip


def claims(token: str) -> dict[str, Any]:
    """The JWT's payload, unverified: the tests only compare claims (jti, scope, aud)."""
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


# -- a protected API over real HTTP -------------------------------------------------------


@dataclass
class ProtectedAPI:
    """Answers 401 to tokens in ``rejected`` (or to every token with ``reject_all``) and 200
    with the request body otherwise; records each request's Authorization header and body."""

    url: str
    rejected: set[str] = field(default_factory=set)
    reject_all: bool = False
    seen: list[tuple[str | None, bytes]] = field(default_factory=list)

    def reset(self) -> None:
        self.rejected.clear()
        self.reject_all = False
        self.seen.clear()

    def tokens_seen(self) -> list[str | None]:
        return [header.removeprefix("Bearer ") if header else None for header, _ in self.seen]

    def app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        if request.path.startswith("/status/"):
            # Not an OAuth server: plain-text answers with any status, for TokenError tests.
            status = int(request.path.rsplit("/", 1)[1])
            return Response("not json", status=status, mimetype="text/plain")(
                environ, start_response
            )
        header = request.headers.get("Authorization")
        body = request.get_data()
        self.seen.append((header, body))
        token = header.removeprefix("Bearer ") if header and header.startswith("Bearer ") else None
        if token is None or self.reject_all or token in self.rejected:
            response = Response(
                "{}", status=401, mimetype="application/json",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )  # fmt: skip
        else:
            response = Response(
                json.dumps({"ok": True, "body": body.decode()}), mimetype="application/json"
            )
        return response(environ, start_response)


@pytest.fixture(scope="module")
def _api_server() -> Iterator[ProtectedAPI]:
    api = ProtectedAPI("")
    with serving(api.app) as url:
        api.url = url
        yield api


@pytest.fixture
def api(_api_server: ProtectedAPI) -> ProtectedAPI:
    _api_server.reset()
    return _api_server


# -- discovery and configuration ----------------------------------------------------------


def test_issuer_discovers_the_token_endpoint_once(
    auth: ServedAuthServer, client: dict[str, Any], http: httpx.Client, recorder: Recorder
) -> None:
    source = ClientCredentials(
        client["client_id"], client["client_secret"], issuer=auth.issuer + "/", http_client=http
    )
    assert source.token_url is None
    token = source.token()

    assert recorder.sent == [
        ("GET", f"{auth.issuer}/.well-known/oauth-authorization-server"),
        ("POST", auth.token_url),
    ]
    assert source.token_url == auth.token_url
    payload = claims(token)
    assert payload["iss"] == auth.issuer
    assert payload["client_id"] == client["client_id"]
    assert payload["scope"] == "api read"
    # A new token later needs no second discovery.
    source.invalidate()
    source.token()
    assert [method for method, _ in recorder.sent] == ["GET", "POST", "POST"]


def test_token_url_skips_discovery(
    auth: ServedAuthServer, client: dict[str, Any], http: httpx.Client, recorder: Recorder
) -> None:
    source = source_for(client, http, token_url=auth.token_url)
    source.token()
    assert recorder.sent == [("POST", auth.token_url)]


def test_metadata_for_another_issuer_is_refused_before_any_secret_is_sent(
    auth: ServedAuthServer, client: dict[str, Any], http: httpx.Client, recorder: Recorder
) -> None:
    # Same server, other name: its metadata says 127.0.0.1, so RFC 8414 §3.3 says no.
    issuer = auth.issuer.replace("127.0.0.1", "localhost")
    source = ClientCredentials(
        client["client_id"], client["client_secret"], issuer=issuer, http_client=http
    )
    with pytest.raises(TokenError) as raised:
        source.token()
    assert raised.value.error == "server_error"
    assert "RFC 8414" in str(raised.value)
    assert recorder.posts() == 0


def test_exactly_one_of_token_url_or_issuer() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        ClientCredentials("id", "secret")
    with pytest.raises(ValueError, match="exactly one"):
        ClientCredentials("id", "secret", token_url="http://a/t", issuer="http://a")
    with pytest.raises(ValueError, match="exactly one"):
        AsyncClientCredentials("id", "secret")


def test_scope_and_audience_are_requested(
    auth: ServedAuthServer, client: dict[str, Any], http: httpx.Client
) -> None:
    everything = claims(source_for(client, http, token_url=auth.token_url).token())
    assert everything["scope"] == "api read"
    assert sorted(everything["aud"]) == [API_AUDIENCE, OTHER_AUDIENCE]

    narrowed = source_for(
        client, http, token_url=auth.token_url, scope=["read"], audience=API_AUDIENCE
    )
    payload = claims(narrowed.token())
    assert payload["scope"] == "read"
    assert payload["aud"] == API_AUDIENCE


def test_basic_credentials_are_form_encoded(auth: ServedAuthServer, http: httpx.Client) -> None:
    # RFC 6749 §2.3.1: the server form-urldecodes id and secret; unencoded, this secret's
    # ':', '%', '+' and ' ' would reach it changed.
    odd = ok_json(
        run_in_process(
            auth.server.env, "clients", "create", "--json", "--name", "odd", "--scope", "api",
            "--secret-stdin", input=ODD_SECRET,
        )
    )  # fmt: skip
    source = ClientCredentials(
        odd["client_id"], ODD_SECRET, token_url=auth.token_url, http_client=http
    )
    assert claims(source.token())["client_id"] == odd["client_id"]


# -- caching, refresh, invalidation ---------------------------------------------------------


def test_second_call_uses_the_cached_token(
    auth: ServedAuthServer, client: dict[str, Any], http: httpx.Client, recorder: Recorder
) -> None:
    source = source_for(client, http, token_url=auth.token_url)
    first = source.token()
    assert source.token() == first
    assert source.token() == first
    assert recorder.posts() == 1


def reuse_bounds(
    token: str, expires_in: float, margin: float, before: float, after: float
) -> tuple[float, float]:
    """How long after its request the helper may reuse ``token``, at least and at most: its
    lifetime (the least of ``expires_in`` and what its ``exp`` left when read, a wall-clock
    moment between ``before`` and ``after``) less ``margin``, capped at half the lifetime."""
    exp = claims(token)["exp"]

    def reuse(lifetime: float) -> float:
        return lifetime - min(margin, lifetime / 2)

    return reuse(min(expires_in, exp - after)), reuse(min(expires_in, exp - before))


def test_token_is_refreshed_when_less_than_the_margin_remains(
    auth: ServedAuthServer, short_lived: dict[str, Any], http: httpx.Client, recorder: Recorder
) -> None:
    # A 2 s token with a 0.5 s margin is reused for 1.5 s (less what its exp, in whole
    # seconds, had already used up).
    clock = ManualClock()
    sent_at = clock.now
    source = source_for(
        short_lived, http, token_url=auth.token_url, refresh_margin=0.5, clock=clock
    )
    before = time.time()
    first = source.token()
    least, most = reuse_bounds(first, 2, 0.5, before, time.time())
    assert source.token() == first
    clock.now = sent_at + least - 0.01
    assert source.token() == first
    assert recorder.posts() == 1
    clock.now = sent_at + most
    second = source.token()
    assert recorder.posts() == 2
    assert claims(second)["jti"] != claims(first)["jti"]
    assert source.token() == second


def test_the_margin_is_capped_at_half_the_lifetime(
    auth: ServedAuthServer, short_lived: dict[str, Any], http: httpx.Client, recorder: Recorder
) -> None:
    # The default 180 s margin on a 2 s token: reused for 1 s (half the lifetime left by its
    # exp, in whole seconds), not refetched on every call.
    clock = ManualClock()
    sent_at = clock.now
    source = source_for(short_lived, http, token_url=auth.token_url, clock=clock)
    before = time.time()
    first = source.token()
    least, most = reuse_bounds(first, 2, 180, before, time.time())
    assert source.token() == first
    clock.now = sent_at + least - 0.01
    assert source.token() == first
    assert recorder.posts() == 1
    clock.now = sent_at + most
    assert claims(source.token())["jti"] != claims(first)["jti"]
    assert recorder.posts() == 2


def test_invalidate_drops_the_cached_token(
    auth: ServedAuthServer, client: dict[str, Any], http: httpx.Client, recorder: Recorder
) -> None:
    source = source_for(client, http, token_url=auth.token_url)
    first = source.token()
    source.invalidate("some other token")  # not the cached one: kept
    assert source.token() == first
    source.invalidate(first)
    second = source.token()
    assert second != first
    source.invalidate()
    assert source.token() not in (first, second)
    assert recorder.posts() == 3


def test_own_http_client_is_closed_and_a_given_one_is_not(
    auth: ServedAuthServer, client: dict[str, Any], http: httpx.Client
) -> None:
    with ClientCredentials(
        client["client_id"], client["client_secret"], token_url=auth.token_url
    ) as own:
        assert claims(own.token())["client_id"] == client["client_id"]
    assert own._http.is_closed
    source_for(client, http, token_url=auth.token_url).close()
    assert not http.is_closed


# -- single flight --------------------------------------------------------------------------


def run_in_threads(count: int, call: Any) -> list[Any]:
    """``call()`` in ``count`` threads released together; each result or exception."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def worker(index: int) -> None:
        barrier.wait()
        try:
            results[index] = call()
        except Exception as exc:  # the test inspects it
            results[index] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_threads_share_one_fetch(
    auth: ServedAuthServer, client: dict[str, Any], http: httpx.Client, recorder: Recorder
) -> None:
    source = source_for(client, http, token_url=auth.token_url)
    tokens = run_in_threads(8, source.token)
    assert recorder.posts() == 1
    assert len(set(tokens)) == 1
    assert isinstance(tokens[0], str)


def test_threads_share_one_failure(
    auth: ServedAuthServer, client: dict[str, Any], recorder: Recorder
) -> None:
    # A failure is not cached, so a thread that asked only after the quick 401 came back
    # would rightly send its own request: the request is held back until every thread has
    # called token(), which keeps their calls concurrent.
    calls: list[int] = []

    def token() -> str:
        calls.append(threading.get_ident())
        return source.token()

    def held_until_every_thread_asked(request: httpx.Request) -> None:
        wait_until(lambda: len(calls) == 8, 10, "all 8 threads calling token()", interval=0.005)

    hooks = {"request": [recorder, held_until_every_thread_asked]}
    with httpx.Client(timeout=10, event_hooks=hooks) as http:
        source = ClientCredentials(
            client["client_id"], "ascs_wrong", token_url=auth.token_url, http_client=http
        )
        errors = run_in_threads(8, token)
    assert recorder.posts() == 1
    assert all(isinstance(error, TokenError) for error in errors)
    assert {error.error for error in errors} == {"invalid_client"}
    # Each waiter raises its own instance, so tracebacks do not pile up on one object.
    assert len({id(error) for error in errors}) == 8


def test_asyncio_tasks_share_one_fetch(auth: ServedAuthServer, client: dict[str, Any]) -> None:
    recorder = Recorder()

    async def main() -> list[str]:
        async with (
            httpx.AsyncClient(timeout=10, event_hooks={"request": [recorder.on_async]}) as http,
            AsyncClientCredentials(
                client["client_id"], client["client_secret"], issuer=auth.issuer,
                http_client=http,
            ) as source,
        ):  # fmt: skip
            tokens = await asyncio.gather(*(source.token() for _ in range(8)))
            assert await source.token() == tokens[0]
            return tokens

    tokens = asyncio.run(main())
    assert len(set(tokens)) == 1
    assert recorder.posts() == 1
    assert [method for method, _ in recorder.sent] == ["GET", "POST"]


def test_asyncio_tasks_share_one_failure(auth: ServedAuthServer, client: dict[str, Any]) -> None:
    recorder = Recorder()

    async def main() -> list[BaseException | str]:
        async with httpx.AsyncClient(
            timeout=10, event_hooks={"request": [recorder.on_async]}
        ) as http:
            source = AsyncClientCredentials(
                client["client_id"], client["client_secret"], token_url=auth.token_url,
                scope="admin", http_client=http,
            )  # fmt: skip
            return await asyncio.gather(*(source.token() for _ in range(5)), return_exceptions=True)

    errors = asyncio.run(main())
    assert recorder.posts() == 1
    assert all(isinstance(error, TokenError) and error.error == "invalid_scope" for error in errors)


# -- errors ---------------------------------------------------------------------------------


def test_wrong_secret_is_invalid_client_without_the_secret_in_the_error(
    auth: ServedAuthServer, client: dict[str, Any], http: httpx.Client
) -> None:
    secret = "ascs_not-the-secret-1234567890"
    source = ClientCredentials(
        client["client_id"], secret, token_url=auth.token_url, http_client=http
    )
    with pytest.raises(TokenError) as raised:
        source.token()
    error = raised.value
    assert (error.error, error.status) == ("invalid_client", 401)
    assert error.description
    for text in (str(error), repr(error), str(error.args), repr(source), str(source)):
        assert secret not in text
    assert str(error).startswith("invalid_client: ")
    assert str(error).endswith("(HTTP 401)")


def test_bad_scope_is_invalid_scope(
    auth: ServedAuthServer, client: dict[str, Any], http: httpx.Client
) -> None:
    source = source_for(client, http, token_url=auth.token_url, scope="admin")
    with pytest.raises(TokenError) as raised:
        source.token()
    assert (raised.value.error, raised.value.status) == ("invalid_scope", 400)


def test_unregistered_audience_is_invalid_target(
    auth: ServedAuthServer, client: dict[str, Any], http: httpx.Client
) -> None:
    source = source_for(client, http, token_url=auth.token_url, audience="https://evil.test")
    with pytest.raises(TokenError) as raised:
        source.token()
    assert (raised.value.error, raised.value.status) == ("invalid_target", 400)


def test_nothing_listening_is_temporarily_unavailable(
    client: dict[str, Any], http: httpx.Client
) -> None:
    source = source_for(client, http, token_url=f"http://127.0.0.1:{free_port()}/oauth2/token")
    with pytest.raises(TokenError) as raised:
        source.token()
    assert raised.value.error == "temporarily_unavailable"
    assert raised.value.status is None
    assert "ConnectError" in str(raised.value)


@pytest.mark.parametrize(
    ("status", "error"),
    [(500, "server_error"), (404, "server_error"), (503, "temporarily_unavailable")],
)
def test_a_non_json_answer_is_a_token_error(
    api: ProtectedAPI, client: dict[str, Any], http: httpx.Client, status: int, error: str
) -> None:
    source = source_for(client, http, token_url=f"{api.url}/status/{status}")
    with pytest.raises(TokenError) as raised:
        source.token()
    assert (raised.value.error, raised.value.status) == (error, status)
    assert "JSON" in str(raised.value)


def test_repr_hides_the_secret(client: dict[str, Any]) -> None:
    source = ClientCredentials(
        client["client_id"], client["client_secret"], token_url="http://127.0.0.1:9/t"
    )
    with source:
        for text in (repr(source), str(source), repr(HTTPXBearerAuth(source))):
            assert client["client_secret"] not in text
            assert client["client_id"] in text
        assert client["client_secret"] not in repr(BearerAuth(source))


# -- BearerAuth (requests) --------------------------------------------------------------


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def test_requests_bearer_auth_adds_the_header(
    auth: ServedAuthServer, client: dict[str, Any], http: httpx.Client, api: ProtectedAPI,
    session: requests.Session,
) -> None:  # fmt: skip
    source = source_for(client, http, token_url=auth.token_url)
    response = session.get(f"{api.url}/things", auth=BearerAuth(source), timeout=10)
    assert response.status_code == 200
    assert api.tokens_seen() == [source.token()]


def test_requests_bearer_auth_retries_once_with_a_fresh_token(
    auth: ServedAuthServer, client: dict[str, Any], http: httpx.Client, recorder: Recorder,
    api: ProtectedAPI, session: requests.Session,
) -> None:  # fmt: skip
    source = source_for(client, http, token_url=auth.token_url)
    stale = source.token()
    api.rejected.add(stale)
    # A file body has to be rewound for the retry.
    response = session.post(
        f"{api.url}/things", data=io.BytesIO(b"payload"), auth=BearerAuth(source), timeout=10
    )
    assert response.status_code == 200
    assert response.json()["body"] == "payload"
    assert [r.status_code for r in response.history] == [401]
    fresh = source.token()
    assert fresh != stale
    assert api.seen == [(f"Bearer {stale}", b"payload"), (f"Bearer {fresh}", b"payload")]
    assert recorder.posts() == 2


def test_requests_bearer_auth_does_not_loop_on_401(
    auth: ServedAuthServer, client: dict[str, Any], http: httpx.Client, recorder: Recorder,
    api: ProtectedAPI, session: requests.Session,
) -> None:  # fmt: skip
    api.reject_all = True
    source = source_for(client, http, token_url=auth.token_url)
    response = session.post(f"{api.url}/things", data=b"x", auth=BearerAuth(source), timeout=10)
    assert response.status_code == 401
    first, second = api.tokens_seen()
    assert first != second
    assert recorder.posts() == 2


def test_requests_bearer_auth_does_not_resend_a_generator_body(
    auth: ServedAuthServer, client: dict[str, Any], http: httpx.Client, api: ProtectedAPI,
    session: requests.Session,
) -> None:  # fmt: skip
    api.reject_all = True
    source = source_for(client, http, token_url=auth.token_url)
    chunks = (chunk for chunk in [b"a", b"b"])
    response = session.post(f"{api.url}/things", data=chunks, auth=BearerAuth(source), timeout=10)
    assert response.status_code == 401
    assert len(api.seen) == 1


# -- HTTPXBearerAuth ------------------------------------------------------------------------


def test_httpx_bearer_auth_adds_the_header_and_retries_once(
    auth: ServedAuthServer, client: dict[str, Any], http: httpx.Client, recorder: Recorder,
    api: ProtectedAPI,
) -> None:  # fmt: skip
    source = source_for(client, http, token_url=auth.token_url)
    with httpx.Client(auth=HTTPXBearerAuth(source), timeout=10) as caller:
        assert caller.get(f"{api.url}/things").status_code == 200
        assert api.tokens_seen() == [source.token()]

        stale = source.token()
        api.rejected.add(stale)
        response = caller.post(f"{api.url}/things", content=b"payload")
        assert response.status_code == 200
        assert response.json()["body"] == "payload"
        fresh = source.token()
        assert api.seen[1:] == [(f"Bearer {stale}", b"payload"), (f"Bearer {fresh}", b"payload")]

        api.reject_all = True
        api.seen.clear()
        assert caller.get(f"{api.url}/things").status_code == 401
        assert len(api.seen) == 2
    assert recorder.posts() == 3


def test_httpx_bearer_auth_async_flow(
    auth: ServedAuthServer, client: dict[str, Any], api: ProtectedAPI
) -> None:
    recorder = Recorder()

    async def main() -> None:
        async with (
            httpx.AsyncClient(timeout=10, event_hooks={"request": [recorder.on_async]}) as http,
            AsyncClientCredentials(
                client["client_id"], client["client_secret"], token_url=auth.token_url,
                http_client=http,
            ) as source,
            httpx.AsyncClient(auth=HTTPXBearerAuth(source), timeout=10) as caller,
        ):  # fmt: skip
            responses = await asyncio.gather(*(caller.get(f"{api.url}/t") for _ in range(4)))
            assert [r.status_code for r in responses] == [200] * 4
            stale = await source.token()
            assert set(api.tokens_seen()) == {stale}

            api.rejected.add(stale)
            response = await caller.post(f"{api.url}/t", content=b"payload")
            assert response.status_code == 200
            assert api.tokens_seen()[-2:] == [stale, await source.token()]

            api.reject_all = True
            api.seen.clear()
            assert (await caller.get(f"{api.url}/t")).status_code == 401
            assert len(api.seen) == 2

    asyncio.run(main())
    assert recorder.posts() == 3


def test_httpx_bearer_auth_needs_the_matching_source(
    auth: ServedAuthServer, client: dict[str, Any], api: ProtectedAPI
) -> None:
    async_source = AsyncClientCredentials(
        client["client_id"], client["client_secret"], token_url=auth.token_url
    )
    with (
        httpx.Client(auth=HTTPXBearerAuth(async_source), timeout=10) as caller,
        pytest.raises(TypeError, match="AsyncClientCredentials"),
    ):
        caller.get(f"{api.url}/t")
    asyncio.run(async_source.aclose())
    assert api.seen == []


# -- imports --------------------------------------------------------------------------------


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )


def test_importing_the_client_loads_no_server_code() -> None:
    result = run_python(
        "import sys, authserver.client\n"
        "loaded = [m for m in ('flask', 'sqlalchemy', 'authlib') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    assert result.returncode == 0, result.stderr


def test_the_client_imports_without_requests() -> None:
    result = run_python(
        "import sys\n"
        "sys.modules['requests'] = None  # makes `import requests` fail\n"
        "from authserver.client import BearerAuth, ClientCredentials\n"
        "source = ClientCredentials('id', 'secret', token_url='http://127.0.0.1:9/t')\n"
        "try:\n"
        "    BearerAuth(source)\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    assert result.returncode == 0, result.stderr
    assert "pip install requests" in result.stdout
