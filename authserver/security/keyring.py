"""Which key signs and which keys are published, derived from the key files and the clock.

States are computed, never stored: a key is ``next`` before its ``activates_at``, ``active``
from then until a newer key activates, ``retired`` afterwards. Two workers that read the same
files therefore agree on the signing key without talking to each other.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

from authserver.errors import KeyStoreError
from authserver.security.keys import KeyStore, SigningKey

#: How often a worker looks at the keys folder for changes; well inside the 2 s the
#: contract allows for CLI changes to reach running workers.
RELOAD_INTERVAL_SECONDS = 1.0


@dataclass(frozen=True)
class KeyStatus:
    key: SigningKey
    state: str
    retires_at: datetime | None


@dataclass(frozen=True)
class KeyRing:
    """An immutable snapshot of the keys folder with its JWKS rendered once."""

    keys: tuple[SigningKey, ...]
    jwks_body: bytes = field(init=False)
    jwks_etag: str = field(init=False)

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.keys, key=lambda k: (k.activates_at, k.created_at)))
        object.__setattr__(self, "keys", ordered)
        body = json.dumps(
            {"keys": [k.public_jwk() for k in ordered]}, separators=(",", ":")
        ).encode()
        object.__setattr__(self, "jwks_body", body)
        object.__setattr__(self, "jwks_etag", hashlib.sha256(body).hexdigest()[:32])

    def signing_key(self, now: datetime) -> SigningKey | None:
        """The newest key whose activation time has come."""
        started = [k for k in self.keys if k.activates_at <= now]
        return started[-1] if started else None

    def statuses(self, now: datetime) -> list[KeyStatus]:
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
            result.append(KeyStatus(key, state, retires_at))
        return result


class KeyRingLoader:
    """Keeps a worker's :class:`KeyRing` current by polling the folder's modification stamp.

    The poll is one ``stat`` per interval, so the token endpoint never reads a file. Loading is
    lazy, so CLI commands that never sign do not need readable keys. A key file that cannot be
    loaded leaves the last good ring in place and is reported through ``problem`` (``/readyz``).
    """

    def __init__(self, store: KeyStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._stamp: int | None = None
        self._ring = KeyRing(())
        self._checked_at = -RELOAD_INTERVAL_SECONDS
        self.problem: str | None = None

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
            try:
                self._ring = KeyRing(tuple(self._store.load_all()))
                self.problem = None
            except KeyStoreError as exc:
                self.problem = str(exc)
            self._stamp = stamp
