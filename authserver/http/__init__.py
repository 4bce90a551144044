"""The HTTP app: the OAuth endpoints and discovery documents as plain WSGI apps, Flask
blueprints for the rest, and what wraps them all."""

from __future__ import annotations

from flask import Flask

from authserver.config import Settings
from authserver.http import errors, health, metrics, openapi
from authserver.http.discovery import DiscoveryDocuments
from authserver.http.envelope import Envelope
from authserver.http.oauth import OAuthEndpoints
from authserver.http.runtime import Runtime
from authserver.http.security_headers import security_headers


def init_app(app: Flask, settings: Settings) -> None:
    runtime = Runtime.attach(app, settings)
    errors.init_app(app)
    flask_app = app.wsgi_app
    endpoints = OAuthEndpoints(app, runtime, DiscoveryDocuments(app, runtime, flask_app))
    app.wsgi_app = Envelope(endpoints, security_headers(settings))  # type: ignore[method-assign]
    for blueprint in (
        health.blueprint,
        metrics.blueprint,
        openapi.blueprint,
    ):
        app.register_blueprint(blueprint)
