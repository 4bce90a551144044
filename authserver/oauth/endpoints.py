"""Introspection (RFC 7662) and revocation (RFC 7009) of our JWT access tokens."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc7009 import RevocationEndpoint as _RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint as _IntrospectionEndpoint

from authserver.oauth.access_tokens import AccessToken, read_access_token
from authserver.oauth.clients import AUTH_METHODS, OAuthClient
from authserver.oauth.requests import OAuthFormRequest


class _TokenParameterMixin:
    """Shared by both endpoints: the ``token`` parameter and how a token string is read."""

    CLIENT_AUTH_METHODS = list(AUTH_METHODS)

    def check_params(self, request: OAuthFormRequest, client: OAuthClient) -> None:
        """``token`` is required. ``token_type_hint`` is only a hint (RFC 7009 §2.1):
        unknown values are ignored rather than refused, since only access tokens exist here."""
        if not request.form.get("token"):
            raise InvalidRequestError(description="The token parameter is missing.")

    def query_token(self, token_string: str, token_type_hint: str | None) -> AccessToken | None:
        server: Any = self.server  # type: ignore[attr-defined]
        backend = server.backend
        token = read_access_token(token_string, backend.published_keys(), server.issuer)
        if token is None:
            return None
        return replace(token, revoked=backend.is_revoked(token.jti), clock=server.clock)


class IntrospectionEndpoint(_TokenParameterMixin, _IntrospectionEndpoint):
    def check_permission(
        self, token: AccessToken, client: OAuthClient, request: OAuthFormRequest
    ) -> bool:
        """Any authenticated (hence enabled) client may introspect: the contract's choice."""
        return True

    def introspect_token(self, token: AccessToken) -> dict[str, Any]:
        """RFC 7662 §2.2; a token of a disabled or deleted client is no longer active."""
        if not self.server.backend.client_is_active(token.client_id):
            return {"active": False}
        claims = token.claims
        payload = {name: claims[name] for name in ("client_id", "scope", "sub", "aud", "iss")}
        payload.update({name: claims[name] for name in ("exp", "iat", "jti")})
        if "act" in claims:  # RFC 8693 §4.1: the workload that acted as the client
            payload["act"] = claims["act"]
        return {"active": True, **payload, "token_type": "Bearer"}


class RevocationEndpoint(_TokenParameterMixin, _RevocationEndpoint):
    def authenticate_token(
        self, request: OAuthFormRequest, client: OAuthClient
    ) -> AccessToken | None:
        """Only the client a token was issued to may revoke it. Another client's request is
        answered 200 and changes nothing (the contract), so it cannot probe for tokens."""
        self.check_params(request, client)
        token = self.query_token(request.form["token"], request.form.get("token_type_hint"))
        if token is None or token.client_id != client.client_id or token.is_expired():
            self.server.backend.record(
                "token.revocation", outcome="ignored", client_id=client.client_id
            )
            return None
        return token

    def revoke_token(self, token: AccessToken, request: OAuthFormRequest) -> None:
        newly = self.server.backend.revoke(token.jti, token.client_id, token.expires_at)
        self.server.backend.record(
            "token.revocation",
            outcome="revoked" if newly else "already_revoked",
            client_id=token.client_id,
            jti=token.jti,
        )
