"""What a client registration may hold: each admin-supplied field checked and normalised.

One place for the rules, so the CLI (and later a file or the admin API) refuse the same input
with the same words; every failure is an :class:`~authserver.errors.InvalidClientData`.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

from authserver.config import MAX_ACCESS_TOKEN_TTL
from authserver.errors import InvalidClientData
from authserver.security import secrets
from authserver.security.client_keys import InvalidKeySet, public_key_set

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5B\x5D-\x7E]+")
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7E]+")
#: RFC 3986 §2 characters (reserved, unreserved, percent-encoded) less ``#``: RFC 8707 §2
#: forbids a fragment in a resource indicator. No whitespace, control or non-ASCII character.
_URI_CHARACTERS = re.compile(r"(?:[A-Za-z0-9\-._~:/?\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})+")
#: RFC 8141 §2: ``urn:`` NID ``:`` NSS, the NID 2 to 32 letters, digits or inner hyphens.
_URN = re.compile(r"urn:[A-Za-z0-9][A-Za-z0-9-]{0,30}[A-Za-z0-9]:.+", re.IGNORECASE)
AUDIENCE_SCHEMES = ("https", "http", "urn")
MAX_NAME_LENGTH = 200
#: RFC 7591 §2 ``token_endpoint_auth_method`` values a client may be registered with. A secret
#: client's is ``client_secret_basic``, and it may use ``client_secret_post`` just the same.
SECRET_AUTH_METHOD = "client_secret_basic"  # noqa: S105 (a method name, not a secret)
KEY_AUTH_METHOD = "private_key_jwt"
AUTH_METHODS = (SECRET_AUTH_METHOD, KEY_AUTH_METHOD)
#: A registered JWK Set is stored in the clients table and read with every registration.
MAX_JWKS_BYTES = 64 * 1024
#: An admin-chosen secret can be guessed, unlike a generated one: this is its floor.
#: A quota above a thousand tokens a second is no quota.
MAX_TOKENS_PER_HOUR = 3_600_000
MIN_CHOSEN_SECRET_LENGTH = 16
MAX_CHOSEN_SECRET_LENGTH = 512
#: The longest an old secret may keep working after a rotation (a week).
MAX_GRACE = 604_800
#: The longest a secret may be given to live with ``expires_in`` (ten years).
MAX_SECRET_LIFETIME = 315_360_000


def normalize_scope(scope: str) -> str:
    """Validate a space-separated scope list and return it de-duplicated, order kept."""
    tokens = scope.split()
    if not tokens:
        raise InvalidClientData("scope must name at least one scope")
    for token in tokens:
        if not _SCOPE_TOKEN.fullmatch(token):
            raise InvalidClientData(f"scope {token!r} has characters RFC 6749 section 3.3 forbids")
    return " ".join(dict.fromkeys(tokens))


def normalize_audiences(audiences: list[str] | tuple[str, ...]) -> list[str]:
    """Audiences are RFC 8707 resource indicators: absolute URIs without a fragment.

    Only ``https``, ``http`` (with a host) and ``urn`` are accepted: they end up in every
    token's ``aud`` and in resource servers' configuration, where ``javascript:`` or a URI
    with a trailing newline has no business. Python's ``urlsplit`` silently drops tabs and
    newlines, so the characters are checked on the raw string first.
    """
    for audience in audiences:
        if not _is_resource_indicator(audience):
            raise InvalidClientData(
                f"audience {audience!r} must be an absolute https, http or urn URI "
                "without a fragment, whitespace or control characters"
            )
    return list(dict.fromkeys(audiences))


def _is_resource_indicator(audience: str) -> bool:
    if not _URI_CHARACTERS.fullmatch(audience):
        return False
    scheme = audience.partition(":")[0].lower()
    if scheme == "urn":
        return _URN.fullmatch(audience) is not None
    if scheme not in AUDIENCE_SCHEMES:
        return False
    try:
        parts = urlsplit(audience)
        parts.port  # noqa: B018 -- raises ValueError on a port that is not a number in range
    except ValueError:
        return False
    return bool(parts.hostname)


def normalize_name(name: str) -> str:
    """1 to 200 printable characters, surrounding spaces dropped.

    Names are shown in terminals and logs: a newline would forge a row of ``clients list``,
    an escape sequence would drive the admin's terminal, a bidi override would disguise the
    name. ``str.isprintable`` refuses every Unicode control, format and separator character
    except the ASCII space.
    """
    stripped = name.strip(" ")
    if not name.isprintable() or not 1 <= len(stripped) <= MAX_NAME_LENGTH:
        raise InvalidClientData(
            f"name must be 1 to {MAX_NAME_LENGTH} printable characters "
            "(no newline, tab, escape or other control character)"
        )
    return stripped


def in_range(value: int, what: str, low: int, high: int) -> int:
    """``value`` if ``low <= value <= high``; the CLI checks the same bounds as a usage error.

    Larger numbers overflow date arithmetic (a ``timedelta`` beyond year 9999) and would
    break key retention, the JWKS and introspection for everyone, not just this client.
    """
    if not low <= value <= high:
        raise InvalidClientData(f"{what} must be {low} to {high} seconds, got {value}")
    return value


def checked_token_ttl(token_ttl: int | None) -> int | None:
    if token_ttl is None:
        return None
    return in_range(token_ttl, "token_ttl", 1, MAX_ACCESS_TOKEN_TTL)


def checked_quota(max_tokens_per_hour: int | None) -> int | None:
    """None (unlimited) or 1 to :data:`MAX_TOKENS_PER_HOUR`: a quota of 0 would be a
    disabled client, which ``clients disable`` says more clearly."""
    if max_tokens_per_hour is None:
        return None
    if not 1 <= max_tokens_per_hour <= MAX_TOKENS_PER_HOUR:
        raise InvalidClientData(
            f"max_tokens_per_hour must be 1 to {MAX_TOKENS_PER_HOUR}, got {max_tokens_per_hour}"
        )
    return max_tokens_per_hour


def hash_chosen_secret(secret: str) -> str:
    """Hash an admin-chosen secret after checking it is long enough to resist guessing."""
    if len(secret) < MIN_CHOSEN_SECRET_LENGTH:
        raise InvalidClientData(
            f"the secret must be at least {MIN_CHOSEN_SECRET_LENGTH} characters long "
            f"(it has {len(secret)}); choose a longer one or let authserver generate one"
        )
    if not _PRINTABLE_ASCII.fullmatch(secret) or len(secret) > MAX_CHOSEN_SECRET_LENGTH:
        raise InvalidClientData(
            f"the secret must be {MIN_CHOSEN_SECRET_LENGTH} to {MAX_CHOSEN_SECRET_LENGTH} "
            "printable ASCII characters (no tab, newline or non-ASCII character)"
        )
    return secrets.hash_chosen_secret(secret)


def capped_token_ttl(token_ttl: int | None) -> int | None:
    """A stored lifetime, capped at ``MAX_ACCESS_TOKEN_TTL``.

    Versions before the bound stored any number; migration 0003 clamps those rows, but a
    server may read them before ``authserver db upgrade`` runs, and one such row must not
    overflow key retention (JWKS, introspection, ``keys list``) nor mint a near-eternal token.
    """
    return None if token_ttl is None else min(token_ttl, MAX_ACCESS_TOKEN_TTL)


def checked_auth_method(method: str) -> str:
    if method not in AUTH_METHODS:
        raise InvalidClientData(
            f"token_endpoint_auth_method must be one of {', '.join(AUTH_METHODS)}, got {method!r}"
        )
    return method


def checked_jwks(document: Any) -> dict[str, Any]:
    """A JWK Set of public signing keys (:func:`public_key_set`'s rules), as given."""
    try:
        public_key_set(document)
    except InvalidKeySet as exc:
        raise InvalidClientData(f"jwks: {exc}") from None
    if len(json.dumps(document)) > MAX_JWKS_BYTES:
        raise InvalidClientData(f"jwks: a registered JWK Set is at most {MAX_JWKS_BYTES} bytes")
    return dict(document)


def checked_jwks_uri(uri: str) -> str:
    """Where the client serves its keys: https, or http on a loopback host (for development).

    The server fetches it, so it must not be a way to make the server talk plain http across
    a network, nor to reach anything but a key document (the fetch itself is bounded too).
    """
    # The fetcher's module loads httpx: only for a key client's jwks_uri, while every command
    # that shows a client imports this module.
    from authserver.security.remote_jwks import uri_problem

    problem = uri_problem(uri)
    if problem is not None:
        raise InvalidClientData(f"jwks_uri {uri!r}: {problem}")
    return uri


def key_source(jwks: Any | None, jwks_uri: str | None) -> tuple[dict[str, Any] | None, str | None]:
    """Exactly one of the two ways to give a key client its keys, checked."""
    if (jwks is None) == (jwks_uri is None):
        raise InvalidClientData("a private_key_jwt client needs exactly one of jwks or jwks_uri")
    if jwks_uri is not None:
        return None, checked_jwks_uri(jwks_uri)
    return checked_jwks(jwks), None
