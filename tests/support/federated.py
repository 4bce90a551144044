"""The server side of the federation client tests: a trust added with the real CLI, and a
protected API that verifies each bearer token against the server's JWKS the way a resource
server would, keeping the claims it saw (``act`` among them)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from werkzeug.wrappers import Request, Response

from tests.support.cli import ok_json, run_authserver
from tests.support.served import ServedAuthServer
from tests.support.tokens import verify_access_token


def add_trust(
    auth: ServedAuthServer, client_id: str, issuer: str, subject: str, audience: str, *extra: str
) -> dict[str, Any]:
    """``authserver trust add --json`` against the served server's database."""
    trust: dict[str, Any] = ok_json(
        run_authserver(
            auth.server.env, "trust", "add", "--json", "--client", client_id,
            "--issuer", issuer, "--subject", subject, "--audience", audience, *extra,
        )
    )  # fmt: skip
    return trust


def verified(
    auth: ServedAuthServer, access_token: str, client_id: str, scope: str = "api"
) -> dict[str, Any]:
    """The access token's claims, its signature checked with the key its ``kid`` names in the
    served JWKS (PyJWT), and it ``at+jwt``, RS256, the server's, ``client_id``'s (``sub`` and
    ``client_id``) with ``scope``."""
    return verify_access_token(
        f"{auth.issuer}/.well-known/jwks.json", access_token, client_id=client_id,
        audience=auth.issuer, issuer=auth.issuer, scope=scope,
    )  # fmt: skip


@dataclass
class VerifyingAPI:
    """GET anything: 200 with the token's ``client_id`` and ``act`` when the bearer token
    verifies as ``client_id``'s, else 401. ``seen`` keeps every verified token's claims."""

    auth: ServedAuthServer
    client_id: str
    scope: str = "api"
    #: Where it is served, once it is.
    url: str = ""
    seen: list[dict[str, Any]] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        header = request.headers.get("Authorization", "")
        try:
            token = header.removeprefix("Bearer ")
            claims = verified(self.auth, token, self.client_id, self.scope)
        except Exception:  # any failure to verify is a 401, as at a real API
            response = Response('{"error": "invalid_token"}', 401, mimetype="application/json")
        else:
            with self._lock:
                self.seen.append(claims)
                self.tokens.append(token)
            body = {"client_id": claims["client_id"], "act": claims.get("act")}
            response = Response(json.dumps(body), mimetype="application/json")
        return response(environ, start_response)
