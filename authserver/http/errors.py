"""Every failure becomes JSON: no HTML error page, no traceback, no 5xx for bad input.

The responses are plain functions so that the Flask routes (through the handlers registered
here) and the OAuth endpoints (which run outside Flask) answer failures identically.
"""

from __future__ import annotations

import contextlib
import logging

from flask import Flask, Response
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge

from authserver.config import MAX_BODY_BYTES
from authserver.extensions import db
from authserver.http.responses import error_response
from authserver.services.database_guard import RETRY_AFTER_SECONDS, DatabaseUnreachable

log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(SQLAlchemyError, database_unavailable)
    app.register_error_handler(Exception, unexpected_error)


def method_not_allowed(allowed: str) -> Response:
    return error_response(
        405, "invalid_request", f"This endpoint accepts {allowed} only.", [("Allow", allowed)]
    )


def body_too_large() -> Response:
    return error_response(
        413, "invalid_request", f"The request body is larger than {MAX_BODY_BYTES // 1024} KiB."
    )


def body_incomplete() -> Response:
    return error_response(400, "invalid_request", "The request body ended before it was complete.")


def busy() -> Response:
    """Too many requests already wait in this worker for a slow step (an Argon2id check), or
    one waited too long for its client's keys to be fetched."""
    return error_response(
        503,
        "temporarily_unavailable",
        "The server is busy; retry later.",
        [("Retry-After", "1")],
    )


def request_timeout() -> Response:
    return error_response(
        408, "invalid_request", "The request body did not arrive in time; the connection closes."
    )


def database_unavailable(exc: SQLAlchemyError) -> Response:
    """The database is down or restarting: tell clients to retry rather than fail hard.

    An outage the database guard found is already in the log, once; other errors are logged
    each time.
    """
    with contextlib.suppress(SQLAlchemyError):
        db.session.rollback()
    if not isinstance(exc, DatabaseUnreachable):
        log.error("database error: %s", (str(exc) or type(exc).__name__).splitlines()[0])
    return error_response(
        503,
        "temporarily_unavailable",
        "The database is unavailable; retry shortly.",
        [("Retry-After", str(RETRY_AFTER_SECONDS))],
    )


def unexpected_error(exc: Exception) -> Response:
    log.exception("unhandled error")
    return error_response(500, "server_error", "The server failed to handle the request.")


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    if isinstance(exc, MethodNotAllowed):
        return method_not_allowed(", ".join(exc.valid_methods or ()))
    if isinstance(exc, RequestEntityTooLarge):
        return body_too_large()
    if status == 404:
        return error_response(404, "not_found", "There is no endpoint at this path.")
    if status < 500:
        return error_response(status, "invalid_request", "The request is malformed.")
    return unexpected_error(exc)
