"""RFC 9068 JWT access tokens, produced by Authlib's generator with our keys and lifetimes."""

from __future__ import annotations

import threading
from collections.abc import Callable

from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from joserfc.jwk import KeySet

from authserver.oauth.clients import OAuthClient
from authserver.oauth.errors import TemporarilyUnavailableError
from authserver.security.keys import SigningKey


class AccessTokenGenerator(JWTBearerTokenGenerator):  # type: ignore[misc]
    """Signs each token with the key that is active at that moment, and only that key.

    Authlib picks a random key from the key set it is given; handing it a set that holds just
    the active key makes the choice deterministic and puts that key's ``kid`` in the header.
    The key is fixed once per token (thread-local), so the header's ``alg`` and the signature
    always come from the same key even if a rotation lands mid-request.
    """

    def __init__(
        self,
        issuer: str,
        signing_key: Callable[[], SigningKey | None],
        default_ttl: int,
    ) -> None:
        self._signing_key = signing_key
        self._default_ttl = default_ttl
        self._request_key = threading.local()
        super().__init__(issuer=issuer, expires_generator=self._expires_in)

    @property
    def alg(self) -> str:
        """The algorithm of the key signing the current token."""
        key: SigningKey = self._request_key.value
        return key.alg

    @alg.setter
    def alg(self, value: str) -> None:
        """Authlib's constructor sets a fixed ``alg``; ours follows the signing key instead."""

    def access_token_generator(
        self, client: OAuthClient, grant_type: str, user: object, scope: str
    ) -> str:
        key = self._signing_key()
        if key is None:
            raise TemporarilyUnavailableError(description="No signing key is loaded yet.")
        self._request_key.value = key
        try:
            token: str = super().access_token_generator(client, grant_type, user, scope)
        finally:
            del self._request_key.value
        return token

    def get_jwks(self) -> KeySet:
        key: SigningKey = self._request_key.value
        return KeySet([key.jwk])

    def get_audiences(self, client: OAuthClient, user: object, scope: str) -> str | list[str]:
        assert client.granted_audience is not None, "the grant sets the audience"  # noqa: S101
        return client.granted_audience

    def _expires_in(self, client: OAuthClient, grant_type: str) -> int:
        return client.token_ttl or self._default_ttl
