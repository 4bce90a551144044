"""Liveness and readiness probes for orchestrators and load balancers."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Response
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from authserver.extensions import db
from authserver.http.responses import NO_STORE, json_response
from authserver.security.keyring import KeyRingLoader
from authserver.services.database_guard import DatabaseGuard, in_session


def liveness() -> Response:
    """The process answers; says nothing about its dependencies."""
    return json_response(200, {"status": "ok"}, NO_STORE)


class Readiness:
    """Ready to issue tokens: a signing key is loaded, and the database answers or has been
    unreachable for less than the outage grace (the worker serves the clients it has seen).

    ``"database"`` says which (``"ok"`` or ``"unreachable"``), so a load balancer keeps every
    instance through a short outage while monitoring still sees it. The database is asked
    through the guard: a database that hangs delays the probe by its timeout at most, and
    not at all while the circuit is open. Problems are short generic phrases, never paths
    or error texts: the probe is public.
    """

    def __init__(self, keys: KeyRingLoader, database: DatabaseGuard, outage_grace: int) -> None:
        self._keys = keys
        self._database = database
        self._outage_grace = outage_grace

    def __call__(self) -> Response:
        problems = []
        reachable = self._database_answers()
        if not reachable and (self._database.unreachable_for or 0.0) >= self._outage_grace:
            problems.append("database unreachable")
        if self._keys.current().signing_key(datetime.now(UTC)) is None:
            problems.append("no signing key loaded")
        key_files = _unusable_key_files(len(self._keys.problems))
        database = "ok" if reachable else "unreachable"
        if problems:
            body = {"status": "unavailable", "database": database, "problems": problems + key_files}
            return json_response(503, body, NO_STORE)
        # Unusable spare key files are worth an alert, not worth taking a serving instance out.
        body = {"status": "ready", "database": database, "warnings": key_files}
        return json_response(200, body, NO_STORE)

    def _database_answers(self) -> bool:
        try:
            self._database.call(in_session(db.engine, _select_one))
        except SQLAlchemyError:
            return False
        return True


def _select_one(session: Session) -> None:
    session.execute(text("SELECT 1"))


def _unusable_key_files(count: int) -> list[str]:
    """A count, not the files: anyone may ask ``/readyz``, and paths tell an attacker where
    the keys live. The log names each file (``KeyRingLoader``)."""
    if count == 0:
        return []
    if count == 1:
        return ["a signing key file could not be loaded (the server log names it)"]
    return [f"{count} signing key files could not be loaded (the server log names them)"]
