"""Pre-signed ``private_key_jwt`` client assertions for the bench (RFC 7523 §2.2, RFC 7521 §4.2).

Why pre-signed: the server accepts each ``jti`` once (a replay is 401 ``invalid_client``), so
every request of the private_key_jwt row needs an assertion of its own; signing them while wrk
runs would put the client's RSA signing on the two cores the server is measured on. They are
signed before the measurement instead, in a process pool over every core so that the set-up
stays short, and ``private_key_jwt.lua`` sends each of them once.

Why RS256 with a 2048-bit RSA key: it is what most clients use, so the row shows what a typical
key client costs the server.

This module knows nothing of wrk or of the server: ``__main__`` sizes the batches from the
secret path's measured rate and measures.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.jwk import RSAKey

ALGORITHM = "RS256"
KEY_BITS = 2048
KEY_ID = "bench-key-1"
#: RFC 7523 §2.2's ``client_assertion_type``.
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: The longest the server accepts (``exp`` at most an hour ahead), so the assertions outlast
#: any bench run; the server keeps each spent ``jti`` until then, a few MB of rows at most.
LIFETIME_SECONDS = 3600
#: Room above the secret path's measured rate: the key path is expected to be slower, and a
#: run that runs out would report non-2xx instead of its figure.
HEADROOM = 1.5
#: Requests in flight when wrk stops, and the one wrk takes when it checks the script at start.
MARGIN = 1_000
#: A batch this large takes about a minute on two busy cores; a run that would need more gets
#: this many and reports the requests it sent without one.
MAX_ASSERTIONS = 100_000
#: Assertions per task handed to a pool worker: large enough that pickling is noise.
CHUNK = 500
#: The slowest signing rate (per second, all cores) tolerated before the set-up is abandoned.
MIN_SIGNING_RATE = 50
POOL_START_SECONDS = 60

#: Set in each pool worker by :func:`_start_worker`: the signer and the claims all share.
_worker: dict[str, Any] = {}


def generate_key() -> RSAKey:
    return RSAKey.generate_key(
        KEY_BITS, parameters={"kid": KEY_ID, "alg": ALGORITHM, "use": "sig"}, private=True
    )


def write_jwks(key: RSAKey, path: Path) -> Path:
    """The JWK Set (public part only) that ``clients create --jwks-file`` registers."""
    path.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    return path


def needed(rate: float, seconds: float) -> int:
    """Assertions for a run of ``seconds`` at up to ``HEADROOM`` times ``rate`` requests/s."""
    return min(MAX_ASSERTIONS, math.ceil(rate * seconds * HEADROOM) + MARGIN)


def form(assertion: str) -> dict[str, str]:
    """The request parameters that authenticate a client with ``assertion``."""
    return {"client_assertion_type": JWT_BEARER, "client_assertion": assertion}


def sign(key: RSAKey, claims: Mapping[str, Any], jti: str) -> str:
    return jwt.encode({"alg": ALGORITHM, "kid": key.kid}, {**claims, "jti": jti}, key)


def claims_for(client_id: str, audience: str) -> dict[str, Any]:
    """``iss`` = ``sub`` = the client (RFC 7523 §3), ``aud`` the server's issuer identifier,
    ``exp`` as late as the server allows; ``jti`` is added per assertion."""
    now = int(time.time())
    return {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": now,
        "exp": now + LIFETIME_SECONDS,
    }


def _start_worker(key: dict[str, Any], claims: dict[str, Any], prefix: str) -> None:
    """Pool initializer: the key is parsed once per worker, not once per assertion."""
    _worker.update(key=RSAKey.import_key(key), claims=claims, prefix=prefix)


def _sign_chunk(span: tuple[int, int]) -> list[str]:
    key, claims, prefix = _worker["key"], _worker["claims"], _worker["prefix"]
    return [sign(key, claims, f"{prefix}-{index}") for index in range(*span)]


def sign_batches(key: RSAKey, client_id: str, audience: str, batches: Mapping[Path, int]) -> None:
    """Write ``count`` fresh assertions, one a line, to each file of ``batches``. Every ``jti``
    is this call's random prefix and a running number, so no two assertions in any file share
    one. Waits at most what signing at ``MIN_SIGNING_RATE``
    would take (raises :class:`multiprocessing.TimeoutError` beyond); the pool is always
    stopped."""
    total = sum(batches.values())
    spans = [(start, min(start + CHUNK, total)) for start in range(0, total, CHUNK)]
    # spawn, not fork: a forked child would inherit whatever threads and locks the bench holds.
    context = multiprocessing.get_context("spawn")
    arguments = (key.as_dict(private=True), claims_for(client_id, audience), secrets.token_hex(8))
    with context.Pool(os.cpu_count() or 1, _start_worker, arguments) as pool:
        chunks = pool.map_async(_sign_chunk, spans)
        timeout = POOL_START_SECONDS + total / MIN_SIGNING_RATE
        signed = [s for chunk in chunks.get(timeout) for s in chunk]
    start = 0
    for path, count in batches.items():
        path.write_text("".join(f"{s}\n" for s in signed[start : start + count]))
        start += count
