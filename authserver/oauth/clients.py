"""The view of a registered client that Authlib's grant and token generator work with."""

from __future__ import annotations

from dataclasses import dataclass, replace

from authlib.oauth2.rfc6749 import ClientMixin

GRANT_TYPE = "client_credentials"
CLIENT_SECRET_BASIC = "client_secret_basic"  # noqa: S105 (a method name, not a secret)
CLIENT_SECRET_POST = "client_secret_post"  # noqa: S105 (a method name, not a secret)
#: RFC 6749 §2.3.1, accepted at every endpoint (the grant's and the endpoints' lists, and
#: the metadata's ``*_auth_methods_supported``).
AUTH_METHODS = (CLIENT_SECRET_BASIC, CLIENT_SECRET_POST)


@dataclass(frozen=True)
class OAuthClient(ClientMixin):
    """An authenticated client, as the backend found it (detached from any storage).

    ``granted_audience`` is filled in by the grant once the request's ``resource``/``audience``
    has been checked, because Authlib's token generator only receives the client.
    """

    client_id: str
    scopes: tuple[str, ...]
    audiences: tuple[str, ...]
    token_ttl: int | None
    granted_audience: str | list[str] | None = None

    def with_audience(self, audience: str | list[str]) -> OAuthClient:
        return replace(self, granted_audience=audience)

    def get_allowed_scope(self, scope: str | None) -> str:
        """The granted scope: the request's (already checked to be a subset) or all registered."""
        if not scope:
            return " ".join(self.scopes)
        return " ".join(dict.fromkeys(scope.split()))
