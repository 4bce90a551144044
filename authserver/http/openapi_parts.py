"""The pieces both OpenAPI descriptions are built from: the public endpoints'
(:mod:`authserver.http.openapi`) and the admin API's (:mod:`authserver.http.openapi_admin`).

Why a module of its own: both describe responses the same way (every one carries
``X-Request-ID``; headers are shared components, referred to by name), and neither may import
the other: ``openapi`` assembles the served document from both.
"""

from __future__ import annotations

from typing import Any

JsonObject = dict[str, Any]

JSON = "application/json"

STRING = {"type": "string"}
STRINGS = {"type": "array", "items": STRING}


def ref(kind: str, name: str) -> JsonObject:
    return {"$ref": f"#/components/{kind}/{name}"}


#: Response headers as (header name, component name): several components describe the one
#: ``Cache-Control`` header, whose value depends on the endpoint. The components these name
#: are ``openapi.HEADERS``, in both documents.
Header = tuple[str, str]
REQUEST_ID: Header = ("X-Request-ID", "RequestId")
NO_STORE: Header = ("Cache-Control", "CacheControlNoStore")
PRAGMA: Header = ("Pragma", "PragmaNoCache")
JWKS_CACHE: Header = ("Cache-Control", "CacheControlJwks")
PUBLIC_CACHE: Header = ("Cache-Control", "CacheControlPublic")
ETAG: Header = ("ETag", "ETag")
CHALLENGE: Header = ("WWW-Authenticate", "BasicChallenge")
RETRY_AFTER: Header = ("Retry-After", "RetryAfter")
MAYBE_RETRY_AFTER: Header = ("Retry-After", "RetryAfterWhenKnown")
ALLOW: Header = ("Allow", "AllowPost")


def header_refs(*headers: Header) -> JsonObject:
    """The response's headers; ``X-Request-ID`` accompanies every response."""
    return {name: ref("headers", component) for name, component in (REQUEST_ID, *headers)}


def json_response(description: str, schema: JsonObject, *headers: Header) -> JsonObject:
    return {
        "description": description,
        "headers": header_refs(*headers),
        "content": {JSON: {"schema": schema}},
    }


def string_header(description: str, schema: JsonObject, *, required: bool = True) -> JsonObject:
    return {"description": description, "required": required, "schema": schema}
