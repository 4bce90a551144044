"""Flask blueprints and the per-app objects they share."""

from __future__ import annotations

from flask import Flask

from authserver.config import Settings
from authserver.http import (
    access_log,
    discovery,
    errors,
    health,
    metrics,
    oauth,
    openapi,
    request_ids,
    security_headers,
)
from authserver.http.runtime import Runtime


def init_app(app: Flask, settings: Settings) -> None:
    Runtime.attach(app, settings)
    errors.init_app(app)
    request_ids.init_app(app)
    access_log.init_app(app)
    security_headers.init_app(app, settings)
    for blueprint in (
        oauth.blueprint,
        discovery.blueprint,
        health.blueprint,
        metrics.blueprint,
        openapi.blueprint,
    ):
        app.register_blueprint(blueprint)
