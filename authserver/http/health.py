"""Liveness and readiness probes for orchestrators and load balancers."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, Response
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from authserver.extensions import db
from authserver.http.responses import NO_STORE, json_response
from authserver.http.runtime import Runtime

blueprint = Blueprint("health", __name__)


@blueprint.route("/healthz", methods=["GET"])
def healthz() -> Response:
    """The process answers; says nothing about its dependencies."""
    return json_response(200, {"status": "ok"}, NO_STORE)


@blueprint.route("/readyz", methods=["GET"])
def readyz() -> Response:
    """Ready to issue tokens: the database answers and a signing key is loaded."""
    problems = []
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        db.session.rollback()
        problems.append("database unreachable")
    runtime = Runtime.current()
    if runtime.keys.current().signing_key(datetime.now(UTC)) is None:
        problems.append("no signing key loaded")
    if problems:
        body = {"status": "unavailable", "problems": problems + runtime.keys.problems}
        return json_response(503, body, NO_STORE)
    # Unusable spare key files are worth an alert, not worth taking a serving instance out.
    return json_response(200, {"status": "ready", "warnings": runtime.keys.problems}, NO_STORE)
