"""The long-lived objects of one app (one per worker): settings, keys, the OAuth server."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask, current_app
from sqlalchemy.exc import SQLAlchemyError

from authserver.audit import audit_event
from authserver.config import SHARED_COUNTERS_ENV, Settings
from authserver.extensions import db
from authserver.http.request_ids import current_request_id
from authserver.oauth.clients import OAuthClient
from authserver.oauth.server import AuthorizationServer
from authserver.oauth.tokens import AccessTokenGenerator
from authserver.security.failure_limits import FailureLimiter
from authserver.security.keyring import KeyRingLoader
from authserver.security.keys import SigningKey
from authserver.security.secrets import RememberingVerifier, unless_locked
from authserver.services import clients, tokens
from authserver.services.keys import key_store, retention
from authserver.services.registration_cache import RegistrationCache

EXTENSION_NAME = "authserver"
#: How stale the longest client token lifetime may be. It decides when retired keys leave the
#: JWKS, so a lifetime raised by the CLI must count within about the contract's 2 seconds.
RETENTION_REFRESH_SECONDS = 1.0


@dataclass
class RetentionCache:
    """How long retired keys stay published; refreshed from the database now and then.

    Read by the JWKS and readiness endpoints, never by the token endpoint.
    """

    settings: Settings
    _value: timedelta | None = None
    _fetched_at: float = field(default=-RETENTION_REFRESH_SECONDS)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def current(self) -> timedelta:
        with self._lock:
            stale = time.monotonic() - self._fetched_at >= RETENTION_REFRESH_SECONDS
            if self._value is None or stale:
                self._value = self._fetch(self._value)
                self._fetched_at = time.monotonic()
            return self._value

    def _fetch(self, previous: timedelta | None) -> timedelta:
        """The database's answer; while it is unreachable, the last one (or the default TTL)."""
        try:
            longest = clients.longest_token_ttl(db.session(), self.settings.access_token_ttl)
        except SQLAlchemyError:
            db.session.rollback()
            if previous is not None:
                return previous
            longest = self.settings.access_token_ttl
        return retention(self.settings, longest)


class UsageRecorder:
    """When each client last authenticated, kept in memory by this worker.

    The maintenance thread writes it to the database (at most once a minute per client), so
    a token request never waits on, or fails because of, a database write.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_used: dict[str, datetime] = {}

    def record(self, client_id: str, moment: datetime) -> None:
        with self._lock:
            self._last_used[client_id] = moment

    def drain(self) -> dict[str, datetime]:
        with self._lock:
            drained, self._last_used = self._last_used, {}
        return drained


def _load_registration(client_id: str) -> clients.Registration | None:
    return clients.registration(db.session(), client_id)


@dataclass(frozen=True)
class DatabaseBackend:
    """The OAuth layer's :class:`~authserver.oauth.backend.Backend`, for one worker."""

    settings: Settings
    keys: KeyRingLoader
    retention: RetentionCache
    usage: UsageRecorder
    failure_limiter: FailureLimiter | None
    registrations: RegistrationCache = field(
        default_factory=lambda: RegistrationCache(_load_registration)
    )
    verify_secret: RememberingVerifier = field(default_factory=RememberingVerifier)

    def verify_credentials(
        self, client_id: str, secret: str, *, locked: Callable[[], bool]
    ) -> OAuthClient | None:
        now = datetime.now(UTC)
        verify = unless_locked(self.verify_secret, locked)
        found = clients.accepted(self.registrations.get(client_id), secret, now, verify)
        if found is None:
            return None
        self.usage.record(client_id, now)
        return OAuthClient.from_registration(found)

    def published_keys(self) -> Sequence[SigningKey]:
        return self.keys.current().published(datetime.now(UTC), self.retention.current())

    def client_retry_after(self, client_id: str) -> int | None:
        if self.failure_limiter is None:
            return None
        return self.failure_limiter.client_retry_after(client_id)

    def record_authentication_failure(self, client_id: str | None, address: str) -> int | None:
        if self.failure_limiter is None:
            return None
        return self.failure_limiter.record_failure(client_id, address)

    def client_is_active(self, client_id: str) -> bool:
        found = self.registrations.get(client_id)
        return found is not None and found.enabled

    def is_revoked(self, jti: str) -> bool:
        return tokens.is_revoked(db.session(), jti)

    def revoke(self, jti: str, client_id: str, expires_at: datetime) -> bool:
        newly = tokens.revoke(db.session(), jti=jti, client_id=client_id, expires_at=expires_at)
        db.session.commit()
        return newly

    def record(self, event: str, *, outcome: str, client_id: str | None, **details: Any) -> None:
        audit_event(
            event,
            outcome=outcome,
            client_id=client_id,
            request_id=current_request_id(),
            **details,
        )


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    keys: KeyRingLoader
    retention: RetentionCache
    usage: UsageRecorder
    failure_limiter: FailureLimiter | None
    oauth: AuthorizationServer

    @classmethod
    def attach(cls, app: Flask, settings: Settings) -> Runtime:
        keys = KeyRingLoader(key_store(settings))
        retention_cache = RetentionCache(settings)
        usage = UsageRecorder()

        def signing_key() -> SigningKey | None:
            return keys.current().signing_key(datetime.now(UTC))

        generator = AccessTokenGenerator(settings.issuer, signing_key, settings.access_token_ttl)
        # serve's workers share one counter table (cli/serve.py); elsewhere: one per process.
        limiter = FailureLimiter(
            settings.ratelimit_storage_url, shared_file=os.environ.get(SHARED_COUNTERS_ENV)
        )
        backend = DatabaseBackend(
            settings, keys, retention_cache, usage, limiter if settings.ratelimit_enabled else None
        )
        oauth = AuthorizationServer(
            backend,
            generator,
            issuer=settings.issuer,
            default_audience=settings.default_audience,
        )
        runtime = cls(settings, keys, retention_cache, usage, backend.failure_limiter, oauth)
        app.extensions[EXTENSION_NAME] = runtime
        return runtime

    @staticmethod
    def current() -> Runtime:
        runtime: Runtime = current_app.extensions[EXTENSION_NAME]
        return runtime
