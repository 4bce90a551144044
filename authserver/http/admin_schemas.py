"""The admin API's request bodies: one JSON Schema each, published in ``/openapi.json`` and
applied to every request by :func:`checked_body`.

Why one definition for both: callers (and the schemathesis run in the tests) generate
requests from the published document, so a body it calls valid must pass the first check and
one it calls invalid must be refused, never half-applied. The schemas hold the shape (types,
required and unknown members, numeric bounds); the service layer then applies the rules that
need more than a shape (printable names, absolute audiences, a public JWK Set), with the same
words as the CLI, answered 422 as well.

The check is ``jsonschema``'s, the library ``authserver apply`` validates its files with.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from authserver.config import MAX_ACCESS_TOKEN_TTL
from authserver.services.client_fields import (
    AUTH_METHODS,
    MAX_GRACE,
    MAX_NAME_LENGTH,
    MAX_SECRET_LIFETIME,
    MAX_TOKENS_PER_HOUR,
)
from authserver.services.trusts import MAX_FIELD_LENGTH, MAX_LIFETIME

JsonObject = dict[str, Any]

#: Far above any real list, far below what would make a row or a token unwieldy.
MAX_AUDIENCES = 100
MAX_TEXT_LENGTH = 2048
#: A refusal quotes the offending value or members, but not 64 KiB of them.
MAX_MESSAGE_LENGTH = 300


def _integer(low: int, high: int, *, nullable: bool = False) -> JsonObject:
    return {"type": ["integer", "null"] if nullable else "integer", "minimum": low, "maximum": high}


def _text(max_length: int = MAX_TEXT_LENGTH, *, nullable: bool = False) -> JsonObject:
    kind = ["string", "null"] if nullable else "string"
    return {"type": kind, "minLength": 1, "maxLength": max_length}


def _body(description: str, properties: JsonObject, **keywords: Any) -> JsonObject:
    return {
        "type": "object",
        "description": description,
        "properties": properties,
        "additionalProperties": False,
        **keywords,
    }


_NAME = {**_text(MAX_NAME_LENGTH), "description": "1 to 200 printable characters."}
_SCOPE = {**_text(), "description": 'Space-separated scopes, e.g. "api tasks:read".'}
_AUDIENCES = {
    "type": "array",
    "items": _text(),
    "maxItems": MAX_AUDIENCES,
    "description": "Absolute https, http or urn URIs (RFC 8707 resources); replaces the list.",
}
_JWKS = {
    "type": "object",
    "description": "private_key_jwt clients: their public JWK Set (1 to 16 keys).",
}
_JWKS_URI = {
    **_text(),
    "description": "private_key_jwt clients: where they serve their public JWK Set (https, or "
    "http on a loopback host).",
}
_QUOTA = {
    **_integer(1, MAX_TOKENS_PER_HOUR, nullable=True),
    "description": "At most this many tokens an hour; null: unlimited.",
}
_TOKEN_TTL = {
    **_integer(1, MAX_ACCESS_TOKEN_TTL),
    "description": "Access-token lifetime in seconds (default: AUTHSERVER_ACCESS_TOKEN_TTL).",
}
_EXPIRES_IN = {
    **_integer(1, MAX_SECRET_LIFETIME, nullable=True),
    "description": "The new secret stops working by itself after this many seconds; "
    "null or absent: never.",
}

CLIENT_CREATE = _body(
    "A client to register, as `authserver clients create` takes it. The secret is always "
    "generated (and answered once): an admin-chosen secret is not accepted over HTTP.",
    {
        "name": _NAME,
        "scope": _SCOPE,
        "audiences": _AUDIENCES,
        "token_ttl": {**_TOKEN_TTL, "type": ["integer", "null"]},
        "token_endpoint_auth_method": {"enum": list(AUTH_METHODS)},
        "jwks": {**_JWKS, "type": ["object", "null"]},
        "jwks_uri": {**_JWKS_URI, "type": ["string", "null"]},
        "max_tokens_per_hour": _QUOTA,
        "expires_in": _EXPIRES_IN,
    },
    required=["name", "scope"],
)

CLIENT_UPDATE = _body(
    "The fields to change, as `authserver clients update` changes them; absent fields stay. "
    "`max_tokens_per_hour` null lifts the quota; `token_ttl` null returns to the server's "
    "default; `enabled` is what `clients enable|disable` set.",
    {
        "name": _NAME,
        "scope": _SCOPE,
        "audiences": _AUDIENCES,
        "token_ttl": {
            **_TOKEN_TTL,
            "type": ["integer", "null"],
            "description": "Access-token lifetime in seconds; null: back to "
            "AUTHSERVER_ACCESS_TOKEN_TTL.",
        },
        "jwks": _JWKS,
        "jwks_uri": _JWKS_URI,
        "max_tokens_per_hour": _QUOTA,
        "enabled": {"type": "boolean"},
    },
    minProperties=1,
)

SECRET_ROTATION = _body(
    "Optional: as `authserver clients rotate-secret` takes it.",
    {
        "grace": {
            **_integer(0, MAX_GRACE),
            "description": "How long the old secret keeps working, in seconds (default 0).",
        },
        "expires_in": _EXPIRES_IN,
    },
)

KEY_ROTATION = _body(
    "Optional: as `authserver keys rotate` takes it.",
    {
        "now": {
            "type": "boolean",
            "description": "Sign with the new key at once instead of after "
            "AUTHSERVER_KEY_PROPAGATION_DELAY (default false).",
        }
    },
)

TRUST_CREATE = _body(
    "A workload identity trust, as `authserver trust add` takes it.",
    {
        "client_id": {**_text(), "description": "The client the workload authenticates as."},
        "issuer": {**_text(), "description": "The platform's issuer (`iss`), exactly."},
        "subject": {
            **_text(MAX_FIELD_LENGTH),
            "description": "The workload's `sub`, or a pattern where `*` matches any run.",
        },
        "audience": {
            **_text(MAX_FIELD_LENGTH),
            "description": "A value the platform token's `aud` must contain.",
        },
        "jwks_uri": {
            **_text(nullable=True),
            "description": "The issuer's keys; null or absent: from its OpenID discovery document.",
        },
        "allow_reuse": {
            "type": "boolean",
            "description": "Accept the same platform token again until it expires.",
        },
        "max_lifetime": {
            **_integer(1, MAX_LIFETIME),
            "description": "The longest `exp - iat` accepted, in seconds (default 3600).",
        },
    },
    required=["client_id", "issuer", "subject", "audience"],
)


class BodyInvalid(Exception):  # noqa: N818 - reads as what it says
    """The body does not match its schema; the message names the member and the rule."""


def checked_body(document: Any, schema: JsonObject) -> JsonObject:
    """``document`` if it matches ``schema`` (JSON Schema 2020-12, as ``authserver apply``
    checks its file); integral numbers (``5.0``, an integer to JSON Schema) become ``int``."""
    error = best_match(Draft202012Validator(schema).iter_errors(document))
    if error is not None:
        path = ".".join(map(str, error.absolute_path))
        where = f"`{path}`" if path else "the body"
        message = error.message
        if len(message) > MAX_MESSAGE_LENGTH:
            message = message[:MAX_MESSAGE_LENGTH] + "…"
        raise BodyInvalid(f"{where}: {message}")
    assert isinstance(document, dict)  # noqa: S101 - every body schema is an object's
    properties = schema["properties"]
    return {
        name: int(value)
        if isinstance(value, float) and "integer" in properties[name].get("type", ())
        else value
        for name, value in document.items()
    }
