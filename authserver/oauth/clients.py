"""The view of a registered client that Authlib's grant and token generator work with."""

from __future__ import annotations

from dataclasses import dataclass, replace

from authlib.oauth2.rfc6749 import ClientMixin

from authserver.services.clients import Registration

GRANT_TYPE = "client_credentials"
AUTH_METHODS = ("client_secret_basic", "client_secret_post")


@dataclass(frozen=True)
class OAuthClient(ClientMixin):  # type: ignore[misc]
    """An authenticated client, detached from the database session.

    ``granted_audience`` is filled in by the grant once the request's ``resource``/``audience``
    has been checked, because Authlib's token generator only receives the client.
    """

    client_id: str
    scopes: tuple[str, ...]
    audiences: tuple[str, ...]
    token_ttl: int | None
    granted_audience: str | list[str] | None = None

    @classmethod
    def from_registration(cls, registration: Registration) -> OAuthClient:
        return cls(
            client_id=registration.client_id,
            scopes=registration.scopes,
            audiences=registration.audiences,
            token_ttl=registration.token_ttl,
        )

    def with_audience(self, audience: str | list[str]) -> OAuthClient:
        return replace(self, granted_audience=audience)

    def get_allowed_scope(self, scope: str | None) -> str:
        """The granted scope: the request's (already checked to be a subset) or all registered."""
        if not scope:
            return " ".join(self.scopes)
        return " ".join(dict.fromkeys(scope.split()))
