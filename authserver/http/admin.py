"""The admin HTTP API under ``/admin/v1/``: what ``authserver clients|keys|trust`` do, over HTTP.

The views call the same service functions as the CLI commands (``services/registry.py``,
``services/keys.py``, ``services/trusts.py``), answer the same objects
(``services/formatting.py``) and write the same audit events, with the acting admin client as
``actor``. Each request is one transaction: the services only flush, the view commits.

Every ``/admin/`` path is dispatched here, by one Flask rule, against the admin part of the
route table (:data:`~authserver.http.routes.ADMIN_ROUTES`): so unknown paths (404) and methods
(405) get problem details like every other failure, not the OAuth endpoints' error shape.
None of this is on the token path: the router in front of Flask answers the OAuth endpoints
before Flask, or this module, sees a request.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, NoReturn

from flask import Flask, Response, request
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge
from werkzeug.routing import Map, PathConverter, Rule

from authserver.audit import audit_event
from authserver.config import MAX_BODY_BYTES, Settings
from authserver.errors import (
    ClientNotFound,
    InvalidClientData,
    KeyNotFound,
    KeyStoreError,
    TrustNotFound,
)
from authserver.extensions import db
from authserver.http import admin_schemas, routes
from authserver.http.admin_auth import AdminAuthorizer, AdminCaller
from authserver.http.admin_schemas import BodyInvalid, JsonObject, checked_body
from authserver.http.problems import Problem
from authserver.http.request_ids import current_request_id
from authserver.oauth.server import AuthorizationServer
from authserver.services import keys as key_service
from authserver.services import registry, trusts
from authserver.services.client_fields import SECRET_AUTH_METHOD
from authserver.services.formatting import client_view, trust_view
from authserver.services.key_retention import longest_token_ttl

log = logging.getLogger(__name__)

PREFIX = "/admin"
#: Methods the catch-all rule takes, so that this module answers 405 for them itself.
ANY_METHOD = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")
JSON_TYPES = ("application/json", "application/merge-patch+json")

Operation = Callable[["AdminApi", AdminCaller, dict[str, str]], Response]


def init_app(app: Flask, settings: Settings, server: AuthorizationServer) -> None:
    """Serve the admin API on ``app`` (the caller leaves it out with AUTHSERVER_ADMIN_API=off)."""
    api = AdminApi(settings, AdminAuthorizer(server))
    app.url_map.converters["admin_rest"] = _Rest
    for rule in (PREFIX, f"{PREFIX}/", f"{PREFIX}/<admin_rest:rest>"):
        app.add_url_rule(
            rule,
            "admin_api",
            api.dispatch,
            methods=list(ANY_METHOD),
            provide_automatic_options=False,
        )


class _Rest(PathConverter):
    """The rest of the path, whatever it holds: werkzeug's ``path`` stops at a newline
    (``%0A``), which would leave such paths to the OAuth-shaped 404."""

    regex = r"(?s:[^/].*?)"


def _flask_rule(path: str) -> str:
    """``/clients/{client_id}`` (OpenAPI's template) as werkzeug writes it."""
    return path.replace("{", "<").replace("}", ">")


@functools.cache
def _admin_map() -> Map:
    """The admin routes, compiled once per process: werkzeug compiles each rule into Python
    code (~25 ms for these), and every app of the process routes by the same table."""
    return Map(
        [
            Rule(_flask_rule(route.path), endpoint=route.handler, methods=route.methods)
            for route in routes.ADMIN_ROUTES
        ],
        merge_slashes=False,
    )


class AdminApi:
    def __init__(self, settings: Settings, authorizer: AdminAuthorizer) -> None:
        self._settings = settings
        self._authorizer = authorizer
        self._map = _admin_map()
        self._operations: dict[tuple[str, str], Operation] = {
            (routes.ADMIN_CLIENTS.handler, "GET"): AdminApi.list_clients,
            (routes.ADMIN_CLIENTS.handler, "POST"): AdminApi.create_client,
            (routes.ADMIN_CLIENT.handler, "GET"): AdminApi.show_client,
            (routes.ADMIN_CLIENT.handler, "PATCH"): AdminApi.update_client,
            (routes.ADMIN_CLIENT.handler, "DELETE"): AdminApi.delete_client,
            (routes.ADMIN_CLIENT_SECRET.handler, "POST"): AdminApi.rotate_secret,
            (routes.ADMIN_KEYS.handler, "GET"): AdminApi.list_keys,
            (routes.ADMIN_KEY_ROTATION.handler, "POST"): AdminApi.rotate_key,
            (routes.ADMIN_KEY_REVOCATION.handler, "POST"): AdminApi.revoke_key,
            (routes.ADMIN_TRUSTS.handler, "GET"): AdminApi.list_trusts,
            (routes.ADMIN_TRUSTS.handler, "POST"): AdminApi.add_trust,
            (routes.ADMIN_TRUST.handler, "GET"): AdminApi.show_trust,
            (routes.ADMIN_TRUST.handler, "DELETE"): AdminApi.delete_trust,
        }
        unbound = {
            (route.handler, method) for route in routes.ADMIN_ROUTES for method in route.methods
        } - self._operations.keys()
        if unbound:
            raise RuntimeError(f"admin routes without an operation: {sorted(unbound)}")

    def dispatch(self, rest: str = "") -> Response:
        try:
            operation, arguments = self._match()
            caller = self._authorizer.caller(request.headers.get("Authorization"))
            if not all(map(_storable, arguments.values())):
                raise _not_found("No such client, key or trust.")
            return operation(self, caller, arguments)
        except Problem as problem:
            _rollback()
            return problem.response()
        except SQLAlchemyError as exc:
            _rollback()
            log.error("admin API: database error: %s", _first_line(exc))
            return Problem(
                503,
                "The database is unavailable; retry shortly.",
                headers=[("Retry-After", "1")],
            ).response()

    def _match(self) -> tuple[Operation, dict[str, str]]:
        adapter = self._map.bind("localhost", path_info=request.path, url_scheme="http")
        method = "GET" if request.method == "HEAD" else request.method
        try:
            handler, arguments = adapter.match(request.path, method=method)
        except MethodNotAllowed as exc:
            allowed = ", ".join(sorted(exc.valid_methods or ()))
            raise Problem(
                405, f"This path accepts {allowed} only.", headers=[("Allow", allowed)]
            ) from None
        except HTTPException:  # NotFound, or a redirect werkzeug would suggest
            raise _not_found("There is no admin endpoint at this path.") from None
        return self._operations[(str(handler), method)], {k: str(v) for k, v in arguments.items()}

    # -- clients -----------------------------------------------------------------------

    def list_clients(self, caller: AdminCaller, _: dict[str, str]) -> Response:
        return _json(200, [client_view(c) for c in registry.list_clients(db.session())])

    def show_client(self, caller: AdminCaller, path: dict[str, str]) -> Response:
        with _domain_errors():
            client = registry.get_client(db.session(), path["client_id"])
        return _json(200, client_view(client))

    def create_client(self, caller: AdminCaller, _: dict[str, str]) -> Response:
        body = _body(admin_schemas.CLIENT_CREATE)
        with _domain_errors():
            created = registry.create_client(
                db.session(),
                name=body["name"],
                scope=body["scope"],
                audiences=body.get("audiences", []),
                token_ttl=body.get("token_ttl"),
                secret_expires_in=body.get("expires_in"),
                auth_method=body.get("token_endpoint_auth_method", SECRET_AUTH_METHOD),
                jwks=body.get("jwks"),
                jwks_uri=body.get("jwks_uri"),
                max_tokens_per_hour=body.get("max_tokens_per_hour"),
            )
            db.session.commit()
        client_id = created.client.client_id
        _audit(caller, "client.created", client_id)
        view = client_view(created.client)
        if created.client_secret is not None:
            view["client_secret"] = created.client_secret
        location = routes.ADMIN_CLIENT.path.replace("{client_id}", client_id)
        return _json(201, view, [("Location", location)])

    def update_client(self, caller: AdminCaller, path: dict[str, str]) -> Response:
        body = _body(admin_schemas.CLIENT_UPDATE)
        client_id = path["client_id"]
        changes = {name: value for name, value in body.items() if name != "enabled"}
        with _domain_errors():
            client = registry.update_client(
                db.session(),
                client_id,
                name=changes.get("name"),
                scope=changes.get("scope"),
                audiences=changes.get("audiences"),
                token_ttl=changes.get("token_ttl", registry.KEEP),
                jwks=changes.get("jwks"),
                jwks_uri=changes.get("jwks_uri"),
                max_tokens_per_hour=changes.get("max_tokens_per_hour", registry.KEEP),
            )
            if "enabled" in body:
                client = registry.set_enabled(db.session(), client_id, body["enabled"])
            db.session.commit()
        if changes:
            _audit(caller, "client.updated", client_id)
        if "enabled" in body:
            _audit(caller, "client.enabled" if body["enabled"] else "client.disabled", client_id)
        return _json(200, client_view(client))

    def delete_client(self, caller: AdminCaller, path: dict[str, str]) -> Response:
        client_id = path["client_id"]
        with _domain_errors():
            registry.delete_client(db.session(), client_id)
            db.session.commit()
        _audit(caller, "client.deleted", client_id)
        return _no_content()

    def rotate_secret(self, caller: AdminCaller, path: dict[str, str]) -> Response:
        body = _body(admin_schemas.SECRET_ROTATION, optional=True)
        client_id = path["client_id"]
        grace = body.get("grace", 0)
        with _domain_errors():
            rotated = registry.rotate_secret(
                db.session(), client_id, grace=grace, expires_in=body.get("expires_in")
            )
            db.session.commit()
        _audit(caller, "client.secret_rotated", client_id, grace=grace)
        return _json(200, {**client_view(rotated.client), "client_secret": rotated.client_secret})

    # -- signing keys ------------------------------------------------------------------

    def _retention(self) -> timedelta:
        """How long retired keys stay published, as ``authserver keys`` works it out."""
        settings = self._settings
        longest = longest_token_ttl(db.session(), settings.access_token_ttl)
        return key_service.retention(settings, longest)

    def list_keys(self, caller: AdminCaller, _: dict[str, str]) -> Response:
        with _domain_errors():
            statuses = key_service.key_statuses(self._settings, self._retention())
        return _json(200, [key_service.key_view(s) for s in statuses])

    def rotate_key(self, caller: AdminCaller, _: dict[str, str]) -> Response:
        body = _body(admin_schemas.KEY_ROTATION, optional=True)
        immediate = body.get("now", False)
        retention = self._retention()
        with _domain_errors():
            key = key_service.rotate_key(self._settings, retention, immediate=immediate)
            statuses = key_service.statuses_of(self._settings, {key.kid}, retention)
        _audit(caller, "key.rotated", kid=key.kid, immediate=immediate)
        return _json(200, key_service.key_view(statuses[0]))

    def revoke_key(self, caller: AdminCaller, path: dict[str, str]) -> Response:
        kid = path["kid"]
        with _domain_errors():
            signer = key_service.revoke_key(self._settings, kid, self._retention())
        signing_kid = signer.kid if signer else None
        _audit(caller, "key.revoked", kid=kid, signing_kid=signing_kid)
        return _json(200, {"kid": kid, "signing_kid": signing_kid})

    # -- workload identity trusts --------------------------------------------------------

    def list_trusts(self, caller: AdminCaller, _: dict[str, str]) -> Response:
        return _json(200, [trust_view(t) for t in trusts.list_trusts(db.session())])

    def show_trust(self, caller: AdminCaller, path: dict[str, str]) -> Response:
        with _domain_errors():
            trust = trusts.get_trust(db.session(), path["trust_id"])
        return _json(200, trust_view(trust))

    def add_trust(self, caller: AdminCaller, _: dict[str, str]) -> Response:
        body = _body(admin_schemas.TRUST_CREATE)
        with _domain_errors(unknown_client=422):
            if not _storable(body["client_id"]):
                raise ClientNotFound(body["client_id"])
            trust = trusts.add_trust(
                db.session(),
                client_id=body["client_id"],
                issuer=body["issuer"],
                subject=body["subject"],
                audience=body["audience"],
                jwks_uri=body.get("jwks_uri"),
                allow_reuse=body.get("allow_reuse", False),
                max_lifetime=body.get("max_lifetime", trusts.DEFAULT_MAX_LIFETIME),
            )
            db.session.commit()
        _audit(caller, "trust.added", trust.client_id, trust_id=trust.trust_id)
        location = routes.ADMIN_TRUST.path.replace("{trust_id}", trust.trust_id)
        return _json(201, trust_view(trust), [("Location", location)])

    def delete_trust(self, caller: AdminCaller, path: dict[str, str]) -> Response:
        trust_id = path["trust_id"]
        with _domain_errors():
            client_id = trusts.get_trust(db.session(), trust_id).client_id
            trusts.delete_trust(db.session(), trust_id)
            db.session.commit()
        _audit(caller, "trust.deleted", client_id, trust_id=trust_id)
        return _no_content()


@contextmanager
def _domain_errors(*, unknown_client: int = 404) -> Iterator[None]:
    """Domain errors from the services as problems: unknown ids 404, refused input 422, a
    conflicting write 409, a key store that cannot be used 503 (the details in the log).
    ``unknown_client``: 422 where the client is named in the body, not the path."""
    try:
        yield
    except ClientNotFound as exc:
        raise Problem(unknown_client, _sentence(exc)) from None
    except (TrustNotFound, KeyNotFound) as exc:
        raise _not_found(_sentence(exc)) from None
    except InvalidClientData as exc:
        raise Problem(422, _sentence(exc)) from None
    except IntegrityError:
        raise Problem(409, "The change conflicts with another one made at the same time.") from None
    except (KeyStoreError, OSError) as exc:
        log.error("admin API: signing-key store: %s", exc)
        raise Problem(
            503, "The signing-key store cannot be used now (see the server log)."
        ) from None


def _storable(text: str) -> bool:
    """Whether ``text`` can name a stored object at all; no id holds anything else. PostgreSQL
    refuses a NUL in text with an error, which would be answered as a database outage (503),
    and a lone surrogate (``"\\ud800"`` is valid JSON) cannot even be encoded for a query."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _sentence(exc: Exception) -> str:
    text = str(exc)
    return f"{text[:1].upper()}{text[1:]}."


def _not_found(detail: str) -> Problem:
    return Problem(404, detail)


def _body(schema: JsonObject, *, optional: bool = False) -> JsonObject:
    """The request's JSON body checked against ``schema``: 413 over the size limit, 415 when
    not JSON, 400 when it does not parse, 422 when it does not match. ``optional``: an empty
    body is ``{}``."""
    try:
        raw = request.get_data(cache=True)
    except RequestEntityTooLarge:
        raise Problem(
            413, f"The request body is larger than {MAX_BODY_BYTES // 1024} KiB."
        ) from None
    if not raw and optional:
        return {}
    if request.mimetype not in JSON_TYPES:
        raise Problem(415, "The request body must be JSON (Content-Type: application/json).")
    try:
        document = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise Problem(400, "The request body is not valid UTF-8 JSON.") from None
    try:
        return checked_body(document, schema)
    except BodyInvalid as exc:
        raise Problem(422, _sentence(exc)) from None


def _no_constant(name: str) -> NoReturn:
    """``NaN`` and ``Infinity`` are not JSON (RFC 8259 §6), whatever Python's parser allows."""
    raise ValueError(name)


def _json(status: int, document: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    response = Response(
        json.dumps(document, separators=(",", ":")), status=status, mimetype="application/json"
    )
    response.headers["Cache-Control"] = "no-store"
    for name, value in headers or ():
        response.headers[name] = value
    return response


def _no_content() -> Response:
    response = Response(status=204)
    response.headers["Cache-Control"] = "no-store"
    return response


def _audit(caller: AdminCaller, event: str, client_id: str | None = None, **details: Any) -> None:
    """The CLI's audit event for the change, with the admin client that made it."""
    audit_event(
        event,
        outcome="success",
        client_id=client_id,
        request_id=current_request_id(),
        actor=caller.client_id,
        **details,
    )


def _rollback() -> None:
    try:
        db.session.rollback()
    except SQLAlchemyError as exc:
        log.error("admin API: rollback failed: %s", _first_line(exc))


def _first_line(exc: Exception) -> str:
    return (str(exc) or type(exc).__name__).splitlines()[0]
