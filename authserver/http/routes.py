"""Every path the server answers, its methods and the name of its handler, written once.

The dispatch (:mod:`authserver.http.handlers`), the metadata document (RFC 8414), the OpenAPI
description and the CLI's start-up hints all read this table, so a path cannot be served
under one spelling and advertised under another.
"""

from __future__ import annotations

from dataclasses import dataclass

from authserver.wellknown import JWKS_PATH, METADATA_PATH


@dataclass(frozen=True)
class Route:
    path: str
    methods: tuple[str, ...]
    #: The handler bound to the route; for the OAuth endpoints, Authlib's endpoint name.
    handler: str
    #: The RFC 8414 metadata member that advertises this endpoint's URL, if any.
    metadata_member: str | None = None

    def url(self, issuer: str) -> str:
        return f"{issuer}{self.path}"


READ = ("GET", "HEAD")

TOKEN = Route("/oauth2/token", ("POST",), "token", "token_endpoint")
INTROSPECTION = Route("/oauth2/introspect", ("POST",), "introspection", "introspection_endpoint")
REVOCATION = Route("/oauth2/revoke", ("POST",), "revocation", "revocation_endpoint")
JWKS = Route(JWKS_PATH, READ, "jwks", "jwks_uri")
#: The JWKS under the OAuth prefix too, for proxies that forward only ``/oauth2/``.
JWKS_ALIAS = Route("/oauth2/jwks", READ, "jwks")
METADATA = Route(METADATA_PATH, READ, "metadata")
LIVENESS = Route("/healthz", ("GET",), "liveness")
READINESS = Route("/readyz", ("GET",), "readiness")
METRICS = Route("/metrics", ("GET",), "metrics")
OPENAPI = Route("/openapi.json", ("GET",), "openapi")

ROUTES = (
    TOKEN,
    INTROSPECTION,
    REVOCATION,
    JWKS,
    JWKS_ALIAS,
    METADATA,
    LIVENESS,
    READINESS,
    METRICS,
    OPENAPI,
)

#: The admin API (``/admin/v1/``, ``docs/http-api.md``): served and described only with
#: ``AUTHSERVER_ADMIN_API=on``, by Flask behind the router (it is never on the token path).
#: Paths are written as OpenAPI templates; the handler names the route for the admin API's own
#: dispatch (:mod:`authserver.http.admin`).
ADMIN_PREFIX = "/admin/v1"
ADMIN_CLIENTS = Route(f"{ADMIN_PREFIX}/clients", ("GET", "POST"), "admin_clients")
ADMIN_CLIENT = Route(
    f"{ADMIN_PREFIX}/clients/{{client_id}}", ("GET", "PATCH", "DELETE"), "admin_client"
)
ADMIN_CLIENT_SECRET = Route(
    f"{ADMIN_PREFIX}/clients/{{client_id}}/rotate-secret", ("POST",), "admin_client_secret"
)
ADMIN_KEYS = Route(f"{ADMIN_PREFIX}/keys", ("GET",), "admin_keys")
ADMIN_KEY_ROTATION = Route(f"{ADMIN_PREFIX}/keys/rotate", ("POST",), "admin_key_rotation")
ADMIN_KEY_REVOCATION = Route(
    f"{ADMIN_PREFIX}/keys/{{kid}}/revoke", ("POST",), "admin_key_revocation"
)
ADMIN_TRUSTS = Route(f"{ADMIN_PREFIX}/trusts", ("GET", "POST"), "admin_trusts")
ADMIN_TRUST = Route(f"{ADMIN_PREFIX}/trusts/{{trust_id}}", ("GET", "DELETE"), "admin_trust")

ADMIN_ROUTES = (
    ADMIN_CLIENTS,
    ADMIN_CLIENT,
    ADMIN_CLIENT_SECRET,
    ADMIN_KEYS,
    ADMIN_KEY_ROTATION,
    ADMIN_KEY_REVOCATION,
    ADMIN_TRUSTS,
    ADMIN_TRUST,
)
