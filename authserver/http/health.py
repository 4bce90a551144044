"""Liveness and readiness probes for orchestrators and load balancers."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Response
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from authserver.extensions import db
from authserver.http.responses import NO_STORE, json_response
from authserver.security.keyring import KeyRingLoader


def liveness() -> Response:
    """The process answers; says nothing about its dependencies."""
    return json_response(200, {"status": "ok"}, NO_STORE)


class Readiness:
    """Ready to issue tokens: the database answers and a signing key is loaded.

    Problems are short generic phrases, never paths or error texts: the probe is public.
    """

    def __init__(self, keys: KeyRingLoader) -> None:
        self._keys = keys

    def __call__(self) -> Response:
        problems = []
        try:
            db.session.execute(text("SELECT 1"))
        except SQLAlchemyError:
            db.session.rollback()
            problems.append("database unreachable")
        if self._keys.current().signing_key(datetime.now(UTC)) is None:
            problems.append("no signing key loaded")
        key_files = _unusable_key_files(len(self._keys.problems))
        if problems:
            body = {"status": "unavailable", "problems": problems + key_files}
            return json_response(503, body, NO_STORE)
        # Unusable spare key files are worth an alert, not worth taking a serving instance out.
        return json_response(200, {"status": "ready", "warnings": key_files}, NO_STORE)


def _unusable_key_files(count: int) -> list[str]:
    """A count, not the files: anyone may ask ``/readyz``, and paths tell an attacker where
    the keys live. The log names each file (``KeyRingLoader``)."""
    if count == 0:
        return []
    if count == 1:
        return ["a signing key file could not be loaded (the server log names it)"]
    return [f"{count} signing key files could not be loaded (the server log names them)"]
