"""``GET /openapi.json``: an OpenAPI 3.1 description of every public HTTP endpoint.

Why: client teams and API gateways generate code and validate traffic from a machine-readable
description, and the test suite fuzzes the live server against this very document
(schemathesis), so it is kept to what the server actually does — every status code, header
and body shape — rather than what it might do. It depends on no setting (there is no
``servers`` entry: the issuer is per deployment and callers already know the base URL), so it
is built once at import and served as ready bytes.

Client authentication at the OAuth endpoints is ``client_secret_basic`` (the ``basic``
scheme), ``client_secret_post`` or ``private_key_jwt``. OpenAPI has no security-scheme type for
credentials in a form body, so the last two appear as the empty security requirement plus
their form fields (``client_id``/``client_secret``, ``client_assertion_type``/
``client_assertion``).

The admin API (``/admin/v1/``) is described too unless ``AUTHSERVER_ADMIN_API=off``, when it is
not served either: so there are two documents, each built once, assembled here from the public
endpoints below and the admin API's part (:mod:`authserver.http.openapi_admin`).
"""

from __future__ import annotations

import json
from importlib import metadata

from flask import Response

from authserver.config import MAX_BODY_BYTES
from authserver.http import routes
from authserver.http.openapi_admin import (
    ADMIN_HEADERS,
    ADMIN_PATHS,
    ADMIN_SCHEMAS,
    ADMIN_SECURITY_SCHEMES,
)
from authserver.http.openapi_parts import (
    ALLOW,
    CHALLENGE,
    ETAG,
    JSON,
    JWKS_CACHE,
    MAYBE_RETRY_AFTER,
    NO_STORE,
    PRAGMA,
    PUBLIC_CACHE,
    RETRY_AFTER,
    STRING,
    STRINGS,
    Header,
    JsonObject,
    header_refs,
    json_response,
    ref,
    string_header,
)
from authserver.oauth.clients import AUTH_METHODS, GRANT_TYPE

FORM = "application/x-www-form-urlencoded"
#: Public, rarely changing documents: the metadata and this description.
CACHE_AN_HOUR = "public, max-age=3600"


def _version() -> str:
    try:
        return metadata.version("authserver")
    except metadata.PackageNotFoundError:  # running from a bare checkout
        return "0.0.0"


def _oauth_error(description: str, *codes: str, headers: tuple[Header, ...] = ()) -> JsonObject:
    """An RFC 6749 §5.2 error response whose ``error`` is one of ``codes``."""
    schema = {
        "allOf": [
            ref("schemas", "OAuthError"),
            {"properties": {"error": {"enum": list(codes)}}},
        ]
    }
    return json_response(description, schema, NO_STORE, PRAGMA, *headers)


def _oauth_operation(
    *,
    operation_id: str,
    summary: str,
    description: str,
    request_schema: str,
    example: dict[str, str],
    success: JsonObject,
    bad_request_codes: tuple[str, ...],
) -> JsonObject:
    """A POST to an OAuth endpoint: form body, client authentication, the shared errors."""
    return {
        "post": {
            "operationId": operation_id,
            "tags": ["oauth"],
            "summary": summary,
            "description": description,
            "security": [{"basic": []}, {}],
            "requestBody": {
                "required": True,
                "content": {
                    FORM: {
                        "schema": ref("schemas", request_schema),
                        "encoding": {"resource": {"style": "form", "explode": True}},
                        "examples": {"client_secret_basic": {"value": example}},
                    }
                },
            },
            "responses": {
                "200": success,
                "400": _oauth_error(
                    "A missing, repeated or invalid parameter, a body that is not UTF-8 form "
                    "data or ended before it was complete, or two client authentication "
                    "methods at once.",
                    *bad_request_codes,
                ),
                "401": _oauth_error(
                    "No client authentication, unknown client, wrong secret, disabled client "
                    "or a malformed Basic header. The Basic challenge is sent when Basic was "
                    "used or no authentication at all.",
                    "invalid_client",
                    headers=(CHALLENGE,),
                ),
                "405": _oauth_error("Any method but POST.", "invalid_request", headers=(ALLOW,)),
                "408": _oauth_error(
                    "The body did not arrive within AUTHSERVER_REQUEST_BODY_TIMEOUT seconds; "
                    "the connection closes.",
                    "invalid_request",
                ),
                "413": _oauth_error(
                    f"The body is larger than {MAX_BODY_BYTES // 1024} KiB, with Content-Length "
                    "or chunked.",
                    "invalid_request",
                ),
                "429": _oauth_error(
                    "Too many failed client authentications for this client id or from this "
                    "address within a minute (IPv6: per /64). While an id is locked, a client "
                    "with an admin-chosen secret gets this whatever secret it sends. At the "
                    "token endpoint also: the client's quota (`max_tokens_per_hour`) is used "
                    "up for this hour.",
                    "too_many_requests",
                    headers=(RETRY_AFTER,),
                ),
                "503": _oauth_error(
                    "No signing key is loaded; or (with Retry-After) the worker is busy "
                    "checking other admin-chosen secrets, or the database is unreachable and "
                    "the answer needs it: a client this worker has not read within "
                    "AUTHSERVER_DATABASE_OUTAGE_GRACE seconds, any revocation, or an outage "
                    "older than the grace. Retry shortly.",
                    "temporarily_unavailable",
                    headers=(MAYBE_RETRY_AFTER,),
                ),
            },
        }
    }


def _jwks_operation(operation_id: str, summary: str) -> JsonObject:
    return {
        "get": {
            "operationId": operation_id,
            "tags": ["discovery"],
            "summary": summary,
            "description": "RFC 7517 JWK Set of the `next`, `active` and `retired` public "
            "signing keys. Cacheable; answers 304 when `If-None-Match` names the current ETag.",
            "parameters": [
                {
                    "name": "If-None-Match",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string"},
                }
            ],
            "responses": {
                "200": json_response("The JWK Set.", ref("schemas", "JwkSet"), JWKS_CACHE, ETAG),
                "304": {
                    "description": "The caller's cached copy is current.",
                    "headers": header_refs(JWKS_CACHE, ETAG),
                },
            },
        }
    }


def _probe(operation_id: str, summary: str, responses: JsonObject) -> JsonObject:
    return {
        "get": {
            "operationId": operation_id,
            "tags": ["operations"],
            "summary": summary,
            "responses": responses,
        }
    }


_URI = {"type": "string", "format": "uri"}
#: An empty form value counts as omitted (RFC 6749 §3.1), so "" is accepted where a URI is.
_FORM_URI = {"anyOf": [_URI, {"const": ""}]}
_AUDIENCE = {"oneOf": [STRING, {"type": "array", "items": STRING, "minItems": 2}]}
_CLIENT_CREDENTIALS_FIELDS = {
    "client_id": {
        "type": "string",
        "description": "client_secret_post; with Basic it must match the Basic client id; "
        "with a client_assertion (optional) the assertion's `sub`, or for a workload's "
        "platform token the trust's client.",
    },
    "client_secret": {
        "type": "string",
        "description": "client_secret_post only: sending it with Basic is invalid_request.",
    },
    "client_assertion_type": {
        "type": "string",
        "description": "private_key_jwt (RFC 7523 §2.2) or a workload's platform token: "
        "`urn:ietf:params:oauth:client-assertion-type:jwt-bearer`.",
    },
    "client_assertion": {
        "type": "string",
        "description": "private_key_jwt: a JWT signed with the client's registered key "
        "(RS256, PS256, ES256, EdDSA or Ed25519); `iss` = `sub` = the client id, `aud` the "
        "issuer or the endpoint's URL, `exp` at most an hour ahead, `jti` used once. "
        "Or a workload's platform token (a Kubernetes service-account token, a GitHub Actions "
        "OIDC token, a SPIFFE JWT-SVID) whose `iss` is a trusted issuer: it authenticates as "
        "the client of the trust matching its `sub` and `aud`, and the access token gets "
        "`act` {`sub`, `iss`}. Sending it with a secret is invalid_request.",
    },
}

SCHEMAS: JsonObject = {
    "OAuthError": {
        "type": "object",
        "description": "RFC 6749 §5.2 error.",
        "required": ["error", "error_description"],
        "properties": {"error": STRING, "error_description": STRING},
        "additionalProperties": False,
    },
    "TokenRequest": {
        "type": "object",
        "description": "RFC 6749 §4.4.2. Empty values count as omitted; every parameter "
        "but `resource` may appear once.",
        "required": ["grant_type"],
        "properties": {
            "grant_type": {"type": "string", "enum": [GRANT_TYPE]},
            "scope": {
                "type": "string",
                "description": "Space-delimited subset of the client's registered scopes; "
                "omitted: all of them.",
            },
            "resource": {
                "type": "array",
                "items": _FORM_URI,
                "description": "RFC 8707 target audiences, each registered for the client.",
            },
            "audience": {**_FORM_URI, "description": "One target audience; not with `resource`."},
            **_CLIENT_CREDENTIALS_FIELDS,
        },
        "not": {"required": ["resource", "audience"]},
    },
    "TokenResponse": {
        "type": "object",
        "description": "RFC 6749 §5.1; `access_token` is an RFC 9068 JWT.",
        "required": ["access_token", "token_type", "expires_in", "scope"],
        "properties": {
            "access_token": STRING,
            "token_type": {"const": "Bearer"},
            "expires_in": {"type": "integer", "minimum": 1},
            "scope": STRING,
        },
    },
    "TokenParameterRequest": {
        "type": "object",
        "description": "RFC 7662 §2.1 / RFC 7009 §2.1. `token_type_hint` is only a hint: "
        "any value is accepted.",
        "required": ["token"],
        "properties": {
            "token": {"type": "string", "minLength": 1},
            "token_type_hint": STRING,
            **_CLIENT_CREDENTIALS_FIELDS,
        },
    },
    "IntrospectionResponse": {
        "description": "RFC 7662 §2.2: the claims of a live token, or only `active: false`.",
        "oneOf": [
            {
                "type": "object",
                "required": [
                    "active",
                    "client_id",
                    "scope",
                    "sub",
                    "aud",
                    "iss",
                    "exp",
                    "iat",
                    "jti",
                    "token_type",
                ],
                "properties": {
                    "active": {"const": True},
                    "client_id": STRING,
                    "scope": STRING,
                    "sub": STRING,
                    "aud": _AUDIENCE,
                    "iss": STRING,
                    "exp": {"type": "integer"},
                    "iat": {"type": "integer"},
                    "jti": STRING,
                    "token_type": {"const": "Bearer"},
                    "act": {
                        "description": "RFC 8693 §4.1, only for a token a workload got with "
                        "its platform's token: that token's `sub` and `iss`.",
                        "type": "object",
                        "required": ["sub", "iss"],
                        "properties": {"sub": STRING, "iss": STRING},
                    },
                },
            },
            {
                "type": "object",
                "required": ["active"],
                "properties": {"active": {"const": False}},
                "additionalProperties": False,
            },
        ],
    },
    "RevocationResponse": {
        "type": "object",
        "description": "RFC 7009 §2.2: always empty, whether or not anything was revoked.",
        "maxProperties": 0,
    },
    "Jwk": {
        "type": "object",
        "description": "A public signing key; private members never appear.",
        "required": ["kid", "kty", "alg", "use"],
        "properties": {
            "kid": STRING,
            "kty": {"enum": ["RSA", "EC", "OKP"]},
            "alg": {"enum": ["RS256", "ES256", "EdDSA"]},
            "use": {"const": "sig"},
        },
        "propertyNames": {"not": {"enum": ["d", "p", "q", "dp", "dq", "qi", "oth", "k"]}},
    },
    "JwkSet": {
        "type": "object",
        "required": ["keys"],
        "properties": {"keys": {"type": "array", "items": ref("schemas", "Jwk")}},
    },
    "ServerMetadata": {
        "type": "object",
        "description": "RFC 8414 §2; every URL is based on the configured issuer.",
        "required": [
            "issuer",
            "token_endpoint",
            "jwks_uri",
            "introspection_endpoint",
            "revocation_endpoint",
            "grant_types_supported",
            "token_endpoint_auth_methods_supported",
            "response_types_supported",
        ],
        "properties": {
            "issuer": _URI,
            "token_endpoint": _URI,
            "jwks_uri": _URI,
            "introspection_endpoint": _URI,
            "revocation_endpoint": _URI,
            "grant_types_supported": {"type": "array", "items": {"enum": [GRANT_TYPE]}},
            **{
                f"{endpoint}_endpoint_auth_methods_supported": {
                    "type": "array",
                    "items": {"enum": list(AUTH_METHODS)},
                }
                for endpoint in ("token", "introspection", "revocation")
            },
            "response_types_supported": {"type": "array", "maxItems": 0},
        },
    },
    "Liveness": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"const": "ok"}},
    },
    "Ready": {
        "type": "object",
        "required": ["status", "database", "warnings"],
        "properties": {
            "status": {"const": "ready"},
            "database": {
                "enum": ["ok", "unreachable"],
                "description": "`unreachable`: the instance serves the clients it read within "
                "AUTHSERVER_DATABASE_OUTAGE_GRACE seconds (see the configuration docs).",
            },
            "warnings": {
                **STRINGS,
                "description": (
                    "How many signing key files could not be loaded; the server log names them."
                ),
            },
        },
    },
    "NotReady": {
        "type": "object",
        "required": ["status", "database", "problems"],
        "properties": {
            "status": {"const": "unavailable"},
            "database": {"enum": ["ok", "unreachable"]},
            "problems": {**STRINGS, "minItems": 1},
        },
    },
}

HEADERS: JsonObject = {
    "RequestId": string_header(
        "The request's id: the caller's `X-Request-ID` when it is a plain token, else generated.",
        {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"},
    ),
    "CacheControlNoStore": string_header(
        "`Cache-Control`: OAuth answers are never cached.", {"const": "no-store"}
    ),
    "PragmaNoCache": string_header("HTTP/1.0 clients: no caching either.", {"const": "no-cache"}),
    "CacheControlJwks": string_header(
        "`Cache-Control`: `public, max-age=` the configured JWKS max-age.",
        {"type": "string", "pattern": "^public, max-age=[0-9]+$"},
    ),
    "CacheControlPublic": string_header(
        "`Cache-Control` of a public document.", {"const": CACHE_AN_HOUR}
    ),
    "ETag": string_header("Version of the JWK Set.", STRING),
    "BasicChallenge": string_header(
        "The Basic challenge.", {"const": 'Basic realm="authserver"'}, required=False
    ),
    "RetryAfter": string_header("Seconds to wait.", {"type": "integer", "minimum": 0}),
    "RetryAfterWhenKnown": string_header(
        "Seconds to wait, when the server can tell.",
        {"type": "integer", "minimum": 0},
        required=False,
    ),
    "AllowPost": string_header("The one allowed method.", {"const": "POST"}),
}

SECURITY_SCHEMES: JsonObject = {
    "basic": {
        "type": "http",
        "scheme": "basic",
        "description": "client_secret_basic (RFC 6749 §2.3.1): client id and secret, each "
        "form-urlencoded, as the Basic user name and password (sent unencoded, as many "
        "clients do, it is accepted too). The alternatives send credentials in the form "
        "body: client_secret_post (`client_id`, `client_secret`) and private_key_jwt "
        "(`client_assertion_type`, `client_assertion`).",
    }
}

TOKEN_PARAMETER_EXAMPLE = {"token": "eyJ...", "token_type_hint": "access_token"}

PATHS: JsonObject = {
    routes.TOKEN.path: _oauth_operation(
        operation_id="issueToken",
        summary="Issue an access token (client_credentials)",
        description="RFC 6749 §4.4 with RFC 8707 resource indicators. The client "
        "authenticates with a secret, a private_key_jwt assertion, or (workload identity "
        "federation) its platform's token as the `client_assertion`: a Kubernetes, GitHub "
        "Actions or SPIFFE token from an issuer an admin trusts (`authserver trust add`), "
        "which authenticates as the trust's client; that access token also carries `act` "
        "(RFC 8693 §4.1) naming the workload. The answer carries `Cache-Control: no-store` "
        "and never sets a cookie.",
        request_schema="TokenRequest",
        example={"grant_type": GRANT_TYPE, "scope": "api"},
        success=json_response(
            "The access token.",
            ref("schemas", "TokenResponse"),
            NO_STORE,
            PRAGMA,
        ),
        bad_request_codes=(
            "invalid_request",
            "unsupported_grant_type",
            "invalid_scope",
            "invalid_target",
        ),
    ),
    routes.INTROSPECTION.path: _oauth_operation(
        operation_id="introspectToken",
        summary="Introspect an access token (RFC 7662)",
        description="Any enabled registered client may ask.",
        request_schema="TokenParameterRequest",
        example=TOKEN_PARAMETER_EXAMPLE,
        success=json_response(
            "The token's state.",
            ref("schemas", "IntrospectionResponse"),
            NO_STORE,
            PRAGMA,
        ),
        bad_request_codes=("invalid_request",),
    ),
    routes.REVOCATION.path: _oauth_operation(
        operation_id="revokeToken",
        summary="Revoke an access token (RFC 7009)",
        description="A client may revoke only its own tokens; another client's token, an "
        "unknown or an expired one is answered the same and nothing changes.",
        request_schema="TokenParameterRequest",
        example=TOKEN_PARAMETER_EXAMPLE,
        success=json_response(
            "Revoked, or nothing to revoke.",
            ref("schemas", "RevocationResponse"),
            NO_STORE,
            PRAGMA,
        ),
        bad_request_codes=("invalid_request",),
    ),
    routes.JWKS.path: _jwks_operation("getJwks", "The public signing keys"),
    routes.JWKS_ALIAS.path: _jwks_operation("getJwksAlias", "The public signing keys (alias)"),
    routes.METADATA.path: {
        "get": {
            "operationId": "getServerMetadata",
            "tags": ["discovery"],
            "summary": "Authorization server metadata (RFC 8414)",
            "responses": {
                "200": json_response(
                    "The metadata.", ref("schemas", "ServerMetadata"), PUBLIC_CACHE
                )
            },
        }
    },
    routes.LIVENESS.path: _probe(
        "getLiveness",
        "Liveness: the process answers",
        {"200": json_response("Alive.", ref("schemas", "Liveness"), NO_STORE, PRAGMA)},
    ),
    routes.READINESS.path: _probe(
        "getReadiness",
        "Readiness: a signing key is loaded, and the database answers or has been "
        "unreachable for less than AUTHSERVER_DATABASE_OUTAGE_GRACE seconds",
        {
            "200": json_response("Ready.", ref("schemas", "Ready"), NO_STORE, PRAGMA),
            "503": json_response("Not ready.", ref("schemas", "NotReady"), NO_STORE, PRAGMA),
        },
    ),
    routes.METRICS.path: _probe(
        "getMetrics",
        "Prometheus metrics",
        {
            "200": {
                "description": "Prometheus text exposition format.",
                "headers": header_refs(),
                "content": {"text/plain": {"schema": STRING}},
            }
        },
    ),
    routes.OPENAPI.path: {
        "get": {
            "operationId": "getOpenApi",
            "tags": ["discovery"],
            "summary": "This document",
            "responses": {
                "200": json_response(
                    "The OpenAPI 3.1 description.",
                    {"type": "object", "required": ["openapi", "info", "paths"]},
                    PUBLIC_CACHE,
                )
            },
        }
    },
}


def _document(*, admin_api: bool) -> JsonObject:
    """The description, with the admin API or (AUTHSERVER_ADMIN_API=off) without it."""
    tags = [
        {"name": "oauth", "description": "Token issuance, introspection and revocation."},
        {"name": "discovery", "description": "Public keys and metadata."},
        {"name": "operations", "description": "Probes and metrics."},
    ]
    paths, schemas = dict(PATHS), dict(SCHEMAS)
    headers, security_schemes = dict(HEADERS), dict(SECURITY_SCHEMES)
    if admin_api:
        tags.append(
            {"name": "admin", "description": "Clients, signing keys and trusts (/admin/v1/)."}
        )
        paths.update(ADMIN_PATHS)
        schemas.update(ADMIN_SCHEMAS)
        headers.update(ADMIN_HEADERS)
        security_schemes.update(ADMIN_SECURITY_SCHEMES)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "authserver",
            "version": _version(),
            "summary": "OAuth 2.0 authorization server for service-to-service auth.",
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "tags": tags,
        "paths": paths,
        "components": {
            "schemas": schemas,
            "headers": headers,
            "securitySchemes": security_schemes,
        },
    }


#: Without the admin API: the public endpoints only.
DOCUMENT = _document(admin_api=False)
#: What is served by default (AUTHSERVER_ADMIN_API=on).
DOCUMENT_WITH_ADMIN = _document(admin_api=True)


class OpenApiDocument:
    """The view: the document as ready bytes, built once."""

    def __init__(self, *, admin_api: bool) -> None:
        document = DOCUMENT_WITH_ADMIN if admin_api else DOCUMENT
        self._body = json.dumps(document, separators=(",", ":")).encode()

    def __call__(self) -> Response:
        response = Response(self._body, mimetype=JSON)
        response.headers["Cache-Control"] = CACHE_AN_HOUR
        return response
