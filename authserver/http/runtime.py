"""The long-lived objects of one app (one per worker): settings, keys, the OAuth server."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from flask import Flask, current_app

from authserver.config import Settings
from authserver.extensions import db
from authserver.oauth.clients import OAuthClient
from authserver.oauth.server import AuthorizationServer
from authserver.oauth.tokens import AccessTokenGenerator
from authserver.security.keyring import KeyRingLoader
from authserver.security.keys import KeyStore, SigningKey
from authserver.services import clients

EXTENSION_NAME = "authserver"


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    keys: KeyRingLoader
    oauth: AuthorizationServer

    @classmethod
    def attach(cls, app: Flask, settings: Settings) -> Runtime:
        keys = KeyRingLoader(KeyStore(settings.keys_dir, settings.key_passphrase))

        def signing_key() -> SigningKey | None:
            return keys.current().signing_key(datetime.now(UTC))

        generator = AccessTokenGenerator(settings.issuer, signing_key, settings.access_token_ttl)
        oauth = AuthorizationServer(_verify_credentials, generator, settings.default_audience)
        runtime = cls(settings, keys, oauth)
        app.extensions[EXTENSION_NAME] = runtime
        return runtime

    @staticmethod
    def current() -> Runtime:
        runtime: Runtime = current_app.extensions[EXTENSION_NAME]
        return runtime


def _verify_credentials(client_id: str, secret: str) -> OAuthClient | None:
    client = clients.authenticate(db.session(), client_id, secret, datetime.now(UTC))
    return OAuthClient.from_model(client) if client else None
