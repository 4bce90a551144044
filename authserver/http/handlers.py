"""Every route of the table bound to its handler once, and what wraps them all.

The OAuth endpoints and the discovery documents are plain WSGI apps dispatched by the
:class:`~authserver.http.router.Router` in front of Flask; the probes, metrics and the OpenAPI
description are Flask views. Both are bound here, from :data:`~authserver.http.routes.ROUTES`.
The admin API (:data:`~authserver.http.routes.ADMIN_ROUTES`) is mounted behind them, on Flask,
unless ``AUTHSERVER_ADMIN_API=off``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from flask import Flask, Response

from authserver.config import Settings
from authserver.http import admin, errors, health, metrics, openapi, routes
from authserver.http.discovery import JwksDocument, MetadataDocument
from authserver.http.envelope import Envelope
from authserver.http.oauth import OAuthEndpoint
from authserver.http.router import Router
from authserver.http.security_headers import security_headers
from authserver.oauth.server import AuthorizationServer
from authserver.security.failure_limits import FailureLimiter
from authserver.security.keyring import KeyRingLoader
from authserver.services.database_guard import DatabaseGuard
from authserver.services.key_retention import RetentionCache

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication


class Served(Protocol):
    """The long-lived objects of one app that HTTP serves from (built by ``authserver.runtime``)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def keys(self) -> KeyRingLoader: ...
    @property
    def retention(self) -> RetentionCache: ...
    @property
    def failure_limiter(self) -> FailureLimiter | None: ...
    @property
    def database(self) -> DatabaseGuard: ...
    @property
    def oauth(self) -> AuthorizationServer: ...


def init_app(app: Flask, served: Served) -> None:
    settings = served.settings
    errors.init_app(app)
    handlers: dict[str, WSGIApplication] = {
        route.handler: OAuthEndpoint(
            app, served.oauth, served.failure_limiter, settings.issuer, route
        )
        for route in (routes.TOKEN, routes.INTROSPECTION, routes.REVOCATION)
    }
    handlers[routes.JWKS.handler] = JwksDocument(
        app, served.keys, served.retention, settings.jwks_max_age
    )
    handlers[routes.METADATA.handler] = MetadataDocument(settings.issuer)
    views: dict[str, Callable[[], Response]] = {
        routes.LIVENESS.handler: health.liveness,
        routes.READINESS.handler: health.Readiness(
            served.keys, served.database, settings.database_outage_grace
        ),
        routes.METRICS.handler: metrics.MetricsPage(served.keys, served.failure_limiter),
        routes.OPENAPI.handler: openapi.OpenApiDocument(admin_api=settings.admin_api),
    }
    unbound = {route.handler for route in routes.ROUTES} - handlers.keys() - views.keys()
    if unbound:
        raise RuntimeError(f"routes without a handler: {sorted(unbound)}")
    for route in routes.ROUTES:
        if route.handler in views:
            app.add_url_rule(
                route.path, route.handler, views[route.handler], methods=list(route.methods)
            )
    if settings.admin_api:
        admin.init_app(app, settings, served.oauth)
    router = Router(handlers, app.wsgi_app)
    app.wsgi_app = Envelope(router, security_headers(settings))  # type: ignore[method-assign]
