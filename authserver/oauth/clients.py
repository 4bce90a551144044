"""The view of a registered client that Authlib's grant and token generator work with."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from authlib.oauth2.rfc6749 import ClientMixin
from joserfc.jwk import KeySet

GRANT_TYPE = "client_credentials"
CLIENT_SECRET_BASIC = "client_secret_basic"  # noqa: S105 (a method name, not a secret)
CLIENT_SECRET_POST = "client_secret_post"  # noqa: S105 (a method name, not a secret)
#: RFC 6749 §2.3.1: the two ways to present a secret.
SECRET_METHODS = (CLIENT_SECRET_BASIC, CLIENT_SECRET_POST)
#: RFC 7523 §2.2: an assertion signed with the client's private key.
PRIVATE_KEY_JWT = "private_key_jwt"
#: Accepted at every endpoint (the grant's and the endpoints' lists, and the metadata's
#: ``*_auth_methods_supported``).
AUTH_METHODS = (*SECRET_METHODS, PRIVATE_KEY_JWT)


@dataclass(frozen=True)
class Actor:
    """Who acted through the client (RFC 8693 §4.1 ``act``): the workload a trusted
    platform's token named, by its ``sub`` and ``iss``."""

    sub: str
    iss: str

    def as_claim(self) -> dict[str, str]:
        return {"sub": self.sub, "iss": self.iss}


@dataclass(frozen=True)
class OAuthClient(ClientMixin):
    """An authenticated client, as the backend found it (detached from any storage).

    ``granted_audience`` is filled in by the grant once the request's ``resource``/``audience``
    has been checked, because Authlib's token generator only receives the client.
    ``auth_method`` is how it is registered to authenticate; a ``private_key_jwt`` client's
    public keys are ``key_set`` (registered inline) or served at ``jwks_uri``. ``actor`` is
    set when a workload authenticated as the client with its platform's token.
    ``max_tokens_per_hour``: the client's quota (None: none).
    """

    client_id: str
    scopes: tuple[str, ...]
    audiences: tuple[str, ...]
    token_ttl: int | None
    granted_audience: str | list[str] | None = None
    auth_method: str = CLIENT_SECRET_BASIC
    key_set: KeySet | None = field(default=None, compare=False)
    jwks_uri: str | None = None
    actor: Actor | None = None
    max_tokens_per_hour: int | None = None

    def with_audience(self, audience: str | list[str]) -> OAuthClient:
        return replace(self, granted_audience=audience)

    def get_allowed_scope(self, scope: str | None) -> str:
        """The granted scope: the request's (already checked to be a subset) or all registered."""
        if not scope:
            return " ".join(self.scopes)
        return " ".join(dict.fromkeys(scope.split()))
