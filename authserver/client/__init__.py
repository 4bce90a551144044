"""Access tokens for services that call APIs protected by this authorization server.

A service asks for a client_credentials token (RFC 6749 §4.4), reuses it until it is close to
expiry, and attaches it to its API calls. Doing that by hand tends to go wrong in the same
places: a token per API call (load on the token endpoint, and an audit line each), a burst of
identical fetches when many threads or tasks find the cache empty at once, a token used until
the second it expires (and rejected in flight), and secrets ending up in logs. This module does
it once:

- ``ClientCredentials`` / ``AsyncClientCredentials``: ``token()`` returns a cached token and
  fetches a new one ``refresh_margin`` seconds before it expires; concurrent callers share one
  fetch. Tokens live in memory only. The client authenticates with its secret, or with a
  private key (``private_key=``: a new signed ``private_key_jwt`` assertion per request,
  RFC 7523), so the server never holds anything that could stand in for the service. A
  workload whose platform already gives it a signed identity (a Kubernetes service-account
  token, a GitHub Actions OIDC token, a SPIFFE JWT-SVID) needs neither: ``from_token_file``
  (or ``from_platform_token``) presents that JWT, read anew per fetch, to a server that
  trusts the platform's issuer (workload identity federation).
- ``BearerAuth`` (requests) and ``HTTPXBearerAuth`` (httpx): add ``Authorization: Bearer`` and,
  when the API still answers 401 (a revoked token or a rotated key), fetch a fresh token and
  retry the request once.
- ``TokenError``: the OAuth error code, description and HTTP status, never a secret or key.

Only httpx is required; ``requests`` is needed for ``BearerAuth`` alone. Nothing here imports
the server side (Flask, the database), so services can depend on this package for the client.
"""

from authserver.client.auth import BearerAuth, HTTPXBearerAuth
from authserver.client.errors import TokenError
from authserver.client.platform_token import PlatformTokenError
from authserver.client.sources import AsyncClientCredentials, ClientCredentials

__all__ = [
    "AsyncClientCredentials",
    "BearerAuth",
    "ClientCredentials",
    "HTTPXBearerAuth",
    "PlatformTokenError",
    "TokenError",
]
