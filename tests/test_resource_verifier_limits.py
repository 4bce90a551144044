"""``JWTVerifier`` against issuers that misbehave over a real loopback socket: a JWKS host that
stalls or dribbles, a JWKS far too big or with too many keys, metadata sending the verifier to
another origin. Each test reproduces a finding of issue 12 (§8)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from joserfc.jwk import RSAKey

from authserver.resource import JWTVerifier, VerifierUnavailable
from tests.support.hostile import HostileServer
from tests.support.tokens import rfc9068_token

API = "https://tasks.example.test"
METADATA_PATH = "/.well-known/oauth-authorization-server"
JWKS_PATH = "/.well-known/jwks.json"
DEADLINE = 0.5
#: What a caller may wait beyond the deadline: thread wake-ups on a loaded 2-core machine.
SLACK = 0.6


@pytest.fixture(scope="module")
def key() -> RSAKey:
    return RSAKey.generate_key(2048, auto_kid=True)


def public_jwk(key: RSAKey, **changes: Any) -> dict[str, Any]:
    return {**key.as_dict(private=False), "use": "sig", **changes}


@pytest.fixture
def issuer() -> Iterator[HostileServer]:
    """A server whose metadata is right; each test decides how its JWKS answers."""
    with HostileServer() as server:
        server.routes[METADATA_PATH] = HostileServer.json(
            {"issuer": server.url, "jwks_uri": server.url + JWKS_PATH}
        )
        yield server


@pytest.fixture
def make_verifier() -> Iterator[Callable[..., JWTVerifier]]:
    made: list[JWTVerifier] = []

    def make(issuer: str, **kwargs: Any) -> JWTVerifier:
        verifier = JWTVerifier(issuer, API, **{"timeout": DEADLINE, **kwargs})
        made.append(verifier)
        return verifier

    yield make
    for verifier in made:
        verifier.close()


def token_for(issuer: str, key: RSAKey) -> str:
    return rfc9068_token(issuer, key, API)


def timed_failure(verifier: JWTVerifier, token: str) -> tuple[float, str]:
    """Seconds until ``verify`` raised ``VerifierUnavailable``, and its message."""
    started = time.monotonic()
    with pytest.raises(VerifierUnavailable) as raised:
        verifier.verify(token)
    return time.monotonic() - started, str(raised.value)


# -- one total deadline per refresh -------------------------------------------------------------

DRIBBLES = {
    # The status line, then a header that never ends.
    "headers": HostileServer.dribble(b"HTTP/1.1 200 OK\r\nX-Pad: ", filler=b"a"),
    # Complete headers promising a body that arrives a byte at a time.
    "body": HostileServer.dribble(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
    ),
}


@pytest.mark.parametrize("part", DRIBBLES)
def test_a_dribbling_jwks_is_cut_at_the_total_deadline(
    issuer: HostileServer, key: RSAKey, make_verifier: Callable[..., JWTVerifier], part: str
) -> None:
    """Every read gets a byte within 50 ms, so a per-read timeout never fires; the refresh
    must still end at its deadline, and its connection be shut, not left dribbling."""
    issuer.routes[JWKS_PATH] = DRIBBLES[part]
    verifier = make_verifier(issuer.url)
    elapsed, message = timed_failure(verifier, token_for(issuer.url, key))
    assert DEADLINE * 0.9 <= elapsed < DEADLINE + SLACK
    assert message == f"fetching the keys took over {DEADLINE:g} s"
    assert issuer.wait_for_disconnect(JWKS_PATH, within=SLACK)


def test_callers_of_a_stalled_refresh_share_it_and_fail_together(
    issuer: HostileServer, key: RSAKey, make_verifier: Callable[..., JWTVerifier]
) -> None:
    """With a back-off shorter than the timeout (5 s each by default), callers queued behind
    a hanging fetch used to start their own one after another: 5, 10 ... 40 s."""
    issuer.routes[JWKS_PATH] = HostileServer.stall()
    verifier = make_verifier(issuer.url)
    verifier.RETRY_AFTER_FAILURE_SECONDS = DEADLINE / 2
    token = token_for(issuer.url, key)
    count = 8
    barrier = threading.Barrier(count)
    outcomes: list[tuple[float, str] | None] = [None] * count

    def call(index: int) -> None:
        barrier.wait()
        try:
            verifier.verify(token)
        except VerifierUnavailable as error:
            outcomes[index] = (time.monotonic(), str(error))

    started = time.monotonic()
    threads = [threading.Thread(target=call, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert all(outcome is not None for outcome in outcomes)
    ended = [outcome[0] - started for outcome in outcomes if outcome]
    assert max(ended) < DEADLINE + SLACK
    assert {outcome[1] for outcome in outcomes if outcome} == {
        f"fetching the keys took over {DEADLINE:g} s"
    }
    assert issuer.hits[JWKS_PATH] == 1


def test_the_back_off_counts_from_the_end_of_a_failed_refresh(
    issuer: HostileServer, key: RSAKey, make_verifier: Callable[..., JWTVerifier]
) -> None:
    """A refresh that failed after its full timeout: the next caller, right after it, gets
    the error at once instead of waiting through another timeout (the back-off used to
    count from the failed fetch's start, so it had already run out)."""
    issuer.routes[JWKS_PATH] = HostileServer.stall()
    verifier = make_verifier(issuer.url)
    verifier.RETRY_AFTER_FAILURE_SECONDS = DEADLINE * 0.6
    token = token_for(issuer.url, key)
    timed_failure(verifier, token)
    elapsed, message = timed_failure(verifier, token)
    assert elapsed < 0.1
    assert message == "the issuer's keys could not be fetched"
    assert issuer.hits[JWKS_PATH] == 1


def test_the_back_off_and_the_cache_follow_the_injected_clock(
    issuer: HostileServer, key: RSAKey, make_verifier: Callable[..., JWTVerifier]
) -> None:
    now = [1000.0]
    failing = [True]

    def jwks(connection: Any, server: HostileServer) -> None:
        now[0] += 10.0  # by the clock, this fetch takes 10 s
        if failing[0]:
            HostileServer.json({"error": "down"}, 503)(connection, server)
        else:
            headers = {"Cache-Control": "max-age=60"}
            HostileServer.json({"keys": [public_jwk(key)]}, headers=headers)(connection, server)

    issuer.routes[JWKS_PATH] = jwks
    verifier = make_verifier(issuer.url, clock=lambda: now[0])
    token = token_for(issuer.url, key)
    assert "503" in timed_failure(verifier, token)[1]
    now[0] += verifier.RETRY_AFTER_FAILURE_SECONDS - 1  # 14 s after the start, 4 after the end
    timed_failure(verifier, token)
    assert issuer.hits[JWKS_PATH] == 1
    now[0] += 1
    failing[0] = False
    assert verifier.verify(token)["aud"] == API
    assert issuer.hits[JWKS_PATH] == 2
    now[0] += 49  # max-age 60 counts from when the request was sent
    assert verifier.verify(token)
    assert issuer.hits[JWKS_PATH] == 2
    now[0] += 2
    assert verifier.verify(token)
    assert issuer.hits[JWKS_PATH] == 3


# -- size and key-count limits -----------------------------------------------------------------


def padded_jwks(key: RSAKey, size: int) -> bytes:
    """A valid JWKS made ``size`` bytes long with JSON whitespace."""
    document = json.dumps({"keys": [public_jwk(key)]}).encode()
    return document[:-1] + b" " * (size - len(document)) + b"}"


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "until-close"])
def test_a_jwks_over_one_mib_is_refused(
    issuer: HostileServer,
    key: RSAKey,
    make_verifier: Callable[..., JWTVerifier],
    declared: bool,
) -> None:
    """A 210 MB JWKS used to be read whole (+374 MiB). Over 1 MiB it is refused: at once when
    ``Content-Length`` says so, after 1 MiB when the body just keeps coming."""
    big = padded_jwks(key, 8 << 20)
    issuer.routes[JWKS_PATH] = HostileServer.raw(big, length=declared)
    verifier = make_verifier(issuer.url, timeout=5)
    elapsed, message = timed_failure(verifier, token_for(issuer.url, key))
    assert message == f"the response is over {1 << 20} bytes"
    assert issuer.wait_for_disconnect(JWKS_PATH, within=2)


def test_a_jwks_of_exactly_one_mib_is_accepted(
    issuer: HostileServer, key: RSAKey, make_verifier: Callable[..., JWTVerifier]
) -> None:
    issuer.routes[JWKS_PATH] = HostileServer.raw(padded_jwks(key, 1 << 20), length=False)
    verifier = make_verifier(issuer.url, timeout=5)
    assert verifier.verify(token_for(issuer.url, key))["aud"] == API


@pytest.mark.parametrize(("count", "accepted"), [(100, True), (101, False)])
def test_a_jwks_listing_over_a_hundred_keys_is_refused(
    issuer: HostileServer,
    key: RSAKey,
    make_verifier: Callable[..., JWTVerifier],
    count: int,
    accepted: bool,
) -> None:
    """50,001 keys took 4.5 s to import while every caller waited; a key set has a few."""
    filler = [public_jwk(key, kid=f"filler-{index}") for index in range(count - 1)]
    issuer.routes[JWKS_PATH] = HostileServer.json({"keys": [*filler, public_jwk(key)]})
    verifier = make_verifier(issuer.url, timeout=5)
    token = token_for(issuer.url, key)
    if accepted:
        assert verifier.verify(token)["aud"] == API
    else:
        assert timed_failure(verifier, token)[1] == "the JWKS lists more than 100 keys"


# -- where the keys may come from -------------------------------------------------------------


def test_a_jwks_uri_on_another_origin_is_used_only_when_configured(
    issuer: HostileServer, key: RSAKey, make_verifier: Callable[..., JWTVerifier]
) -> None:
    with HostileServer() as elsewhere:
        elsewhere.routes[JWKS_PATH] = HostileServer.json({"keys": [public_jwk(key)]})
        issuer.routes[METADATA_PATH] = HostileServer.json(
            {"issuer": issuer.url, "jwks_uri": elsewhere.url + JWKS_PATH}
        )
        token = token_for(issuer.url, key)
        message = timed_failure(make_verifier(issuer.url), token)[1]
        assert "jwks_uri is not on the issuer's origin" in message
        assert elsewhere.hits[JWKS_PATH] == 0

        configured = make_verifier(issuer.url, jwks_uri=elsewhere.url + JWKS_PATH)
        assert configured.verify(token)["iss"] == issuer.url
        assert elsewhere.hits[JWKS_PATH] == 1
        assert issuer.hits[METADATA_PATH] == 1  # only the refused verifier asked


@pytest.mark.parametrize(
    "jwks_uri",
    ["https://issuer.example.test:8443/jwks", "http://localhost/jwks", "ftp://x/jwks", "jwks"],
)
def test_metadata_jwks_uri_must_share_scheme_host_and_port(
    issuer: HostileServer, key: RSAKey, make_verifier: Callable[..., JWTVerifier], jwks_uri: str
) -> None:
    issuer.routes[METADATA_PATH] = HostileServer.json({"issuer": issuer.url, "jwks_uri": jwks_uri})
    message = timed_failure(make_verifier(issuer.url), token_for(issuer.url, key))[1]
    assert "jwks_uri" in message


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf")])
def test_the_timeout_must_be_a_positive_number_of_seconds(timeout: float) -> None:
    with pytest.raises(ValueError, match="timeout"):
        JWTVerifier("https://issuer.example.test", API, timeout=timeout)


def test_a_configured_jwks_uri_must_be_http() -> None:
    with pytest.raises(ValueError, match="jwks_uri"):
        JWTVerifier("https://issuer.example.test", API, jwks_uri="file:///etc/keys.json")
