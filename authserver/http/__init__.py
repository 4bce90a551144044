"""The HTTP app: the OAuth endpoints, Flask blueprints for the rest, and what wraps them all."""

from __future__ import annotations

from flask import Flask

from authserver.config import Settings
from authserver.http import discovery, errors, health, metrics, openapi
from authserver.http.envelope import Envelope
from authserver.http.oauth import OAuthEndpoints
from authserver.http.runtime import Runtime
from authserver.http.security_headers import security_headers


def init_app(app: Flask, settings: Settings) -> None:
    runtime = Runtime.attach(app, settings)
    errors.init_app(app)
    app.wsgi_app = Envelope(  # type: ignore[method-assign]
        OAuthEndpoints(app, runtime, app.wsgi_app), security_headers(settings)
    )
    for blueprint in (
        discovery.blueprint,
        health.blueprint,
        metrics.blueprint,
        openapi.blueprint,
    ):
        app.register_blueprint(blueprint)
