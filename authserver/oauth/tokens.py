"""RFC 9068 JWT access tokens, produced by Authlib's generator with our keys and lifetimes."""

from __future__ import annotations

from collections.abc import Callable

from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from joserfc.jwk import KeySet

from authserver.oauth.clients import OAuthClient
from authserver.oauth.errors import TemporarilyUnavailableError
from authserver.security.keys import SigningKey


class AccessTokenGenerator(JWTBearerTokenGenerator):  # type: ignore[misc]
    """Signs with the one active key only.

    Authlib picks a random key from the key set it is given; handing it a set that holds just
    the active key makes the choice deterministic and puts that key's ``kid`` in the header.
    """

    def __init__(
        self,
        issuer: str,
        signing_key: Callable[[], SigningKey | None],
        default_ttl: int,
    ) -> None:
        super().__init__(issuer=issuer, alg="RS256", expires_generator=self._expires_in)
        self._signing_key = signing_key
        self._default_ttl = default_ttl

    def get_jwks(self) -> KeySet:
        key = self._signing_key()
        if key is None:
            raise TemporarilyUnavailableError(description="No signing key is loaded yet.")
        return KeySet([key.jwk])

    def get_audiences(self, client: OAuthClient, user: object, scope: str) -> str | list[str]:
        assert client.granted_audience is not None, "the grant sets the audience"  # noqa: S101
        return client.granted_audience

    def _expires_in(self, client: OAuthClient, grant_type: str) -> int:
        return client.token_ttl or self._default_ttl
