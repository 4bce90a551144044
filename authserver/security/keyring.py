"""Which key signs and which keys are published, derived from the key store and the clock.

States are computed, never stored: a key is ``next`` before its ``activates_at``, ``active``
from then until a newer key activates (its ``retires_at``), ``retired`` afterwards. A retired
key stays published until every token it can have signed has expired and the resource
servers' cached JWKS has expired after that:
``retires_at + longest token lifetime + JWKS max-age``. Two workers or two instances that
read the same store therefore agree on the signing key and the JWKS without talking.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import weakref
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from authserver.operator_log import warn
from authserver.security.key_material import LoadResult, SigningKey
from authserver.security.key_store import SigningKeyStore

#: How often a worker looks at the key store for changes; well inside the 2 s the
#: contract allows for changes to reach every running worker.
RELOAD_INTERVAL_SECONDS = 1.0
#: The longest a worker's first request waits for its first load of the keys; a store that
#: does not answer by then (a hung database) leaves the ring empty until it does.
FIRST_LOAD_WAIT_SECONDS = 2.0


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
    """An immutable snapshot of the key store."""

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
    """Keeps a worker's :class:`KeyRing` current by polling the key store from a thread.

    A daemon thread, started by the first :meth:`current` in each process, asks the store for
    its cheap stamp once per interval and reloads when it changed, so a request never reads a
    file or waits for the database: it takes the last ring loaded. Only the very first call
    waits for the first load, at most ``FIRST_LOAD_WAIT_SECONDS``. When the store cannot be
    read (a database outage, or one that hangs), the last good ring keeps serving and the log
    says so once per outage. Loading is lazy, so CLI commands that never sign do not need
    readable keys. A key that cannot be used is skipped, never takes a worker down, and is
    listed in ``problems``; the log names it once, when it turns up, since ``/readyz`` (which
    counts them) must not tell outsiders where the keys live.
    """

    def __init__(self, store: SigningKeyStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._stamp: object = None
        self._ring = KeyRing(())
        self._loaded = threading.Event()
        self._poller_pid: int | None = None
        self._poller: threading.Thread | None = None
        self._closed = threading.Event()
        self._store_failing = False
        self.problems: list[str] = []

    def current(self) -> KeyRing:
        if self._poller_pid != os.getpid():
            self._start_poller()
        if not self._loaded.is_set():
            self._loaded.wait(FIRST_LOAD_WAIT_SECONDS)
        return self._ring

    def _start_poller(self) -> None:
        """One poller per process: a forked worker does not inherit its parent's thread."""
        with self._lock:
            if self._poller_pid == os.getpid():
                return
            self._poller_pid = os.getpid()
            # The thread holds only a weak reference, so a loader that is dropped (an app
            # built for one CLI command or one test) takes its poller with it.
            loader = weakref.ref(self)
            self._poller = threading.Thread(
                target=_poll,
                args=(loader, self._closed),
                name="authserver-key-poller",
                daemon=True,
            )
            self._poller.start()

    def close(self) -> None:
        """Stop polling, once a poll in progress is done (before its store is disposed)."""
        self._closed.set()
        if self._poller is not None and self._poller.ident is not None:
            self._poller.join()

    def refresh(self) -> None:
        """Reload if the store changed; on failure keep the last ring (and say so once)."""
        try:
            stamp = self._store.stamp()
            if stamp != self._stamp:
                self._apply(self._store.load())
                self._stamp = stamp
        except Exception as exc:  # noqa: BLE001 (any failure: keep serving the last keys)
            if not self._store_failing:
                warn(
                    "signing_key.store_unreadable",
                    f"cannot read the signing keys from {self._store.location} "
                    f"({type(exc).__name__}); signing with the keys read last",
                )
            self._store_failing = True
            return
        finally:
            self._loaded.set()
        if self._store_failing:
            warn(
                "signing_key.store_readable",
                f"reading the signing keys from {self._store.location} again",
            )
            self._store_failing = False

    def _apply(self, result: LoadResult) -> None:
        self._ring = KeyRing(tuple(result.keys))
        for problem in result.problems:
            if problem not in self.problems:
                warn("signing_key.unusable", f"{problem}; skipped, the other keys still serve")
        self.problems = result.problems


def _poll(loader_ref: weakref.ref[KeyRingLoader], closed: threading.Event) -> None:
    while not closed.is_set() and (loader := loader_ref()) is not None:
        loader.refresh()
        del loader
        closed.wait(RELOAD_INTERVAL_SECONDS)
