"""The long-lived objects of one app (one per worker): settings, keys, the OAuth server."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from flask import Flask, current_app
from sqlalchemy.exc import SQLAlchemyError

from authserver.config import Settings
from authserver.extensions import db
from authserver.oauth.clients import OAuthClient
from authserver.oauth.server import AuthorizationServer
from authserver.oauth.tokens import AccessTokenGenerator
from authserver.security.keyring import KeyRingLoader
from authserver.security.keys import SigningKey
from authserver.services import clients
from authserver.services.keys import key_store, retention

EXTENSION_NAME = "authserver"
#: How stale the longest client token lifetime may be; it only decides when retired keys
#: leave the JWKS, which happens minutes to hours after they stop signing.
RETENTION_REFRESH_SECONDS = 5.0


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


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    keys: KeyRingLoader
    retention: RetentionCache
    oauth: AuthorizationServer

    @classmethod
    def attach(cls, app: Flask, settings: Settings) -> Runtime:
        keys = KeyRingLoader(key_store(settings))

        def signing_key() -> SigningKey | None:
            return keys.current().signing_key(datetime.now(UTC))

        generator = AccessTokenGenerator(settings.issuer, signing_key, settings.access_token_ttl)
        oauth = AuthorizationServer(_verify_credentials, generator, settings.default_audience)
        runtime = cls(settings, keys, RetentionCache(settings), oauth)
        app.extensions[EXTENSION_NAME] = runtime
        return runtime

    @staticmethod
    def current() -> Runtime:
        runtime: Runtime = current_app.extensions[EXTENSION_NAME]
        return runtime


def _verify_credentials(client_id: str, secret: str) -> OAuthClient | None:
    client = clients.authenticate(db.session(), client_id, secret, datetime.now(UTC))
    return OAuthClient.from_model(client) if client else None
