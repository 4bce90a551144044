"""Flask blueprints and the per-app objects they share."""

from __future__ import annotations

from flask import Flask

from authserver.config import Settings
from authserver.http import discovery, errors, health, token
from authserver.http.runtime import Runtime


def init_app(app: Flask, settings: Settings) -> None:
    Runtime.attach(app, settings)
    errors.init_app(app)
    for blueprint in (token.blueprint, discovery.blueprint, health.blueprint):
        app.register_blueprint(blueprint)
