"""What a resource server pays per token: ``authserver.resource.JWTVerifier.verify`` with a warm
key cache, against a bare joserfc decode-and-validate of the same token with the key in hand.

Both run in this process, in alternating rounds, against the keys the live server publishes
(the verifier fetches them over HTTP once, like a resource server at start). The ratio is the
verifier's own overhead: the header checks RFC 9068 asks for, the key lookup, the claim checks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from statistics import median

import requests
from joserfc import jwt
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from authserver.resource import JWTVerifier

ROUNDS = 5
CALLS_PER_ROUND = 2000
WARMUP_CALLS = 200


@dataclass(frozen=True)
class VerifyCost:
    """µs of CPU per call, one pair per round: (the verifier, bare joserfc)."""

    rounds: list[tuple[float, float]]

    @property
    def ratio(self) -> float:
        return median(ours / bare for ours, bare in self.rounds)


def measure(issuer: str, token: str) -> VerifyCost:
    keys = KeySet.import_key_set(requests.get(f"{issuer}/.well-known/jwks.json", timeout=5).json())
    audience = jwt.decode(token, keys).claims["aud"]
    verifier = JWTVerifier(issuer, audience if isinstance(audience, str) else audience[0])
    verifier.verify(token)  # the keys fetched: warm from here on

    def bare() -> None:
        decoded = jwt.decode(token, keys, algorithms=["RS256"])
        JWTClaimsRegistry(
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": verifier.audience},
            exp={"essential": True},
        ).validate(decoded.claims)

    def ours() -> None:
        verifier.verify(token)

    try:
        return VerifyCost([(_cpu_per_call(ours), _cpu_per_call(bare)) for _ in range(ROUNDS)])
    finally:
        verifier.close()


def _cpu_per_call(call: Callable[[], None]) -> float:
    for _ in range(WARMUP_CALLS):
        call()
    started = time.process_time()
    for _ in range(CALLS_PER_ROUND):
        call()
    return (time.process_time() - started) / CALLS_PER_ROUND * 1e6


def lines(cost: VerifyCost) -> list[str]:
    rounds = ", ".join(f"{ours:.0f}/{bare:.0f}" for ours, bare in cost.rounds)
    return [
        "Token verification in a resource server: `JWTVerifier.verify` (warm key cache) against"
        " a bare joserfc `jwt.decode` + `JWTClaimsRegistry.validate` of the same token with the"
        f" key in hand, {ROUNDS} alternating rounds of {CALLS_PER_ROUND:,} calls, µs of CPU per"
        f" call (verifier/bare): {rounds}.",
        "",
        f"- verifier / bare joserfc, median of the rounds: {cost.ratio:.2f}× (target ≤ 1.30×)",
    ]
