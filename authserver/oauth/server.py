"""Authlib's framework-free authorization server, wired to our grant, client auth and tokens."""

from __future__ import annotations

from typing import Any

from authlib.oauth2 import AuthorizationServer as _AuthorizationServer
from authlib.oauth2.rfc6749.errors import (
    InvalidRequestError,
    OAuth2Error,
    UnsupportedGrantTypeError,
)

from authserver.oauth.client_auth import CredentialVerifier, authenticate_client
from authserver.oauth.clients import GRANT_TYPE, OAuthClient
from authserver.oauth.grants import ClientCredentialsGrant
from authserver.oauth.requests import FormRequest, OAuthFormRequest
from authserver.oauth.tokens import AccessTokenGenerator

Response = tuple[int, dict[str, Any], list[tuple[str, str]]]


class UnsupportedGrantType(UnsupportedGrantTypeError):  # type: ignore[misc]
    """Authlib's version has no ``error_description`` in the body and echoes client input."""

    def __init__(self) -> None:
        super().__init__(None)
        self.description = f"Only grant_type={GRANT_TYPE} is supported."


class AuthorizationServer(_AuthorizationServer):  # type: ignore[misc]
    """Returns ``(status, body, headers)`` so the HTTP layer decides how to send it."""

    def __init__(
        self,
        verify_credentials: CredentialVerifier,
        token_generator: AccessTokenGenerator,
        default_audience: str,
    ) -> None:
        super().__init__()
        self._verify_credentials = verify_credentials
        self.default_audience = default_audience
        self.register_grant(ClientCredentialsGrant)
        self.register_token_generator("default", token_generator)

    def issue_token(self, form_request: FormRequest) -> Response:
        """The token endpoint; every OAuth error, raised wherever, becomes its JSON response."""
        try:
            result: Response = self.create_token_response(form_request)
        except OAuth2Error as error:
            result = self.handle_error_response(None, error)
        return result

    def create_oauth2_request(self, request: FormRequest) -> OAuthFormRequest:
        return OAuthFormRequest(request)

    def get_token_grant(self, request: OAuthFormRequest) -> ClientCredentialsGrant:
        grant_type = request.payload.grant_type
        if not grant_type:
            raise InvalidRequestError(description="The grant_type parameter is missing.")
        if grant_type != GRANT_TYPE:
            raise UnsupportedGrantType()
        return super().get_token_grant(request)

    def authenticate_client(
        self, request: OAuthFormRequest, methods: list[str], endpoint: str = "token"
    ) -> OAuthClient:
        return authenticate_client(request, self._verify_credentials)

    def handle_response(
        self, status: int, body: dict[str, Any], headers: list[tuple[str, str]]
    ) -> Response:
        return status, body, headers

    def save_token(self, token: dict[str, Any], request: OAuthFormRequest) -> None:
        """Access tokens are self-contained JWTs: nothing is stored when one is issued."""

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """No listeners: Authlib calls this after client authentication."""
