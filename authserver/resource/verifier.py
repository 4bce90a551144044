"""The verifier: one issuer's keys, fetched and cached, and the RFC 9068 checks of a token."""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
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

from authserver.wellknown import (
    MAX_DOCUMENT_BYTES,
    METADATA_PATH,
    CappedBody,
    DocumentTooLarge,
    FetchConnections,
    origin,
    same_origin,
)

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

    The issuer's hosts are trusted no further than they must be. ``timeout`` is the total
    time one refresh (metadata and JWKS) may take, however slowly the bytes arrive (httpx's
    own timeouts are per read); past it the connection is shut and the callers get
    :class:`VerifierUnavailable`. A JWKS (or metadata) body over 1 MiB and a JWKS listing
    over 100 keys are refused unread. The metadata's ``jwks_uri`` must be on the issuer's
    origin (scheme, host, port); keys served elsewhere (a CDN) are used only when that URL
    is passed as ``jwks_uri``, which also skips discovery. After a failed refresh with no
    usable keys, the next attempt waits ``RETRY_AFTER_FAILURE_SECONDS`` from the END of the
    failure, so a hanging issuer costs one timeout per interval, not one per caller.

    Thread-safe, and single-flight: one refresh runs at a time (in a short-lived daemon
    thread), every caller that needs it waits for it (or for its deadline, whichever comes
    first) and all of them get its keys or its error at once. Callers whose key is cached
    and fresh never wait for a refresh.

    ``algorithms`` is the allow-list handed to joserfc; the header's ``alg`` must be in it and
    fit the key's type (no ``none``, no HMAC with a public key as the secret, no RS/ES mix-up).
    EdDSA works but joserfc warns about it on every verification (RFC 9864 deprecates it).
    ``clock`` (seconds, monotonic) times the cache, the refetch interval and the back-off;
    ``wall_clock`` (seconds since the epoch, ``time.time`` by default) is what a token's
    ``exp``, ``nbf`` and ``iat`` are compared with. Tests inject both instead of waiting. The
    deadline is always real time: it bounds real waiting.
    """

    MAX_CACHE_SECONDS = 86_400.0  # a huge max-age must not keep a revoked key trusted for long
    STALE_IF_ERROR_SECONDS = 3_600.0
    RETRY_AFTER_FAILURE_SECONDS = 5.0  # with no keys at all, do not queue a fetch per request
    #: A JWKS holds a handful of keys (ours: the active one and a few staged or retired); a
    #: bigger document, or more keys, is an attack on the API's memory or CPU, not a key set.
    MAX_DOCUMENT_BYTES = MAX_DOCUMENT_BYTES
    MAX_KEYS = 100

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
        jwks_uri: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        algorithms = tuple(algorithms)
        if not algorithms:
            raise ValueError("algorithms must name at least one algorithm")
        for alg in algorithms:
            if alg == "none" or alg.startswith("HS") or alg not in JWSRegistry.algorithms:
                raise ValueError(f"{alg!r} is not an asymmetric JWS algorithm")
        if not 0 < timeout < math.inf:
            raise ValueError("timeout must be a positive number of seconds")
        if jwks_uri is not None and origin(jwks_uri) is None:
            raise ValueError("jwks_uri must be an http(s) URL")
        self.issuer = issuer
        self.audience = audience
        self.algorithms = algorithms
        self.leeway = leeway
        self.refetch_interval = refetch_interval
        self.default_max_age = default_max_age
        self.timeout = float(timeout)
        self._http = http_client or httpx.Client(timeout=timeout)
        self._clock = clock
        self._wall_clock = wall_clock
        # Not strict about header names: RFC 7515 says to ignore unknown ones (``crit`` is
        # still enforced by joserfc).
        self._jws_registry = JWSRegistry(algorithms=list(algorithms), strict_check_header=False)
        # Built once: a registry per call was a tenth of a warm verification.
        options: dict[str, Any] = {name: {"essential": True} for name in REQUIRED_CLAIMS}
        options["iss"]["value"] = issuer
        options["aud"]["value"] = audience
        self._claims_registry = JWTClaimsRegistry(
            now=lambda: int(self._wall_clock()), leeway=leeway, **options
        )
        self._lock = threading.Lock()
        self._jwks_uri = jwks_uri
        self._keys: dict[str, Key] | None = None
        self._etag: str | None = None
        self._fetched_at = 0.0  # when the cached keys were last confirmed by the issuer
        self._expires_at = 0.0
        self._last_attempt = float("-inf")  # when the last refresh ended
        self._failed_at = float("-inf")  # when the last refresh that left no keys ended
        self._refresh: _Refresh | None = None  # the one refresh in flight

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
        try:
            self._claims_registry.validate(claims)
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
            now = self._clock()
            keys = self._keys
            fresh = keys is not None and now < self._expires_at
            if fresh and keys is not None and kid in keys:
                return keys[kid]
            refresh = self._refresh
            if refresh is None:
                if fresh and now - self._last_attempt < self.refetch_interval:
                    return None  # an unknown kid, and the JWKS was asked for a moment ago
                if keys is None and now - self._failed_at < self.RETRY_AFTER_FAILURE_SECONDS:
                    raise VerifierUnavailable("the issuer's keys could not be fetched")
                refresh = self._refresh = _Refresh(now, time.monotonic() + self.timeout)
                threading.Thread(
                    target=self._run, args=(refresh,), name="jwks-refresh", daemon=True
                ).start()
        if not refresh.done.wait(max(0.0, refresh.deadline - time.monotonic())):
            late = VerifierUnavailable(f"fetching the keys took over {self.timeout:g} s")
            self._settle(refresh, late)
            refresh.connections.cut()
        return refresh.key(kid)

    def _run(self, refresh: _Refresh) -> None:
        """The refresh itself, in its own thread so that no caller waits past the deadline
        even if the connection cannot be cut (one the HTTP client reused)."""
        outcome: _Fetched | VerifierUnavailable
        try:
            outcome = self._fetch_jwks(refresh.connections)
        except VerifierUnavailable as error:
            outcome = error
        except Exception as error:  # a thread's exception would be lost: report it instead
            logger.exception("fetching the JWKS failed unexpectedly")
            outcome = VerifierUnavailable(f"fetching the keys failed: {type(error).__name__}")
        self._settle(refresh, outcome)

    def _settle(self, refresh: _Refresh, outcome: _Fetched | VerifierUnavailable) -> None:
        """Publish a refresh's outcome to the cache and to its waiters, once: the first of
        the fetch and a waiter past the deadline wins. The back-off and the refetch interval
        count from now, the END of the fetch, so a slow failure is followed by a full
        interval; freshness counts from when the request was sent (RFC 9111 §4.2.3)."""
        with self._lock:
            if self._refresh is not refresh:
                return
            self._refresh = None
            now = self._clock()
            self._last_attempt = now
            if isinstance(outcome, VerifierUnavailable):
                refresh.keys = self._failed(outcome, now)
                refresh.error = outcome if refresh.keys is None else None
            else:
                self._keys = refresh.keys = outcome.keys
                self._etag = outcome.etag
                self._fetched_at = refresh.started
                max_age = cache_max_age(outcome.cache_control, self.default_max_age)
                self._expires_at = refresh.started + min(max_age, self.MAX_CACHE_SECONDS)
            refresh.done.set()

    def _failed(self, error: VerifierUnavailable, now: float) -> dict[str, Key] | None:
        """Under the lock: the recent keys to keep using after a failed refresh, or None."""
        if self._keys is not None and now - self._fetched_at < self.STALE_IF_ERROR_SECONDS:
            logger.warning("refreshing the JWKS failed (%s); using the cached keys", error)
            self._expires_at = max(self._expires_at, now + self.refetch_interval)
            return self._keys
        self._keys = None
        self._failed_at = now
        logger.warning("fetching the JWKS failed: %s", error)
        return None

    def _fetch_jwks(self, connections: FetchConnections) -> _Fetched:
        """GET the JWKS (discovering its URL first if need be); no cache state is changed."""
        jwks_uri = self._jwks_uri or self._discover_jwks_uri(connections)
        headers = {"Accept": "application/json"}
        cached, etag = self._keys, self._etag
        if etag and cached is not None:
            headers["If-None-Match"] = etag
        response, body = self._get(jwks_uri, headers, connections)
        cache_control = response.headers.get("Cache-Control")
        if response.status_code == 304 and cached is not None:
            return _Fetched(cached, etag, cache_control)
        listed = self._json(response, body, "JWKS").get("keys")
        if isinstance(listed, list) and len(listed) > self.MAX_KEYS:
            raise VerifierUnavailable(f"the JWKS lists more than {self.MAX_KEYS} keys")
        keys = _import_keys(listed)
        if not keys:
            raise VerifierUnavailable("the JWKS holds no usable keys")
        return _Fetched(keys, response.headers.get("ETag"), cache_control)

    def _discover_jwks_uri(self, connections: FetchConnections) -> str:
        url = self.issuer.rstrip("/") + METADATA_PATH
        response, body = self._get(url, {"Accept": "application/json"}, connections)
        metadata = self._json(response, body, "metadata")
        if metadata.get("issuer") != self.issuer:
            # RFC 8414 §3.3: a mismatch means a misconfigured API or an impostor server.
            raise VerifierUnavailable("the metadata names a different issuer")
        jwks_uri = metadata.get("jwks_uri")
        if not isinstance(jwks_uri, str) or origin(jwks_uri) is None:
            raise VerifierUnavailable("the metadata has no jwks_uri")
        if not same_origin(jwks_uri, self.issuer):
            raise VerifierUnavailable(
                "the metadata's jwks_uri is not on the issuer's origin "
                "(pass jwks_uri= to trust keys served elsewhere)"
            )
        self._jwks_uri = jwks_uri
        return jwks_uri

    def _get(
        self, url: str, headers: dict[str, str], connections: FetchConnections
    ) -> tuple[httpx.Response, bytes]:
        """The response and its body, at most ``MAX_DOCUMENT_BYTES`` of it. Each request
        gets a connection of its own (``Connection: close``), so that the deadline can cut
        it; a fetch every few minutes does not need keep-alive."""
        headers = {**headers, "Connection": "close", "Accept-Encoding": "identity"}
        extensions = {"trace": connections.trace}
        try:
            with self._http.stream("GET", url, headers=headers, extensions=extensions) as response:
                body = CappedBody(response.headers.get("Content-Length"), self.MAX_DOCUMENT_BYTES)
                for chunk in response.iter_bytes():
                    body.add(chunk)
                return response, bytes(body.content)
        except DocumentTooLarge:
            raise VerifierUnavailable(
                f"the response is over {self.MAX_DOCUMENT_BYTES} bytes"
            ) from None
        except httpx.HTTPError as error:
            if connections.was_cut:
                raise VerifierUnavailable(f"GET {url} took over {self.timeout:g} s") from None
            raise VerifierUnavailable(f"GET {url} failed: {type(error).__name__}") from None

    @staticmethod
    def _json(response: httpx.Response, body: bytes, what: str) -> dict[str, Any]:
        if response.status_code != 200:
            raise VerifierUnavailable(f"the {what} request answered {response.status_code}")
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: nesting too deep to parse
            document = None
        if not isinstance(document, dict):
            raise VerifierUnavailable(f"the {what} is not a JSON object")
        return document


@dataclass(frozen=True)
class _Fetched:
    """A successful fetch: the keys (the cached ones again after a 304) and the response's
    caching headers."""

    keys: dict[str, Key]
    etag: str | None
    cache_control: str | None


class _Refresh:
    """One refresh in flight: when it started (by the verifier's clock), its deadline (real
    time), its connections, and (once ``done``) its outcome, which every caller that waited
    for it shares."""

    def __init__(self, started: float, deadline: float) -> None:
        self.started = started
        self.deadline = deadline
        self.connections = FetchConnections()
        self.done = threading.Event()
        self.keys: dict[str, Key] | None = None
        self.error: VerifierUnavailable | None = None

    def key(self, kid: str) -> Key | None:
        if self.error is not None:
            # A new instance per waiter, so that tracebacks do not pile up on one object.
            raise VerifierUnavailable(str(self.error))
        return (self.keys or {}).get(kid)


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
