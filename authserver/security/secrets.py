"""Generation, hashing and verification of client secrets.

Two stored formats, told apart by their prefix so verification can dispatch on them:

* ``$sha256$<base64url digest>`` for secrets this server generates. They carry 256 bits of
  entropy, so nobody can guess one and a slow KDF would add no protection; it would only let
  any caller make us burn tens of milliseconds of CPU per wrong guess.
* an Argon2id PHC string (``$argon2id$v=19$m=...,t=...,p=...$salt$hash``) for secrets an admin
  chose (``clients create --secret-stdin``), which may be guessable and so need a slow KDF.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from contextvars import ContextVar

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

#: Lets secret scanners (GitHub, gitleaks, trufflehog) recognise a leaked secret.
SECRET_PREFIX = "ascs_"  # noqa: S105 (a public marker, not a password)
CLIENT_ID_PREFIX = "cli_"
#: Longer ids are refused before any lookup, cache or per-id counter sees them (ours are 26).
MAX_CLIENT_ID_LENGTH = 256
SECRET_BYTES = 32

SHA256_SCHEME = "$sha256$"
ARGON2ID_SCHEME = "$argon2id$"

# RFC 9106 §4, second recommended option: 64 MiB, 3 passes, 4 lanes.
ARGON2_MEMORY_KIB = 64 * 1024
ARGON2_ITERATIONS = 3
ARGON2_LANES = 4
ARGON2_SALT_BYTES = 16
ARGON2_LENGTH = 32
#: Argon2id checks one worker runs at once, and how long a request waits for a turn. One:
#: with a worker per core, at least half of each core stays with every other request.
ARGON2_CONCURRENCY = 1
ARGON2_WAIT_SECONDS = 0.5


def generate_client_id() -> str:
    """A public identifier: 128 random bits, URL-safe, so ids never collide or leak a count."""
    return CLIENT_ID_PREFIX + secrets.token_urlsafe(16)


def generate_client_secret() -> str:
    """A 256-bit URL-safe secret, using only ``A-Z a-z 0-9 _ -``."""
    return SECRET_PREFIX + secrets.token_urlsafe(SECRET_BYTES)


def hash_generated_secret(secret: str) -> str:
    digest = hashlib.sha256(secret.encode()).digest()
    return SHA256_SCHEME + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def hash_chosen_secret(secret: str) -> str:
    """Argon2id with the parameters stored in the result, so they can be raised later."""
    kdf = Argon2id(
        salt=os.urandom(ARGON2_SALT_BYTES),
        length=ARGON2_LENGTH,
        iterations=ARGON2_ITERATIONS,
        lanes=ARGON2_LANES,
        memory_cost=ARGON2_MEMORY_KIB,
    )
    return kdf.derive_phc_encoded(secret.encode())


#: Compared against when the client id is unknown, so that answer costs what a wrong secret does.
_UNKNOWN_CLIENT_HASH = hash_generated_secret(generate_client_secret())


def verify_secret(secret: str, stored: str | None) -> bool:
    """Constant-time check of ``secret`` against a stored hash; ``None`` means no such client."""
    if stored is None:
        hmac.compare_digest(hash_generated_secret(secret), _UNKNOWN_CLIENT_HASH)
        return False
    if stored.startswith(SHA256_SCHEME):
        return hmac.compare_digest(hash_generated_secret(secret), stored)
    if stored.startswith(ARGON2ID_SCHEME):
        try:
            Argon2id.verify_phc_encoded(secret.encode(), stored)
        except InvalidKey:
            return False
        return True
    return False


Verifier = Callable[[str, str | None], bool]


def unless_locked(verify: Verifier, locked: Callable[[], bool]) -> Verifier:
    """``verify``, except that an admin-chosen (Argon2id) hash counts as not matching, unchecked,
    while the client id is ``locked``.

    Answering its right secret differently from a wrong one would tell a guesser when they had
    it, and running Argon2id for a locked id would let anyone burn the server's CPU with it.
    Generated secrets are still checked: they cannot be guessed, and the check is cheap. So
    ``locked`` is asked only on meeting an Argon2id hash, which spares most requests the
    lookup (a Redis round trip with shared limits).
    """

    def check(secret: str, stored: str | None) -> bool:
        if stored is not None and stored.startswith(ARGON2ID_SCHEME) and locked():
            return False
        return verify(secret, stored)

    return check


class VerifierBusyError(Exception):
    """No Argon2id turn came free within the wait: the caller answers "retry later"."""


class SlowCheckNeeded(Exception):
    """An Argon2id check is due on a thread that must not run one.

    The server runs each request on its worker's event loop (``authserver.http.gateway``),
    where 250 ms of Argon2id would hold up every other request of the worker. There, a check
    that is not remembered raises this before any work is done; the gateway runs the request
    again on one of its few slow-lane threads, where checks run (Argon2id releases the GIL).
    """


#: False where slow checks must not run (set by the gateway around its event-loop requests).
SLOW_CHECKS_ALLOWED: ContextVar[bool] = ContextVar("slow_checks_allowed", default=True)


class RememberingVerifier:
    """:func:`verify_secret` that remembers which Argon2id checks succeeded, per worker, and
    runs at most ``concurrency`` Argon2id checks at once.

    An admin-chosen secret costs about 150 ms of Argon2id per check, which would make every
    token request of such a client slow. A success is remembered under the stored hash and the
    SHA-256 of the presented secret (memory only, never the secret itself), so it stops
    counting as soon as that hash is rotated away. Failures are never remembered: guessing
    stays as slow as Argon2id makes it.

    Each check takes 64 MiB and a core for that long, so a flood of guesses could starve every
    other client; a check that gets no turn within ``wait`` seconds raises
    :class:`VerifierBusyError` instead of queueing. ``turns`` is the semaphore handing them out.
    """

    def __init__(
        self,
        max_entries: int = 1024,
        *,
        concurrency: int = ARGON2_CONCURRENCY,
        wait: float = ARGON2_WAIT_SECONDS,
    ) -> None:
        self._max_entries = max_entries
        self._verified: OrderedDict[tuple[str, bytes], None] = OrderedDict()
        self._lock = threading.Lock()
        self.turns = threading.BoundedSemaphore(concurrency)
        self._wait = wait

    def __call__(self, secret: str, stored: str | None) -> bool:
        if stored is None or not stored.startswith(ARGON2ID_SCHEME):
            return verify_secret(secret, stored)
        key = (stored, hashlib.sha256(secret.encode()).digest())
        with self._lock:
            if key in self._verified:
                self._verified.move_to_end(key)
                return True
        if not SLOW_CHECKS_ALLOWED.get():
            raise SlowCheckNeeded
        if not self.turns.acquire(timeout=self._wait):
            raise VerifierBusyError
        try:
            verified = verify_secret(secret, stored)
        finally:
            self.turns.release()
        if not verified:
            return False
        with self._lock:
            self._verified[key] = None
            if len(self._verified) > self._max_entries:
                self._verified.popitem(last=False)
        return True
