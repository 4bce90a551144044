"""``ClientCredentials`` and ``AsyncClientCredentials`` against authorization servers that
misbehave over a real loopback socket: lifetimes that never end, answers far too big, error
text meant for a terminal, metadata sending the secret elsewhere. Each test reproduces a
finding of issue 12 (§8)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from typing import Any, Literal

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey

from authserver.client import AsyncClientCredentials, ClientCredentials, TokenError
from authserver.wellknown import same_origin
from tests.support.clock import ManualClock as Clock
from tests.support.hostile import HostileServer

TOKEN_PATH = "/oauth2/token"
METADATA_PATH = "/.well-known/oauth-authorization-server"
SECRET = "ascs_the-secret-that-must-stay-home"
DAY = 86_400.0
ONE_MIB = 1 << 20

Kind = Literal["sync", "async"]
KINDS: list[Kind] = ["sync", "async"]


@pytest.fixture
def server() -> Iterator[HostileServer]:
    with HostileServer() as served:
        served.routes[METADATA_PATH] = HostileServer.json(
            {"issuer": served.url, "token_endpoint": served.url + TOKEN_PATH}
        )
        yield served


def answer_token(server: HostileServer, **fields: Any) -> None:
    """The token endpoint answers 200 with ``fields`` (a token and Bearer unless given)."""
    body = {"access_token": "opaque-token", "token_type": "Bearer", **fields}
    server.routes[TOKEN_PATH] = HostileServer.json(body)


def get_token(kind: Kind, **kwargs: Any) -> str:
    """One ``token()`` from a new sync or async source built with ``kwargs``."""
    if kind == "sync":
        with ClientCredentials("svc", SECRET, **kwargs) as source:
            return source.token()

    async def main() -> str:
        async with AsyncClientCredentials("svc", SECRET, **kwargs) as source:
            return await source.token()

    return asyncio.run(main())


def token_error(kind: Kind, **kwargs: Any) -> TokenError:
    with pytest.raises(TokenError) as raised:
        get_token(kind, **kwargs)
    return raised.value


def jwt_with_exp(exp: float) -> str:
    """A JWT whose payload says ``exp``: the helper reads it without verifying anything."""
    key = OctKey.generate_key(256)
    return jwt.encode({"alg": "HS256"}, {"exp": exp, "sub": "svc"}, key)


def posts_seen(server: HostileServer) -> int:
    return sum(1 for request in server.received if request.startswith(b"POST "))


# -- how long a token is cached ---------------------------------------------------------------


@pytest.mark.parametrize("expires_in", [1e12, 10**400, "9" * 400])
def test_a_huge_expires_in_caches_the_token_for_a_day_at_most(
    server: HostileServer, expires_in: Any
) -> None:
    """``expires_in`` 1e12 used to cache the token for ever (and 10**400 crashed on the
    arithmetic); now a token is reused for a day at most."""
    answer_token(server, expires_in=expires_in)
    clock = Clock()
    with ClientCredentials(
        "svc", SECRET, token_url=server.url + TOKEN_PATH, clock=clock, refresh_margin=60
    ) as source:
        source.token()
        clock.now += DAY - 61
        source.token()
        assert server.hits[TOKEN_PATH] == 1
        clock.now += 2
        source.token()
        assert server.hits[TOKEN_PATH] == 2


def test_a_jwt_is_not_cached_past_its_own_exp(server: HostileServer) -> None:
    """The server says a week, the token itself says 100 s: 100 s it is (minus the margin,
    here half of it)."""
    answer_token(server, access_token=jwt_with_exp(time.time() + 100), expires_in=604_800)
    clock = Clock()
    with ClientCredentials("svc", SECRET, token_url=server.url + TOKEN_PATH, clock=clock) as source:
        source.token()
        clock.now += 48
        source.token()
        assert server.hits[TOKEN_PATH] == 1
        clock.now += 4
        source.token()
        assert server.hits[TOKEN_PATH] == 2


def test_an_expired_jwt_is_returned_but_not_cached(server: HostileServer) -> None:
    token = jwt_with_exp(time.time() - 10)
    answer_token(server, access_token=token, expires_in=3600)
    with ClientCredentials("svc", SECRET, token_url=server.url + TOKEN_PATH) as source:
        assert source.token() == token
        assert source.token() == token
    assert server.hits[TOKEN_PATH] == 2


def test_a_jwt_exp_bounds_a_token_without_expires_in(server: HostileServer) -> None:
    answer_token(server, access_token=jwt_with_exp(time.time() + 1000))
    clock = Clock()
    with ClientCredentials("svc", SECRET, token_url=server.url + TOKEN_PATH, clock=clock) as source:
        source.token()
        clock.now += 500
        source.token()
        assert server.hits[TOKEN_PATH] == 1


@pytest.mark.parametrize(
    "expires_in", ["soon", "²", "1e3", "-5", -5, True, [60], {"s": 1}, 1e400, "x" * 5000]
)
@pytest.mark.parametrize("kind", KINDS)
def test_expires_in_that_is_no_duration_is_a_clear_token_error(
    server: HostileServer, kind: Kind, expires_in: Any
) -> None:
    """Every odd value is one short ``server_error`` (a superscript two passed
    ``str.isdigit`` and then crashed ``int()``)."""
    answer_token(server, expires_in=expires_in)
    error = token_error(kind, token_url=server.url + TOKEN_PATH)
    assert error.error == "server_error"
    assert "expires_in" in str(error)
    assert len(str(error)) < 120


# -- how much is read ------------------------------------------------------------------------


def padded(document: dict[str, Any], size: int) -> bytes:
    """``document`` as JSON made ``size`` bytes long with whitespace: still valid."""
    raw = json.dumps(document).encode()
    return raw[:-1] + b" " * (size - len(raw)) + b"}"


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "until-close"])
@pytest.mark.parametrize("kind", KINDS)
def test_a_token_response_over_one_mib_is_refused(
    server: HostileServer, kind: Kind, declared: bool
) -> None:
    """A 100 MB token response used to be read whole (and accepted: whitespace is JSON)."""
    huge = padded({"access_token": "t", "token_type": "Bearer", "expires_in": 60}, 16 << 20)
    server.routes[TOKEN_PATH] = HostileServer.raw(huge, length=declared)
    error = token_error(kind, token_url=server.url + TOKEN_PATH)
    assert (error.error, error.status) == ("server_error", 200)
    assert f"more than {ONE_MIB} bytes" in str(error)
    assert server.wait_for_disconnect(TOKEN_PATH, within=2)


def test_a_token_response_of_exactly_one_mib_is_read(server: HostileServer) -> None:
    body = padded({"access_token": "t", "token_type": "Bearer", "expires_in": 60}, ONE_MIB)
    server.routes[TOKEN_PATH] = HostileServer.raw(body, length=False)
    assert get_token("sync", token_url=server.url + TOKEN_PATH) == "t"


@pytest.mark.parametrize("kind", KINDS)
def test_oversized_metadata_is_refused(server: HostileServer, kind: Kind) -> None:
    document = {"issuer": server.url, "token_endpoint": server.url + TOKEN_PATH}
    server.routes[METADATA_PATH] = HostileServer.raw(padded(document, 4 << 20), length=False)
    error = token_error(kind, issuer=server.url)
    assert f"more than {ONE_MIB} bytes" in str(error)
    assert posts_seen(server) == 0


# -- what the server's words can do -----------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_server_error_text_is_made_printable_and_bounded(server: HostileServer, kind: Kind) -> None:
    """``error_description`` with ANSI colours, a title-setting OSC, a forged log line and
    5 KB used to go verbatim into ``TokenError``."""
    description = (
        "\x1b[31mred\x1b[0m \x1b]0;pwned\x07bad secret\nERROR forged log line\r\n\u202eevil"
        + "x" * 5000
    )
    server.routes[TOKEN_PATH] = HostileServer.json(
        {"error": "invalid_client\x1b[2J\n", "error_description": description}, 401
    )
    error = token_error(kind, token_url=server.url + TOKEN_PATH)
    assert error.error == "invalid_client"
    assert error.description is not None
    assert error.description.startswith("red bad secret ERROR forged log line evilxxx")
    assert len(error.description) == 300
    assert error.description.endswith("…")
    for text in (str(error), repr(error)):
        for character in ("\x1b", "\n", "\r", "\x07", "\u202e"):
            assert character not in text
    assert len(str(error)) < 400


# -- where the secret may go ------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_token_endpoint_on_another_origin_never_gets_the_secret(
    server: HostileServer, kind: Kind
) -> None:
    with HostileServer() as elsewhere:
        answer_token(elsewhere, expires_in=60)
        server.routes[METADATA_PATH] = HostileServer.json(
            {"issuer": server.url, "token_endpoint": elsewhere.url + TOKEN_PATH}
        )
        error = token_error(kind, issuer=server.url)
        assert error.error == "server_error"
        assert "not on the issuer's origin" in str(error)
        assert "token_url" in str(error)
        assert elsewhere.received == []
        assert posts_seen(server) == 0

        # Named by the caller, the same endpoint is used.
        assert get_token(kind, token_url=elsewhere.url + TOKEN_PATH) == "opaque-token"
        basic = base64.b64encode(f"svc:{SECRET}".encode())
        assert basic in elsewhere.received[0]


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://{host}/oauth2/token",  # another scheme
        "http://{host}:1/oauth2/token",  # another port
        "http://localhost:{port}/oauth2/token",  # another host name for the same server
    ],
)
def test_only_the_exact_origin_counts(server: HostileServer, endpoint: str) -> None:
    host = server.url.removeprefix("http://")
    port = host.rsplit(":", 1)[1]
    server.routes[METADATA_PATH] = HostileServer.json(
        {"issuer": server.url, "token_endpoint": endpoint.format(host=host, port=port)}
    )
    answer_token(server, expires_in=60)
    assert "not on the issuer's origin" in str(token_error("sync", issuer=server.url))
    assert posts_seen(server) == 0


def test_a_token_endpoint_on_the_issuers_origin_is_used(server: HostileServer) -> None:
    answer_token(server, expires_in=60)
    assert get_token("sync", issuer=server.url) == "opaque-token"
    assert posts_seen(server) == 1


@pytest.mark.parametrize(
    ("url", "issuer", "same"),
    [
        ("https://auth.example.test/oauth2/token", "https://auth.example.test", True),
        ("https://auth.example.test:443/t", "https://AUTH.example.test/tenant", True),
        ("http://auth.example.test:80/t", "http://auth.example.test", True),
        ("https://auth.example.test:8443/t", "https://auth.example.test", False),
        ("http://auth.example.test/t", "https://auth.example.test", False),
        ("https://auth.example.test.evil.test/t", "https://auth.example.test", False),
        ("https://auth.example.test@evil.test/t", "https://auth.example.test", False),
        ("javascript:alert(1)", "https://auth.example.test", False),
        ("https://auth.example.test:99999/t", "https://auth.example.test", False),
        ("/oauth2/token", "https://auth.example.test", False),
    ],
)
def test_same_origin_compares_scheme_host_and_port(url: str, issuer: str, same: bool) -> None:
    assert same_origin(url, issuer) is same
