"""Background upkeep run beside each server worker, off the request path.

- every few seconds: write the clients' ``last_used_at`` collected in memory;
- every ten minutes: name the clients that got far more tokens than caching needs
  (``client.not_caching`` warnings, :mod:`authserver.services.issuance`);
- every minute: delete hashes of expired secrets and deny-list entries of expired tokens,
  and (with ``AUTHSERVER_KEY_ROTATION_DAYS``) stage a successor for an old signing key;
- on a thread of its own, twice a second: bring the worker's copy of the deny-list up to
  date (:class:`RevocationSync`), which a slow upkeep round must not hold back.

Every worker of every instance runs it, and that is safe: the writes are idempotent, and key
rotation decides under the key store's lock, so only one caller stages a successor.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from flask import Flask

from authserver import operator_log
from authserver.config import Settings
from authserver.extensions import db
from authserver.runtime import Runtime
from authserver.services import assertions, issuance, registry, revocations, usage
from authserver.services.database_guard import DatabaseUnreachable
from authserver.services.keys import rotate_if_due
from authserver.services.revocation_list import SYNC_INTERVAL_SECONDS

log = logging.getLogger(__name__)

USAGE_FLUSH_SECONDS = 5.0
HOUSEKEEPING_SECONDS = 60.0


class Maintenance:
    def __init__(self, app: Flask) -> None:
        self._app = app
        self._runtime = Runtime.of(app)
        self._settings: Settings = self._runtime.settings
        self._last_housekeeping = -HOUSEKEEPING_SECONDS

    def tick(self) -> None:
        """One round; each part fails alone, logged, and is retried next round.

        Skipped while the worker's database guard finds the database unreachable: the guard
        has said so once, and the last-used times wait in memory for the next round.
        """
        if self._runtime.database.unreachable_for is not None:
            return
        with self._app.app_context():
            self._guarded("last-used update", self._flush_usage)
            if self._runtime.backend.issuance.due():
                self._guarded("caching report", self._report_not_caching)
            if time.monotonic() - self._last_housekeeping >= HOUSEKEEPING_SECONDS:
                self._last_housekeeping = time.monotonic()
                self._guarded("purge", self._purge)
                self._guarded("scheduled key rotation", self._rotate_keys)

    def start(self) -> threading.Thread:
        def run() -> None:
            while True:
                self.tick()
                time.sleep(USAGE_FLUSH_SECONDS)

        RevocationSync(self._app).start()
        thread = threading.Thread(target=run, name="authserver-maintenance", daemon=True)
        thread.start()
        return thread

    def _flush_usage(self) -> None:
        last_used = self._runtime.usage.drain()
        if last_used:
            usage.record_last_used(db.session(), last_used)
            db.session.commit()

    def _report_not_caching(self) -> None:
        for found in self._runtime.backend.issuance.report():
            operator_log.warn(
                "client.not_caching",
                f"client {found.client_id} got {found.tokens} tokens in "
                f"{issuance.WINDOW_SECONDS:g} s from {found.addresses} address(es), where "
                f"caching its {found.token_ttl} s tokens needs about {found.expected_at_most}: "
                "it should reuse each token until shortly before it expires",
                client_id=found.client_id,
                tokens=found.tokens,
                addresses=found.addresses,
                token_ttl=found.token_ttl,
                expected_at_most=found.expected_at_most,
            )

    def _purge(self) -> None:
        now = datetime.now(UTC)
        registry.purge_expired_secrets(db.session(), now)
        revocations.purge_expired_revocations(db.session(), now)
        assertions.purge_expired_assertions(db.session(), now)
        db.session.commit()

    def _rotate_keys(self) -> None:
        staged = rotate_if_due(self._settings, self._runtime.retention.current())
        if staged:
            log.warning("scheduled rotation staged signing key %s", staged.kid)

    @staticmethod
    def _guarded(what: str, step: Callable[[], None]) -> None:
        try:
            step()
        except Exception:
            db.session.rollback()
            log.exception("%s failed; retrying next round", what)


class RevocationSync:
    """Keeps one app's copy of the deny-list current, so a revocation made on any instance
    reaches this worker's introspection answers within the contract's 2 seconds."""

    def __init__(self, app: Flask, interval: float = SYNC_INTERVAL_SECONDS) -> None:
        self._app = app
        self._interval = interval
        self._stopped = threading.Event()

    def tick(self) -> None:
        """One poll. An unreachable database is said once per outage, by the guard."""
        with self._app.app_context():
            try:
                Runtime.of(self._app).backend.sync_revocations(background=True)
            except DatabaseUnreachable:
                pass
            except Exception:
                log.exception("revocation poll failed; retrying")

    def start(self) -> threading.Thread:
        def run() -> None:
            while not self._stopped.is_set():
                self.tick()
                self._stopped.wait(self._interval)

        thread = threading.Thread(target=run, name="authserver-revocations", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stopped.set()
