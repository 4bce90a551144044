"""Workload identity federation as the OAuth layer applies it: a trusted platform's token,
sent as the ``client_assertion``, authenticates as the trust's client.

Each rejection below breaks exactly one rule of the contract in an otherwise acceptable token,
so it passes only while that rule's check is in place; the accepted cases show which trust
decides when several could. Tokens are signed with PyJWT (an independent implementation), on
the server's hand-moved clock.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from joserfc.jwk import KeySet, RSAKey

from authserver.oauth.client_assertion import JWT_BEARER
from authserver.oauth.clients import GRANT_TYPE
from authserver.oauth.server import TOKEN_ENDPOINT, AuthorizationServer, Response
from authserver.oauth.trusts import TrustRule
from tests.support.clock import ManualClock
from tests.support.memory_backend import CLIENT_ADDRESS, MemoryBackend, post

PLATFORM = "https://platform.example.test"
AUDIENCE = "authserver"
WORKLOAD = "system:serviceaccount:billing:api"
CLIENT = "cli_billing"
OTHER_CLIENT = "cli_other"


@pytest.fixture(scope="module")
def platform_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "platform-1"})


@pytest.fixture(scope="module")
def stranger_key() -> RSAKey:
    """Someone else's key under the platform's kid."""
    return RSAKey.generate_key(2048, parameters={"kid": "platform-1"})


def trust(
    subject: str = WORKLOAD, client_id: str = CLIENT, trust_id: str = "trs_1", **fields: Any
) -> TrustRule:
    values: dict[str, Any] = {
        "issuer": PLATFORM,
        "audience": AUDIENCE,
        "jwks_uri": None,
        "allow_reuse": False,
        "max_lifetime": 3600,
        **fields,
    }
    return TrustRule(trust_id=trust_id, client_id=client_id, subject=subject, **values)


@pytest.fixture
def platform(backend: MemoryBackend, platform_key: RSAKey) -> MemoryBackend:
    """The backend with two clients, the platform's published keys and one trust."""
    backend.register(CLIENT, "unused-secret", scopes=("api",))
    backend.register(OTHER_CLIENT, "unused-secret", scopes=("api",))
    backend.issuer_keys[PLATFORM] = KeySet([RSAKey.import_key(platform_key.as_dict(private=False))])
    backend.trusts.append(trust())
    return backend


Sign = Callable[..., str]


@pytest.fixture
def sign(clock: ManualClock, platform_key: RSAKey) -> Sign:
    """A Kubernetes-shaped token on the server's clock; ``None`` drops a claim."""

    def make(
        key: Any = platform_key,
        alg: str = "RS256",
        headers: dict[str, Any] | None = None,
        **over: Any,
    ) -> str:
        now = int(clock())
        claims: dict[str, Any] = {
            "iss": PLATFORM,
            "sub": WORKLOAD,
            "aud": [AUDIENCE, "https://kubernetes.default.svc"],
            "iat": now,
            "nbf": now,
            "exp": now + 600,
            "jti": uuid.uuid4().hex,
            "kubernetes.io": {"namespace": "billing", "serviceaccount": {"name": "api"}},
            **over,
        }
        claims = {name: value for name, value in claims.items() if value is not None}
        header = {"kid": key.kid} if headers is None else headers
        return jwt.encode(claims, key.as_pem(private=True), algorithm=alg, headers=header)

    return make


def present(server: AuthorizationServer, assertion: str, **form: str) -> Response:
    body = {
        "grant_type": GRANT_TYPE,
        "client_assertion_type": JWT_BEARER,
        "client_assertion": assertion,
        **form,
    }
    return post(server, TOKEN_ENDPOINT, body)


def access_claims(body: dict[str, Any]) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(body["access_token"], options={"verify_signature": False})
    return claims


def failures(backend: MemoryBackend) -> list[dict[str, Any]]:
    return [
        {"client_id": e.client_id, **e.details}
        for e in backend.events
        if e.event == "client.authentication" and e.outcome == "failure"
    ]


def refused(server: AuthorizationServer, backend: MemoryBackend, assertion: str) -> dict[str, Any]:
    """401 invalid_client, one failure logged without the token: the failure's log fields."""
    status, body, _ = present(server, assertion)
    assert (status, body["error"]) == (401, "invalid_client"), body
    logged = failures(backend)
    assert len(logged) == 1, backend.events
    assert assertion not in repr(backend.events)
    assert logged[0]["method"] == "workload_identity"
    return logged[0]


# --- accepted -------------------------------------------------------------------------------


def test_a_trusted_workload_gets_its_clients_token_naming_the_workload(
    server: AuthorizationServer, platform: MemoryBackend, sign: Sign
) -> None:
    status, body, _ = present(server, sign())
    assert status == 200, body
    claims = access_claims(body)
    assert (claims["sub"], claims["client_id"]) == (CLIENT, CLIENT)
    assert claims["act"] == {"sub": WORKLOAD, "iss": PLATFORM}
    issued = [e for e in platform.events if e.event == "token.issued"]
    assert issued[0].client_id == CLIENT
    assert issued[0].details["act"] == {"sub": WORKLOAD, "iss": PLATFORM}
    assert platform.used_clients == [CLIENT]


def test_a_client_secret_token_has_no_act(
    server: AuthorizationServer, platform: MemoryBackend
) -> None:
    status, body, _ = post(
        server, TOKEN_ENDPOINT, {"grant_type": GRANT_TYPE}, basic=(CLIENT, "unused-secret")
    )
    assert status == 200, body
    assert "act" not in access_claims(body)


def test_the_client_id_may_be_sent_if_it_is_the_trusts_client(
    server: AuthorizationServer, platform: MemoryBackend, sign: Sign
) -> None:
    status, body, _ = present(server, sign(), client_id=CLIENT)
    assert status == 200, body


def test_a_reusable_trust_accepts_the_same_token_until_it_expires(
    server: AuthorizationServer, platform: MemoryBackend, sign: Sign, clock: ManualClock
) -> None:
    platform.trusts[:] = [trust(allow_reuse=True)]
    token = sign(jti=None)  # SPIFFE JWT-SVIDs carry no jti
    for _ in range(3):
        status, body, _ = present(server, token)
        assert status == 200, body
    clock.now += 600 + 61
    assert present(server, token)[0] == 401


def test_several_subjects_of_one_issuer_become_different_clients(
    server: AuthorizationServer, platform: MemoryBackend, sign: Sign
) -> None:
    platform.trusts.append(trust("system:serviceaccount:shop:web", OTHER_CLIENT, "trs_2"))
    assert access_claims(present(server, sign())[1])["client_id"] == CLIENT
    other = sign(sub="system:serviceaccount:shop:web")
    assert access_claims(present(server, other)[1])["client_id"] == OTHER_CLIENT


@pytest.mark.parametrize(
    ("subject", "client"),
    [
        ("repo:acme/app:ref:refs/heads/main", "cli_exact"),
        ("repo:acme/app:ref:refs/heads/dev", "cli_app"),
        ("repo:acme/app:environment:prod", "cli_app"),
        ("repo:acme/web:ref:refs/heads/main", "cli_org"),
    ],
)
def test_an_exact_subject_wins_then_the_most_specific_pattern(
    server: AuthorizationServer, platform: MemoryBackend, sign: Sign, subject: str, client: str
) -> None:
    for client_id in ("cli_exact", "cli_app", "cli_org"):
        platform.register(client_id, "unused-secret", scopes=("api",))
    platform.trusts[:] = [
        trust("repo:acme/*", "cli_org", "trs_a"),
        trust("repo:acme/app:*", "cli_app", "trs_b"),
        trust("repo:acme/app:ref:refs/heads/main", "cli_exact", "trs_c"),
        trust("repo:*", "cli_org", "trs_d"),
    ]
    status, body, _ = present(server, sign(sub=subject))
    assert status == 200, body
    assert access_claims(body)["client_id"] == client


def test_the_trust_is_chosen_by_audience_too(
    server: AuthorizationServer, platform: MemoryBackend, sign: Sign
) -> None:
    """One pipeline, two tokens asked for two audiences: two clients."""
    platform.trusts.append(trust(WORKLOAD, OTHER_CLIENT, "trs_2", audience="deployer"))
    assert access_claims(present(server, sign(aud="deployer"))[1])["client_id"] == OTHER_CLIENT
    assert access_claims(present(server, sign(aud=AUDIENCE))[1])["client_id"] == CLIENT


@pytest.mark.parametrize(
    ("pattern", "subject", "matches"),
    [
        ("a*", "a", True),  # * matches an empty run
        ("*", "spiffe://example.org/ns/a/sa/b", True),
        ("spiffe://example.org/ns/*/sa/api", "spiffe://example.org/ns/x/y/sa/api", True),
        ("repo:a/b:ref:refs/heads/ma?n", "repo:a/b:ref:refs/heads/main", False),  # ? is literal
        ("repo:a.b:*", "repo:aXb:x", False),  # . is literal
        ("repo:a/b", "repo:a/b:ref:x", False),  # no pattern: exact only
        ("x*y", "x\ny", True),
    ],
)
def test_subject_patterns(pattern: str, subject: str, matches: bool) -> None:
    assert trust(pattern).matches_subject(subject) is matches


# --- refused: each breaks one rule ----------------------------------------------------------


def test_a_single_use_trust_refuses_the_same_token_twice(
    server: AuthorizationServer, platform: MemoryBackend, sign: Sign
) -> None:
    token = sign()
    assert present(server, token)[0] == 200
    logged = refused(server, platform, token)
    assert logged["check"] == "jti: already used"
    assert logged["trust_id"] == "trs_1"
    assert logged["client_id"] == CLIENT


def test_the_same_jti_from_one_issuer_is_spent_for_every_client(
    server: AuthorizationServer, platform: MemoryBackend, sign: Sign
) -> None:
    platform.trusts.append(trust("system:serviceaccount:shop:web", OTHER_CLIENT, "trs_2"))
    assert present(server, sign(jti="one"))[0] == 200
    other = sign(jti="one", sub="system:serviceaccount:shop:web")
    assert refused(server, platform, other)["check"] == "jti: already used"


def test_a_single_use_trust_needs_a_jti(
    server: AuthorizationServer, platform: MemoryBackend, sign: Sign
) -> None:
    assert refused(server, platform, sign(jti=None))["check"].startswith("jti: the trust accepts")


def test_a_subject_no_trust_names_is_refused_with_each_trust_considered(
    server: AuthorizationServer, platform: MemoryBackend, sign: Sign
) -> None:
    logged = refused(server, platform, sign(sub="system:serviceaccount:billing:batch"))
    assert logged["check"] == "no trust of this issuer matches the sub and aud"
    assert logged["considered"] == {"trs_1": f"sub: does not match {WORKLOAD!r}"}
    assert logged["client_id"] is None  # no client was chosen: only the address counts
    assert platform.address_failures[CLIENT_ADDRESS] == 1


def test_an_audience_the_trust_does_not_name_is_refused(
    server: AuthorizationServer, platform: MemoryBackend, sign: Sign
) -> None:
    logged = refused(server, platform, sign(aud=["https://kubernetes.default.svc"]))
    assert logged["considered"] == {"trs_1": f"aud: does not contain {AUDIENCE!r}"}


def test_a_token_signed_by_another_key_with_the_platforms_kid_is_refused(
    server: AuthorizationServer, platform: MemoryBackend, sign: Sign, stranger_key: RSAKey
) -> None:
    assert refused(server, platform, sign(key=stranger_key))["check"].startswith("signature:")


def test_a_bad_signature_is_refused(
    server: AuthorizationServer, platform: MemoryBackend, sign: Sign
) -> None:
    header, payload, signature = sign().split(".")
    tampered = f"{header}.{payload}.{signature[:-4]}AAAA"
    assert refused(server, platform, tampered)["check"].startswith("signature:")


def test_a_claim_changed_after_signing_is_refused(
    server: AuthorizationServer, platform: MemoryBackend, sign: Sign
) -> None:
    """The trust is chosen by the claims as sent; the signature must still cover them."""
    platform.trusts.append(trust("system:serviceaccount:admin:*", OTHER_CLIENT, "trs_2"))
    header, _, signature = sign().split(".")
    _, payload, _ = sign(sub="system:serviceaccount:admin:root").split(".")
    logged = refused(server, platform, f"{header}.{payload}.{signature}")
    assert logged["check"].startswith("signature:")
    assert logged["trust_id"] == "trs_2"


def test_an_algorithm_off_the_list_is_refused(
    server: AuthorizationServer, platform: MemoryBackend, sign: Sign
) -> None:
    claims = jwt.decode(sign(), options={"verify_signature": False})
    hmac_token = jwt.encode(claims, "k" * 32, algorithm="HS256", headers={"kid": "platform-1"})
    assert refused(server, platform, hmac_token)["check"].startswith("alg: 'HS256'")


def test_an_unknown_kid_is_refused(
    server: AuthorizationServer, platform: MemoryBackend, sign: Sign
) -> None:
    logged = refused(server, platform, sign(headers={"kid": "rotated-away"}))
    assert logged["check"].startswith("kid: the issuer publishes no key with kid 'rotated-away'")


def test_unavailable_keys_are_refused(
    server: AuthorizationServer, platform: MemoryBackend, sign: Sign
) -> None:
    del platform.issuer_keys[PLATFORM]
    assert refused(server, platform, sign())["check"].startswith("keys:")


@pytest.mark.parametrize(
    ("override", "said"),
    [
        ({"exp": -1}, "expired"),
        ({"exp": None}, "exp"),
        ({"nbf": 120}, "nbf"),
        ({"iat": 120}, "iat"),
    ],
)
def test_times_outside_the_tokens_window_are_refused(
    server: AuthorizationServer,
    platform: MemoryBackend,
    sign: Sign,
    clock: ManualClock,
    override: dict[str, int | None],
    said: str,
) -> None:
    """``exp`` past (beyond the 60 s leeway) or missing; ``nbf``/``iat`` ahead beyond it."""
    now = int(clock())
    shifted = {
        k: None if v is None else now + v + (-60 if k == "exp" else 60) for k, v in override.items()
    }
    logged = refused(server, platform, sign(**shifted))
    assert logged["check"].startswith("claims:")
    assert said in logged["check"]


def test_a_token_living_longer_than_the_trust_allows_is_refused(
    server: AuthorizationServer, platform: MemoryBackend, sign: Sign, clock: ManualClock
) -> None:
    platform.trusts[:] = [trust(max_lifetime=600)]
    now = int(clock())
    assert present(server, sign(iat=now, exp=now + 600))[0] == 200
    logged = refused(server, platform, sign(iat=now, exp=now + 601))
    assert logged["check"] == "lifetime: exp - iat is 601 s, over the trust's 600 s"


def test_without_iat_the_remaining_lifetime_is_held_to_the_maximum(
    server: AuthorizationServer, platform: MemoryBackend, sign: Sign, clock: ManualClock
) -> None:
    platform.trusts[:] = [trust(max_lifetime=600, allow_reuse=True)]
    now = int(clock())
    assert present(server, sign(iat=None, exp=now + 600))[0] == 200
    assert refused(server, platform, sign(iat=None, exp=now + 900))["check"].startswith("lifetime:")


def test_a_disabled_client_cannot_be_become(
    server: AuthorizationServer, platform: MemoryBackend, sign: Sign
) -> None:
    platform.clients[CLIENT].enabled = False
    assert refused(server, platform, sign())["check"] == "the trust's client is disabled"


def test_a_client_id_other_than_the_trusts_is_refused(
    server: AuthorizationServer, platform: MemoryBackend, sign: Sign
) -> None:
    status, body, _ = present(server, sign(), client_id=OTHER_CLIENT)
    assert (status, body["error"]) == (401, "invalid_client")
    assert failures(platform)[0]["check"] == "client_id differs from the trust's client"


def test_an_untrusted_issuer_is_judged_as_a_client_assertion(
    server: AuthorizationServer, platform: MemoryBackend, sign: Sign
) -> None:
    status, body, _ = present(server, sign(iss="https://elsewhere.example.test"))
    assert (status, body["error"]) == (401, "invalid_client")
    logged = failures(platform)
    assert logged[0]["method"] == "private_key_jwt"


def test_failures_count_against_the_trusts_client_and_lock_it(
    server: AuthorizationServer, platform: MemoryBackend, sign: Sign
) -> None:
    """A locked client gets 429 for a bad token, and still a token for a good one."""
    for _ in range(platform.lock_threshold):
        assert present(server, sign(jti=None))[0] == 401
    status, _, headers = present(server, sign(jti=None))
    assert status == 429
    assert dict(headers)["Retry-After"]
    assert present(server, sign())[0] == 200
