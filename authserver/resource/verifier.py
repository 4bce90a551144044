"""The verifier: one issuer's keys, fetched and cached, and the RFC 9068 checks of a token."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Collection
from typing import Any

import httpx
from joserfc.errors import (
    ExpiredTokenError,
    InvalidClaimError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import JWKRegistry, Key
from joserfc.jws import JWSRegistry, extract_compact, validate_compact
from joserfc.jwt import JWTClaimsRegistry

from authserver.wellknown import METADATA_PATH

logger = logging.getLogger(__name__)

#: RFC 9068 §4: the ``typ`` header, compared case-insensitively, with or without the
#: ``application/`` prefix (RFC 7515 §4.1.9).
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
#: RFC 9068 §2.2: claims every access token carries; a token without one is not ours.
REQUIRED_CLAIMS = ("iss", "sub", "aud", "exp", "iat", "jti", "client_id")


class InvalidToken(Exception):  # noqa: N818 - the RFC 6750 error name reads better here
    """The token must be refused (401 ``invalid_token``). The message is short, fixed text,
    safe to send back to the caller: it never contains the token or any part of it."""


class VerifierUnavailable(Exception):  # noqa: N818
    """The issuer's metadata or keys could not be fetched and none are cached: the token may
    well be good, so the API should answer 503, not 401."""


class JWTVerifier:
    """Verifies access tokens of one issuer for one audience.

    The signing keys come from the issuer's RFC 8414 metadata (``jwks_uri``), fetched on first
    use and cached as the JWKS response's ``Cache-Control`` says (``max-age``; ``no-store`` or
    ``no-cache``: fetched again on the next verification; no directive: ``default_max_age``).
    A token naming an unknown ``kid`` (a key rotated in with ``keys rotate --now``) fetches the
    JWKS again, but at most once per ``refetch_interval`` seconds, so forged tokens with random
    key ids cannot make the API hammer the authorization server. When a refresh fails the
    cached keys keep working for up to an hour, because the issuer stages new keys well before
    they sign.

    Thread-safe: one lock guards the key cache, and the thread that fetches holds it, so many
    threads meeting the same new ``kid`` cause one fetch.

    ``algorithms`` is the allow-list handed to joserfc; the header's ``alg`` must be in it and
    fit the key's type (no ``none``, no HMAC with a public key as the secret, no RS/ES mix-up).
    EdDSA works but joserfc warns about it on every verification (RFC 9864 deprecates it).
    """

    MAX_CACHE_SECONDS = 86_400.0  # a huge max-age must not keep a revoked key trusted for long
    STALE_IF_ERROR_SECONDS = 3_600.0
    RETRY_AFTER_FAILURE_SECONDS = 5.0  # with no keys at all, do not queue a fetch per request

    def __init__(
        self,
        issuer: str,
        audience: str,
        algorithms: Collection[str] = ("RS256",),
        *,
        leeway: int = 30,
        refetch_interval: float = 30.0,
        default_max_age: float = 300.0,
        timeout: float = 5.0,
        http_client: httpx.Client | None = None,
    ) -> None:
        algorithms = tuple(algorithms)
        if not algorithms:
            raise ValueError("algorithms must name at least one algorithm")
        for alg in algorithms:
            if alg == "none" or alg.startswith("HS") or alg not in JWSRegistry.algorithms:
                raise ValueError(f"{alg!r} is not an asymmetric JWS algorithm")
        self.issuer = issuer
        self.audience = audience
        self.algorithms = algorithms
        self.leeway = leeway
        self.refetch_interval = refetch_interval
        self.default_max_age = default_max_age
        self._http = http_client or httpx.Client(timeout=timeout)
        # Not strict about header names: RFC 7515 says to ignore unknown ones (``crit`` is
        # still enforced by joserfc).
        self._jws_registry = JWSRegistry(algorithms=list(algorithms), strict_check_header=False)
        self._lock = threading.Lock()
        self._jwks_uri: str | None = None
        self._keys: dict[str, Key] | None = None
        self._etag: str | None = None
        self._fetched_at = 0.0  # when the cached keys were last confirmed by the issuer
        self._expires_at = 0.0
        self._last_attempt = float("-inf")
        self._failed_at = float("-inf")

    def close(self) -> None:
        """Close the HTTP client (also one passed in)."""
        self._http.close()

    # -- verification ----------------------------------------------------------------------

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims, or :class:`InvalidToken`; :class:`VerifierUnavailable` when the
        keys are needed and cannot be had."""
        try:
            jws = extract_compact(token.encode("utf-8"), registry=self._jws_registry)
            header = jws.headers()
        except (JoseError, ValueError, TypeError, AttributeError):
            raise InvalidToken("malformed token") from None
        alg, kid = self._check_header(header)
        key = self._key_for(kid)
        if key is None:
            raise InvalidToken("unknown signing key")
        try:
            key.check_alg(alg)  # the JWK's own "alg", when it has one
            JWSRegistry.algorithms[alg].check_key(key)  # kty (and curve) fit the alg
        except JoseError:
            raise InvalidToken("algorithm does not match the signing key") from None
        try:
            valid = validate_compact(jws, key, registry=self._jws_registry)
        except (JoseError, ValueError, TypeError):
            valid = False
        if not valid:
            raise InvalidToken("bad signature")
        try:
            claims = json.loads(jws.payload)
        except ValueError:
            raise InvalidToken("malformed claims") from None
        if not isinstance(claims, dict):
            raise InvalidToken("malformed claims")
        self._check_claims(claims)
        return claims

    def _check_header(self, header: Any) -> tuple[str, str]:
        if not isinstance(header, dict):
            raise InvalidToken("malformed token")
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
            raise InvalidToken("not an access token (typ must be at+jwt)")
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise InvalidToken("algorithm not allowed")
        if "b64" in header or "crit" in header:
            raise InvalidToken("unsupported header")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("missing kid")
        return alg, kid

    def _check_claims(self, claims: dict[str, Any]) -> None:
        options: dict[str, Any] = {name: {"essential": True} for name in REQUIRED_CLAIMS}
        options["iss"]["value"] = self.issuer
        options["aud"]["value"] = self.audience
        try:
            JWTClaimsRegistry(leeway=self.leeway, **options).validate(claims)
        except ExpiredTokenError:
            raise InvalidToken("token expired") from None
        except MissingClaimError as error:
            raise InvalidToken(f"missing claim: {error.claim}") from None
        except InvalidClaimError as error:
            # The claim name comes from joserfc's own list (iss, aud, nbf, ...), never from
            # the token, so it is safe to repeat.
            if error.claim == "nbf":
                raise InvalidToken("token not yet valid") from None
            raise InvalidToken(f"invalid {error.claim} claim") from None
        except JoseError:
            raise InvalidToken("invalid claims") from None
        if not isinstance(claims.get("scope", ""), str):
            raise InvalidToken("invalid scope claim")

    # -- keys ------------------------------------------------------------------------------

    def _key_for(self, kid: str) -> Key | None:
        with self._lock:
            now = time.monotonic()
            keys = self._keys
            if keys is None or now >= self._expires_at:
                keys = self._refresh(now)
            key = keys.get(kid)
            if key is None and now - self._last_attempt >= self.refetch_interval:
                key = self._refresh(now).get(kid)
            return key

    def _refresh(self, now: float) -> dict[str, Key]:
        """Fetch the JWKS (under the lock); on failure keep recent keys, or raise."""
        if self._keys is None and now - self._failed_at < self.RETRY_AFTER_FAILURE_SECONDS:
            raise VerifierUnavailable("the issuer's keys could not be fetched")
        self._last_attempt = now
        try:
            return self._fetch_jwks(now)
        except VerifierUnavailable as error:
            if self._keys is not None and now - self._fetched_at < self.STALE_IF_ERROR_SECONDS:
                logger.warning("refreshing the JWKS failed (%s); using the cached keys", error)
                self._expires_at = max(self._expires_at, now + self.refetch_interval)
                return self._keys
            self._keys = None
            self._failed_at = now
            logger.warning("fetching the JWKS failed: %s", error)
            raise

    def _fetch_jwks(self, now: float) -> dict[str, Key]:
        jwks_uri = self._jwks_uri or self._discover_jwks_uri()
        headers = {"Accept": "application/json"}
        if self._etag and self._keys is not None:
            headers["If-None-Match"] = self._etag
        response = self._get(jwks_uri, headers)
        if response.status_code == 304 and self._keys is not None:
            keys = self._keys
        else:
            document = self._json(response, "JWKS")
            keys = _import_keys(document.get("keys"))
            if not keys:
                raise VerifierUnavailable("the JWKS holds no usable keys")
            self._etag = response.headers.get("ETag")
        self._keys = keys
        self._fetched_at = now
        max_age = cache_max_age(response.headers.get("Cache-Control"), self.default_max_age)
        self._expires_at = now + min(max_age, self.MAX_CACHE_SECONDS)
        return keys

    def _discover_jwks_uri(self) -> str:
        url = self.issuer.rstrip("/") + METADATA_PATH
        metadata = self._json(self._get(url, {"Accept": "application/json"}), "metadata")
        if metadata.get("issuer") != self.issuer:
            # RFC 8414 §3.3: a mismatch means a misconfigured API or an impostor server.
            raise VerifierUnavailable("the metadata names a different issuer")
        jwks_uri = metadata.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
            raise VerifierUnavailable("the metadata has no jwks_uri")
        self._jwks_uri = jwks_uri
        return jwks_uri

    def _get(self, url: str, headers: dict[str, str]) -> httpx.Response:
        try:
            return self._http.get(url, headers=headers)
        except httpx.HTTPError as error:
            raise VerifierUnavailable(f"GET {url} failed: {type(error).__name__}") from None

    @staticmethod
    def _json(response: httpx.Response, what: str) -> dict[str, Any]:
        if response.status_code != 200:
            raise VerifierUnavailable(f"the {what} request answered {response.status_code}")
        try:
            document = response.json()
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise VerifierUnavailable(f"the {what} is not a JSON object")
        return document


def _import_keys(jwks: object) -> dict[str, Key]:
    """The signing keys of a JWK Set by ``kid``; keys we cannot use are skipped (RFC 7517
    §5), not fatal, so one odd key does not lock the API out."""
    keys: dict[str, Key] = {}
    for jwk in jwks if isinstance(jwks, list) else []:
        if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
            continue
        kid = jwk.get("kid")
        if not isinstance(kid, str) or not kid or kid in keys:
            continue
        try:
            keys[kid] = JWKRegistry.import_key(jwk)
        except (JoseError, ValueError, TypeError):
            continue
    return keys


def cache_max_age(cache_control: str | None, default: float) -> float:
    """Seconds a response may be reused per its ``Cache-Control`` (RFC 9111 §5.2.2):
    ``no-store``/``no-cache`` → 0, ``max-age=N`` → N, anything else → ``default``."""
    from werkzeug.http import parse_cache_control_header  # only once keys are fetched

    # Directive names are case-insensitive (RFC 9111 §5.2); werkzeug matches them as written.
    directives = parse_cache_control_header(cache_control.lower() if cache_control else None)
    if directives.no_store or directives.no_cache:
        return 0.0
    max_age = directives.max_age
    return default if max_age is None else max(0.0, float(max_age))
