"""The WSGI app factory: one Flask app, its database and (for serving) its long-lived
objects and HTTP layer."""

from __future__ import annotations

from flask import Flask

from authserver.config import MAX_BODY_BYTES, Settings
from authserver.database import flask_sqlalchemy_config
from authserver.extensions import db
from authserver.http.forwarded import behind_proxies


def create_app(settings: Settings | None = None, *, with_http: bool = True) -> Flask:
    """Build the WSGI app; ``settings`` defaults to the validated environment.

    CLI commands that only use the database pass ``with_http=False``: they skip the OAuth
    layer and its imports, which keeps every admin command quick to start.
    """
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config.update(
        flask_sqlalchemy_config(settings.database_url, serving=with_http),
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        AUTHSERVER_SETTINGS=settings,
    )
    db.init_app(app)
    if with_http:
        from authserver.http.handlers import init_app
        from authserver.runtime import Runtime

        with app.app_context():
            engine = db.engine
        runtime = Runtime.build(settings, engine)
        runtime.attach(app)
        init_app(app, runtime)
    # The client's address counts for the failed-authentication limits and the logs.
    app.wsgi_app = behind_proxies(app.wsgi_app, settings)  # type: ignore[method-assign,assignment]
    return app
