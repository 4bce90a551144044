"""How clients and times appear in CLI and HTTP output."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from authserver.models import Client, Trust
from authserver.services.client_fields import KEY_AUTH_METHOD


def iso_utc(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``, to the second: the contract's time format."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def printable(text: str) -> str:
    """``text`` with each control or format character written as its escape (``\\n``, ``\\x1b``).

    For human-readable output of stored values: names and audiences written by versions that
    did not validate them may hold a newline (which would forge a row in ``clients list``) or
    an escape sequence (which would reach the admin's terminal). JSON output needs nothing:
    ``json.dumps`` escapes these characters itself.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def client_view(client: Client) -> dict[str, Any]:
    """The public client object of the contract: never a secret or a hash."""
    return {
        "client_id": client.client_id,
        "name": client.name,
        "scope": client.scope,
        "audiences": list(client.audiences),
        "token_ttl": client.token_ttl,
        "enabled": client.enabled,
        "created_at": iso_utc(client.created_at),
        "last_used_at": iso_utc(client.last_used_at),
        "token_endpoint_auth_method": client.auth_method,
        "max_tokens_per_hour": client.max_tokens_per_hour,
        **(
            {"jwks_uri": client.jwks_uri, "jwks": client.jwks}
            if client.auth_method == KEY_AUTH_METHOD
            else {}
        ),
    }


def trust_view(trust: Trust) -> dict[str, Any]:
    """The public trust object of the contract."""
    return {
        "trust_id": trust.trust_id,
        "client_id": trust.client_id,
        "issuer": trust.issuer,
        "subject": trust.subject,
        "audience": trust.audience,
        "jwks_uri": trust.jwks_uri,
        "allow_reuse": trust.allow_reuse,
        "max_lifetime": trust.max_lifetime,
        "created_at": iso_utc(trust.created_at),
    }
