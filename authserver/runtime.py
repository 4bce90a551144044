"""The long-lived objects of one app (one per worker), wired together in one place.

Everything below this module takes what it needs as arguments; this is where the settings
become a key ring, a failure limiter, a backend and Authlib's server, and where the HTTP
layer and the maintenance thread find them (``app.extensions``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import Flask
from sqlalchemy.engine import Engine

from authserver.config import SHARED_COUNTERS_ENV, Settings
from authserver.database_backend import DatabaseBackend, read_through
from authserver.http import routes
from authserver.oauth.server import AuthorizationServer
from authserver.oauth.tokens import AccessTokenGenerator
from authserver.security.failure_limits import FailureLimiter
from authserver.security.issuer_keys import IssuerKeys
from authserver.security.key_material import SigningKey
from authserver.security.keyring import KeyRingLoader
from authserver.security.quotas import TokenQuotas
from authserver.security.remote_jwks import RemoteKeySets
from authserver.services import key_retention
from authserver.services.database_guard import DatabaseGuard
from authserver.services.key_retention import RetentionCache
from authserver.services.keys import key_store
from authserver.services.revocation_list import RevocationList
from authserver.services.usage import UsageRecorder

EXTENSION_NAME = "authserver"


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    keys: KeyRingLoader
    retention: RetentionCache
    usage: UsageRecorder
    failure_limiter: FailureLimiter | None
    oauth: AuthorizationServer
    #: The OAuth layer's backend, whose deny-list copy the maintenance thread keeps current.
    backend: DatabaseBackend

    @property
    def database(self) -> DatabaseGuard:
        return self.backend.database

    @classmethod
    def build(cls, settings: Settings, engine: Engine) -> Runtime:
        keys = KeyRingLoader(key_store(settings, polled=True))
        database = DatabaseGuard()
        usage = UsageRecorder()

        def longest_ttl() -> int:
            return read_through(
                database,
                engine,
                lambda session: key_retention.longest_token_ttl(session, settings.access_token_ttl),
            )

        retention = RetentionCache(settings, longest_ttl)

        def signing_key() -> SigningKey | None:
            return keys.current().signing_key(datetime.now(UTC))

        generator = AccessTokenGenerator(settings.issuer, signing_key, settings.access_token_ttl)
        limiter = None
        if settings.ratelimit_enabled:
            # serve's workers share one counter table (cli/serve.py); elsewhere: one per process.
            limiter = FailureLimiter(
                settings.ratelimit_storage_url, shared_file=os.environ.get(SHARED_COUNTERS_ENV)
            )
        grace = settings.database_outage_grace
        backend = DatabaseBackend(
            engine,
            keys,
            retention,
            usage,
            limiter,
            database,
            RevocationList(outage_grace=grace),
            RemoteKeySets(),
            IssuerKeys(),
            TokenQuotas(
                settings.ratelimit_storage_url, shared_file=os.environ.get(SHARED_COUNTERS_ENV)
            ),
            outage_grace=grace,
        )
        oauth = AuthorizationServer(
            backend,
            generator,
            issuer=settings.issuer,
            default_audience=settings.default_audience,
            token_endpoint=routes.TOKEN.url(settings.issuer),
        )
        return cls(settings, keys, retention, usage, limiter, oauth, backend)

    def attach(self, app: Flask) -> None:
        app.extensions[EXTENSION_NAME] = self

    @staticmethod
    def of(app: Flask) -> Runtime:
        runtime: Runtime = app.extensions[EXTENSION_NAME]
        return runtime
