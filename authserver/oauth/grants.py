"""The client_credentials grant (RFC 6749 §4.4) with scope and audience (RFC 8707) checks."""

from __future__ import annotations

from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidRequestError, InvalidScopeError

from authserver.oauth.clients import AUTH_METHODS, GRANT_TYPE, OAuthClient
from authserver.oauth.errors import InvalidTargetError, QuotaExceededError


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    GRANT_TYPE = GRANT_TYPE
    TOKEN_ENDPOINT_AUTH_METHODS = list(AUTH_METHODS)

    def validate_token_request(self) -> None:
        client: OAuthClient = self.authenticate_token_endpoint_client()
        # Set at once, so a rejection below is audited under the client that made it.
        self.request.client = client
        check_requested_scope(client, self.request.payload.scope)
        datalist = self.request.payload.datalist
        audience = granted_audience(
            client,
            resources=datalist.get("resource", []),
            audience=self.request.payload.data.get("audience"),
            default_audience=self.server.default_audience,
        )
        # Last, so a request refused for its scope or audience does not use up the quota.
        if client.max_tokens_per_hour is not None:
            wait = self.server.backend.take_token(client.client_id, client.max_tokens_per_hour)
            if wait is not None:
                raise QuotaExceededError(client.max_tokens_per_hour, wait)
        self.request.client = client.with_audience(audience)


def check_requested_scope(client: OAuthClient, scope: str | None) -> None:
    """RFC 6749 §3.3: an omitted scope means the registered ones; otherwise a subset."""
    if scope is None:
        return
    requested = scope.split()
    if not requested:
        raise InvalidScopeError(description="The scope parameter is empty.")
    if not set(requested) <= set(client.scopes):
        raise InvalidScopeError(description="The client is not registered for the requested scope.")


def granted_audience(
    client: OAuthClient, *, resources: list[str], audience: str | None, default_audience: str
) -> str | list[str]:
    """The ``aud`` claim: what the request names, else every audience the client may use."""
    if resources and audience is not None:
        raise InvalidRequestError(description="Send either resource or audience, not both.")
    allowed = list(client.audiences) or [default_audience]
    requested = resources or ([audience] if audience is not None else [])
    for value in requested:
        parts = urlsplit(value)
        if not parts.scheme or parts.fragment or value not in allowed:
            raise InvalidTargetError(
                description="The requested resource is not allowed for this client."
            )
    chosen = list(dict.fromkeys(requested)) or allowed
    return chosen[0] if len(chosen) == 1 else chosen
