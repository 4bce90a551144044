"""The keys trusted workload issuers sign with: at a trust's own ``jwks_uri``, or where the
issuer's OpenID discovery document says (OpenID Connect Discovery 1.0 §4, as Kubernetes,
GitHub Actions and most cloud identity providers publish it).

Both documents are fetched by :class:`~authserver.security.remote_jwks.RemoteDocuments`'s
rules (https or loopback http, 5 s, 256 KiB, no redirects, cached per Cache-Control, never on
another request's path), so a trusted issuer's slow host costs only its own workloads.
"""

from __future__ import annotations

from typing import Any

from joserfc.jwk import KeySet

from authserver.security.client_keys import issuer_key_set
from authserver.security.remote_jwks import RemoteDocuments, RemoteKeySets, uri_problem

#: OpenID Connect Discovery 1.0 §4: appended to the issuer, less its trailing slash.
DISCOVERY_PATH = "/.well-known/openid-configuration"


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + DISCOVERY_PATH


class DiscoveredKeyLocations(RemoteDocuments[str]):
    """Issuers' discovery documents, each kept for the one thing we need: its ``jwks_uri``.

    Keyed by the issuer exactly as tokens name it; the document must name the same issuer
    (Discovery §4.3), or a host could claim to speak for an issuer it is not.
    """

    what = "an OpenID discovery document"

    def jwks_uri(self, issuer: str) -> str:
        return self._get(issuer, None)

    def _location(self, key: str) -> str:
        return discovery_url(key)

    def _read(self, document: Any, key: str) -> str:
        if not isinstance(document, dict):
            raise ValueError("the document is not a JSON object")
        if document.get("issuer") != key:
            raise ValueError(f"its issuer is {str(document.get('issuer'))[:200]!r}, not {key!r}")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise ValueError("it has no jwks_uri")
        problem = uri_problem(jwks_uri)
        if problem is not None:
            raise ValueError(f"its jwks_uri {jwks_uri[:200]!r} {problem}")
        return jwks_uri


class IssuerKeys:
    """One worker's keys of trusted issuers; ``options`` are :class:`RemoteDocuments`'s
    (timeouts, cache bounds, clock, transport), shared by both fetchers."""

    def __init__(self, **options: Any) -> None:
        self._locations = DiscoveredKeyLocations(**options)
        self._key_sets = RemoteKeySets(read=issuer_key_set, **options)

    def key_set(self, issuer: str, jwks_uri: str | None, kid: str | None) -> KeySet:
        """``issuer``'s keys, from ``jwks_uri`` or its discovery document's. Raises
        :class:`~authserver.security.remote_jwks.KeySetUnavailable` or, for each document
        still to fetch, :class:`~authserver.security.pending.ResultPending`."""
        location = jwks_uri or self._locations.jwks_uri(issuer)
        return self._key_sets.key_set(location, kid)

    def close(self) -> None:
        self._locations.close()
        self._key_sets.close()
