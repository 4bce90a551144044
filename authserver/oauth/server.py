"""Authlib's framework-free authorization server, wired to our grant, endpoints and backend."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from authlib.oauth2 import AuthorizationServer as _AuthorizationServer
from authlib.oauth2.rfc6749.errors import (
    InvalidRequestError,
    OAuth2Error,
    UnsupportedGrantTypeError,
)

from authserver.oauth.backend import Backend
from authserver.oauth.client_auth import authenticate_client
from authserver.oauth.clients import GRANT_TYPE, OAuthClient
from authserver.oauth.endpoints import IntrospectionEndpoint, RevocationEndpoint
from authserver.oauth.grants import ClientCredentialsGrant
from authserver.oauth.requests import FormRequest, OAuthFormRequest
from authserver.oauth.tokens import AccessTokenGenerator

Response = tuple[int, dict[str, Any], list[tuple[str, str]]]

TOKEN_ENDPOINT = "token"  # noqa: S105 (an endpoint name, not a password)
INTROSPECTION_ENDPOINT = IntrospectionEndpoint.ENDPOINT_NAME
REVOCATION_ENDPOINT = RevocationEndpoint.ENDPOINT_NAME


class UnsupportedGrantType(UnsupportedGrantTypeError):
    """Authlib's version has no ``error_description`` in the body and echoes client input."""

    def __init__(self) -> None:
        super().__init__(None)
        self.description = f"Only grant_type={GRANT_TYPE} is supported."


class AuthorizationServer(_AuthorizationServer):
    """Returns ``(status, body, headers)`` so the HTTP layer decides how to send it."""

    def __init__(
        self,
        backend: Backend,
        token_generator: AccessTokenGenerator,
        *,
        issuer: str,
        default_audience: str,
        token_endpoint: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.backend = backend
        self.clock = clock
        self.issuer = issuer
        self.token_endpoint = token_endpoint
        self.default_audience = default_audience
        self.register_grant(ClientCredentialsGrant)
        self.register_token_generator("default", token_generator)
        self._token_generator = token_generator
        self.register_endpoint(IntrospectionEndpoint)
        self.register_endpoint(RevocationEndpoint)

    def handle(self, endpoint: str, form_request: FormRequest) -> Response:
        """Answer one OAuth request; every OAuth error, raised wherever, becomes its JSON."""
        try:
            if endpoint == TOKEN_ENDPOINT:
                result: Response = self.create_token_response(form_request)
            else:
                result = self.create_endpoint_response(endpoint, form_request)
        except OAuth2Error as error:
            result = self.handle_error_response(None, error)
        return result

    def create_token_response(self, request: FormRequest) -> Response:
        """The token endpoint as ordered steps, in the spirit of node-oidc-provider's
        ``lib/actions/token.js``:

        1. ``create_oauth2_request``: the form the HTTP layer parsed once, as Authlib's request;
        2. ``get_token_grant``: Authlib's grant for the ``grant_type`` (client_credentials only);
        3. ``validate_token_request``: the grant's protocol decisions (client authentication,
           scope, audience, quota: ``grants.py``);
        4. ``generate``: Authlib's bearer token around our signed JWT (``tokens.py``);
        5. ``save_token``: the audit record (nothing is stored);
        6. the answer, uncacheable (RFC 6749 §5.1).

        Authlib's own version runs the same steps through its grant hooks and three layers of
        token-generator dispatch, which carry nothing for one grant and one generator.
        """
        oauth_request = self.create_oauth2_request(request)
        try:
            grant = self.get_token_grant(oauth_request)
            grant.validate_token_request()
            token: dict[str, Any] = self._token_generator.generate(
                GRANT_TYPE,
                oauth_request.client,
                scope=oauth_request.payload.scope,
                include_refresh_token=False,
            )
            self.save_token(token, oauth_request)
        except OAuth2Error as error:
            return self.handle_error_response(oauth_request, error)
        return 200, token, grant.TOKEN_RESPONSE_HEADER

    def create_oauth2_request(self, request: FormRequest) -> OAuthFormRequest:
        return OAuthFormRequest(request)

    def get_token_grant(self, request: OAuthFormRequest) -> ClientCredentialsGrant:
        grant_type = request.payload.grant_type
        if not grant_type:
            raise InvalidRequestError(description="The grant_type parameter is missing.")
        if grant_type != GRANT_TYPE:
            raise UnsupportedGrantType()
        grant: ClientCredentialsGrant = super().get_token_grant(request)
        return grant

    def authenticate_client(
        self, request: OAuthFormRequest, methods: list[str], endpoint: str = "token"
    ) -> OAuthClient:
        """Authlib's seam for client authentication: ``methods`` are those the grant or
        endpoint accepts (its ``TOKEN_ENDPOINT_AUTH_METHODS``/``CLIENT_AUTH_METHODS``).

        Authlib's own implementation (``ClientAuthentication``) tries each method in turn
        and compares plaintext secrets; ours picks the one method the request uses, refuses
        it if ``methods`` lacks it, and counts failures (see ``client_auth``).

        A client assertion's ``aud`` may name the issuer, the token endpoint or the endpoint
        receiving it (RFC 7523 §3 item 3; clients differ in which they use).
        """
        audiences = (self.issuer, self.token_endpoint, request.source.endpoint_uri)
        return authenticate_client(request, self.backend, methods, audiences, self.clock)

    def handle_response(
        self, status: int, body: dict[str, Any], headers: list[tuple[str, str]]
    ) -> Response:
        return status, body, headers

    def handle_error_response(
        self, request: OAuthFormRequest | None, error: OAuth2Error
    ) -> Response:
        if error.error != "invalid_client":  # client authentication records its own failures
            client = getattr(request, "client", None)
            self.backend.record(
                "request.rejected",
                outcome="failure",
                client_id=client.client_id if client else None,
                error=error.error,
            )
        response: Response = super().handle_error_response(request, error)
        return response

    def save_token(self, token: dict[str, Any], request: OAuthFormRequest) -> None:
        """Access tokens are self-contained JWTs: nothing is stored when one is issued.
        A workload's token names it (``act``), so the audit trail can tell who asked."""
        client: OAuthClient = request.client
        self.backend.token_issued(client.client_id, token["expires_in"], request.source.remote_addr)
        actor = {"act": client.actor.as_claim()} if client.actor else {}
        self.backend.record(
            "token.issued",
            outcome="success",
            client_id=client.client_id,
            scope=token.get("scope"),
            expires_in=token.get("expires_in"),
            **actor,
        )

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """No listeners: audit events go through the backend instead."""
