"""The admin API's part of ``/openapi.json``: ``/admin/v1/``, its objects, its errors and its
bearer-token security scheme.

Described, like served, unless ``AUTHSERVER_ADMIN_API=off``: :mod:`authserver.http.openapi`
adds these paths and components to the public description only when the API is on. The
request-body schemas are the very ones the API checks requests against
(:mod:`authserver.http.admin_schemas`), so the description cannot drift from the checks; the
objects are those the CLI's ``--json`` prints. Errors are RFC 9457 problem details.
"""

from __future__ import annotations

from authserver.config import MAX_BODY_BYTES, SUPPORTED_ALGS
from authserver.http import admin_schemas, routes
from authserver.http.openapi_parts import (
    JSON,
    MAYBE_RETRY_AFTER,
    NO_STORE,
    STRING,
    STRINGS,
    Header,
    JsonObject,
    header_refs,
    json_response,
    ref,
    string_header,
)
from authserver.services.client_fields import AUTH_METHODS as AUTH_METHODS_REGISTERED

PROBLEM = "application/problem+json"
LOCATION: Header = ("Location", "Location")
BEARER_CHALLENGE: Header = ("WWW-Authenticate", "BearerChallenge")
_TIME = {
    "type": "string",
    "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$",
    "description": "ISO 8601, UTC, to the second.",
}
_MAYBE_TIME = {**_TIME, "type": ["string", "null"]}
_COUNT = {"type": ["integer", "null"], "minimum": 1}
_CLIENT_PROPERTIES: JsonObject = {
    "client_id": STRING,
    "name": STRING,
    "scope": STRING,
    "audiences": STRINGS,
    "token_ttl": _COUNT,
    "enabled": {"type": "boolean"},
    "created_at": _TIME,
    "last_used_at": _MAYBE_TIME,
    "token_endpoint_auth_method": {"enum": list(AUTH_METHODS_REGISTERED)},
    "max_tokens_per_hour": _COUNT,
    "jwks_uri": {"type": ["string", "null"], "description": "private_key_jwt clients only."},
    "jwks": {"type": ["object", "null"], "description": "private_key_jwt clients only."},
}
_CLIENT_REQUIRED = [name for name in _CLIENT_PROPERTIES if name not in ("jwks_uri", "jwks")]

ADMIN_SCHEMAS: JsonObject = {
    "Problem": {
        "type": "object",
        "description": "RFC 9457 problem details; `type` is `about:blank`, so `title` is the "
        "status code's reason phrase and `detail` says what to fix.",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": STRING,
            "title": STRING,
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": STRING,
        },
    },
    "Client": {
        "type": "object",
        "description": "The client object, as `authserver clients show --json` prints it; "
        "never a secret or a hash.",
        "required": _CLIENT_REQUIRED,
        "properties": _CLIENT_PROPERTIES,
        "additionalProperties": False,
    },
    "ClientWithSecret": {
        "type": "object",
        "description": "The client object and its new secret, shown this once (a "
        "private_key_jwt client has none).",
        "required": _CLIENT_REQUIRED,
        "properties": {**_CLIENT_PROPERTIES, "client_secret": STRING},
        "additionalProperties": False,
    },
    "ClientList": {"type": "array", "items": ref("schemas", "Client")},
    "SigningKey": {
        "type": "object",
        "description": "A published signing key, as `authserver keys list --json` prints it.",
        "required": ["kid", "alg", "state", "created_at", "activates_at", "retires_at"],
        "properties": {
            "kid": STRING,
            "alg": {"enum": list(SUPPORTED_ALGS)},
            "state": {"enum": ["next", "active", "retired"]},
            "created_at": _TIME,
            "activates_at": _TIME,
            "retires_at": _MAYBE_TIME,
        },
        "additionalProperties": False,
    },
    "SigningKeyList": {"type": "array", "items": ref("schemas", "SigningKey")},
    "KeyRevocation": {
        "type": "object",
        "required": ["kid", "signing_kid"],
        "properties": {
            "kid": {**STRING, "description": "The revoked key."},
            "signing_kid": {
                "type": ["string", "null"],
                "description": "The key that signs now.",
            },
        },
        "additionalProperties": False,
    },
    "Trust": {
        "type": "object",
        "description": "A workload identity trust, as `authserver trust show --json` prints it.",
        "required": [
            "trust_id",
            "client_id",
            "issuer",
            "subject",
            "audience",
            "jwks_uri",
            "allow_reuse",
            "max_lifetime",
            "created_at",
        ],
        "properties": {
            "trust_id": STRING,
            "client_id": STRING,
            "issuer": STRING,
            "subject": STRING,
            "audience": STRING,
            "jwks_uri": {"type": ["string", "null"]},
            "allow_reuse": {"type": "boolean"},
            "max_lifetime": {"type": "integer", "minimum": 1},
            "created_at": _TIME,
        },
        "additionalProperties": False,
    },
    "TrustList": {"type": "array", "items": ref("schemas", "Trust")},
    "ClientCreate": admin_schemas.CLIENT_CREATE,
    "ClientUpdate": admin_schemas.CLIENT_UPDATE,
    "SecretRotation": admin_schemas.SECRET_ROTATION,
    "KeyRotation": admin_schemas.KEY_ROTATION,
    "TrustCreate": admin_schemas.TRUST_CREATE,
}

ADMIN_HEADERS: JsonObject = {
    "BearerChallenge": string_header(
        'RFC 6750 §3: `Bearer realm="authserver"`, with `error="invalid_token"` when a '
        'token was sent, or `error="insufficient_scope"` and the scope needed.',
        {"type": "string", "pattern": "^Bearer realm="},
    ),
    "Location": string_header("The new object's path.", STRING),
}

ADMIN_SECURITY_SCHEMES: JsonObject = {
    "adminToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An access token of this server (POST /oauth2/token, client_credentials) "
        "whose `scope` holds `authserver:admin` and whose `aud` holds the issuer identifier: "
        "issued to a client registered with that scope and no audiences (or with the issuer "
        "among them). Checked like any resource server checks it, and also not revoked and "
        "its client still enabled.",
    }
}


def _problem(description: str, *headers: Header, also_oauth: bool = False) -> JsonObject:
    content: JsonObject = {PROBLEM: {"schema": ref("schemas", "Problem")}}
    if also_oauth:
        content[JSON] = {"schema": ref("schemas", "OAuthError")}
    return {
        "description": description,
        "headers": header_refs(NO_STORE, *headers),
        "content": content,
    }


_ADMIN_ERRORS: JsonObject = {
    "401": _problem(
        "No access token, or one that is not accepted: not ours, expired, revoked, "
        "its `aud` without the issuer, or its client disabled or deleted.",
        BEARER_CHALLENGE,
    ),
    "403": _problem("The access token lacks the `authserver:admin` scope.", BEARER_CHALLENGE),
    "503": _problem(
        "The database or the signing-key store cannot be used now; retry shortly.",
        MAYBE_RETRY_AFTER,
    ),
}
_NOT_FOUND = {"404": _problem("No such client, key or trust.")}
_CONFLICT = {"409": _problem("A conflicting change was made at the same moment; retry.")}
_BODY_ERRORS: JsonObject = {
    "400": _problem("The body is not JSON (or not UTF-8)."),
    "413": _problem(
        f"The body is larger than {MAX_BODY_BYTES // 1024} KiB. A server front that refuses "
        "it before reading it answers in the OAuth error shape.",
        also_oauth=True,
    ),
    "415": _problem("The body is not `application/json`."),
    "422": _problem(
        "The body does not match its schema, or a field is refused (the detail says which "
        "and why, in the CLI's words)."
    ),
}


def _admin_json(description: str, schema: str, *headers: Header) -> JsonObject:
    return json_response(description, ref("schemas", schema), NO_STORE, *headers)


def _admin_operation(
    operation_id: str,
    summary: str,
    responses: JsonObject,
    *,
    path_parameter: str | None = None,
    body: str | None = None,
    body_required: bool = True,
    description: str | None = None,
) -> JsonObject:
    operation: JsonObject = {
        "operationId": operation_id,
        "tags": ["admin"],
        "summary": summary,
        "security": [{"adminToken": []}],
        "responses": {**responses, **_ADMIN_ERRORS},
    }
    if description:
        operation["description"] = description
    if path_parameter is not None:
        operation["parameters"] = [
            {"name": path_parameter, "in": "path", "required": True, "schema": STRING}
        ]
        operation["responses"].update(_NOT_FOUND)
    if body is not None:
        operation["requestBody"] = {
            "required": body_required,
            "content": {JSON: {"schema": ref("schemas", body)}},
        }
        operation["responses"].update(_BODY_ERRORS)
    return operation


_DELETED = {"204": {"description": "Deleted.", "headers": header_refs(NO_STORE)}}

ADMIN_PATHS: JsonObject = {
    routes.ADMIN_CLIENTS.path: {
        "get": _admin_operation(
            "adminListClients",
            "List the clients",
            {"200": _admin_json("Every client.", "ClientList")},
        ),
        "post": _admin_operation(
            "adminCreateClient",
            "Register a client",
            {"201": _admin_json("The client, with its secret.", "ClientWithSecret", LOCATION)},
            body="ClientCreate",
            description="As `authserver clients create`; audited as `client.created`.",
        ),
    },
    routes.ADMIN_CLIENT.path: {
        "get": _admin_operation(
            "adminGetClient",
            "Show a client",
            {"200": _admin_json("The client.", "Client")},
            path_parameter="client_id",
        ),
        "patch": _admin_operation(
            "adminUpdateClient",
            "Change a client",
            {"200": _admin_json("The changed client.", "Client"), **_CONFLICT},
            path_parameter="client_id",
            body="ClientUpdate",
            description="As `authserver clients update` (and `enable`/`disable` through "
            "`enabled`); audited as `client.updated`, `client.enabled` or `client.disabled`.",
        ),
        "delete": _admin_operation(
            "adminDeleteClient",
            "Delete a client, its secrets and its trusts",
            {**_DELETED, **_CONFLICT},
            path_parameter="client_id",
            description="Audited as `client.deleted`.",
        ),
    },
    routes.ADMIN_CLIENT_SECRET.path: {
        "post": _admin_operation(
            "adminRotateClientSecret",
            "Give a secret client a new secret",
            {"200": _admin_json("The client, with its new secret.", "ClientWithSecret")},
            path_parameter="client_id",
            body="SecretRotation",
            body_required=False,
            description="As `authserver clients rotate-secret`; the old secret works `grace` "
            "seconds more. A private_key_jwt client has no secret: 422. Audited as "
            "`client.secret_rotated`.",
        ),
    },
    routes.ADMIN_KEYS.path: {
        "get": _admin_operation(
            "adminListKeys",
            "List the published signing keys",
            {"200": _admin_json("The keys with their states.", "SigningKeyList")},
        ),
    },
    routes.ADMIN_KEY_ROTATION.path: {
        "post": _admin_operation(
            "adminRotateKey",
            "Stage a new signing key",
            {"200": _admin_json("The new key.", "SigningKey")},
            body="KeyRotation",
            body_required=False,
            description="As `authserver keys rotate`: published at once, signing after "
            "AUTHSERVER_KEY_PROPAGATION_DELAY (or at once with `now`). Audited as "
            "`key.rotated`.",
        ),
    },
    routes.ADMIN_KEY_REVOCATION.path: {
        "post": _admin_operation(
            "adminRevokeKey",
            "Emergency: drop a key from signing and from the JWKS at once",
            {"200": _admin_json("The revoked key and the key that signs now.", "KeyRevocation")},
            path_parameter="kid",
            description="As `authserver keys revoke`; audited as `key.revoked`.",
        ),
    },
    routes.ADMIN_TRUSTS.path: {
        "get": _admin_operation(
            "adminListTrusts",
            "List the workload identity trusts",
            {"200": _admin_json("Every trust.", "TrustList")},
        ),
        "post": _admin_operation(
            "adminAddTrust",
            "Trust a platform's tokens for a client",
            {"201": _admin_json("The trust.", "Trust", LOCATION), **_CONFLICT},
            body="TrustCreate",
            description="As `authserver trust add`; an unknown client or an existing trust "
            "for the same issuer, subject and audience: 422. Audited as `trust.added`.",
        ),
    },
    routes.ADMIN_TRUST.path: {
        "get": _admin_operation(
            "adminGetTrust",
            "Show a trust",
            {"200": _admin_json("The trust.", "Trust")},
            path_parameter="trust_id",
        ),
        "delete": _admin_operation(
            "adminDeleteTrust",
            "Delete a trust",
            {**_DELETED, **_CONFLICT},
            path_parameter="trust_id",
            description="Audited as `trust.deleted`.",
        ),
    },
}
