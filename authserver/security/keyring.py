"""Which key signs and which keys are published, derived from the key files and the clock.

States are computed, never stored: a key is ``next`` before its ``activates_at``, ``active``
from then until a newer key activates (its ``retires_at``), ``retired`` afterwards. A retired
key stays published until every token it can have signed has expired and the resource
servers' cached JWKS has expired after that:
``retires_at + longest token lifetime + JWKS max-age``. Two workers or two instances that
read the same files therefore agree on the signing key and the JWKS without talking.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from authserver.operator_log import warn
from authserver.security.keys import KeyStore, SigningKey

#: How often a worker looks at the keys folder for changes; well inside the 2 s the
#: contract allows for CLI changes to reach running workers.
RELOAD_INTERVAL_SECONDS = 1.0


@dataclass(frozen=True)
class KeyStatus:
    key: SigningKey
    state: str
    #: When the key stops signing: its successor's activation (None while none is staged).
    retires_at: datetime | None
    #: When the key leaves the JWKS (None while it still signs or may sign).
    unpublishes_at: datetime | None

    def published(self, now: datetime) -> bool:
        return self.unpublishes_at is None or now < self.unpublishes_at


@dataclass(frozen=True)
class JWKSDocument:
    body: bytes
    etag: str


@dataclass(frozen=True)
class KeyRing:
    """An immutable snapshot of the keys folder."""

    keys: tuple[SigningKey, ...]
    _documents: dict[tuple[str, ...], JWKSDocument] = field(
        default_factory=dict, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.keys, key=lambda k: (k.activates_at, k.created_at, k.kid)))
        object.__setattr__(self, "keys", ordered)

    def signing_key(self, now: datetime) -> SigningKey | None:
        """The newest key whose activation time has come."""
        signer = None
        for key in self.keys:
            if key.activates_at <= now:
                signer = key
        return signer

    def statuses(self, now: datetime, retention: timedelta) -> list[KeyStatus]:
        """Each key's state; ``retention`` = longest token lifetime + JWKS max-age."""
        result = []
        for index, key in enumerate(self.keys):
            successor = self.keys[index + 1] if index + 1 < len(self.keys) else None
            retires_at = successor.activates_at if successor else None
            if key.activates_at > now:
                state = "next"
            elif retires_at is not None and retires_at <= now:
                state = "retired"
            else:
                state = "active"
            unpublishes_at = retires_at + retention if retires_at else None
            result.append(KeyStatus(key, state, retires_at, unpublishes_at))
        return result

    def published(self, now: datetime, retention: timedelta) -> list[SigningKey]:
        return [s.key for s in self.statuses(now, retention) if s.published(now)]

    def jwks(self, now: datetime, retention: timedelta) -> JWKSDocument:
        """The JWK Set of the published keys, rendered once per distinct set."""
        keys = self.published(now, retention)
        kids = tuple(k.kid for k in keys)
        document = self._documents.get(kids)
        if document is None:
            body = json.dumps(
                {"keys": [k.public_jwk() for k in keys]}, separators=(",", ":")
            ).encode()
            document = JWKSDocument(body, hashlib.sha256(body).hexdigest()[:32])
            self._documents[kids] = document
        return document


class KeyRingLoader:
    """Keeps a worker's :class:`KeyRing` current by polling the keys folder.

    The poll lists the folder and stats the key files once per interval, so the token
    endpoint never reads a file. Loading is lazy, so CLI commands that never sign do not need
    readable keys. A key file that cannot be used is skipped, never takes a worker down, and
    is listed in ``problems``; the log names it once, when it turns up, since ``/readyz``
    (which counts them) must not tell outsiders where the keys live.
    """

    def __init__(self, store: KeyStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._stamp: object = None
        self._ring = KeyRing(())
        self._checked_at = -RELOAD_INTERVAL_SECONDS
        self.problems: list[str] = []

    def current(self) -> KeyRing:
        if time.monotonic() - self._checked_at >= RELOAD_INTERVAL_SECONDS:
            self._reload_if_changed()
        return self._ring

    def _reload_if_changed(self) -> None:
        with self._lock:
            self._checked_at = time.monotonic()
            stamp = self._store.stamp()
            if stamp == self._stamp:
                return
            result = self._store.load()
            self._ring = KeyRing(tuple(result.keys))
            for problem in result.problems:
                if problem not in self.problems:
                    warn("signing_key.unusable", f"{problem}; skipped, the other keys still serve")
            self.problems = result.problems
            self._stamp = stamp
