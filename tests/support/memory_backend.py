"""The OAuth layer driven in memory: a :class:`~authserver.oauth.backend.Backend` held in plain
dicts, Authlib's server built around it with a hand-moved clock, and helpers that hand it a
form as the HTTP layer would.

It exists so the protocol's cases can be tested without a server, a database, Flask or real
time: a test registers clients, moves the clock and reads back the audit events and the
deny-list directly. Its semantics mirror :class:`authserver.database_backend.DatabaseBackend`
where the protocol defines them; the failed-authentication limit is simpler than
:class:`~authserver.security.failure_limits.FailureLimiter` (one fixed window per client id,
opened by its first failure) but answers the protocol's questions the same way.
"""

from __future__ import annotations

import hmac
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote_plus

from joserfc.jwk import KeySet

from authserver.http.routes import ROUTES
from authserver.oauth.backend import Backend
from authserver.oauth.clients import (
    CLIENT_SECRET_BASIC,
    CLIENT_SECRET_POST,
    GRANT_TYPE,
    PRIVATE_KEY_JWT,
    OAuthClient,
)
from authserver.oauth.requests import FormRequest
from authserver.oauth.server import (
    TOKEN_ENDPOINT,
    AuthorizationServer,
    Response,
)
from authserver.oauth.tokens import AccessTokenGenerator
from authserver.oauth.trusts import TrustRule
from authserver.security.keys import SigningKey
from authserver.security.remote_jwks import KeySetUnavailable
from authserver.security.secrets import VerifierBusyError

ISSUER = "https://auth.example.test"
#: Distinct from the issuer so a test can tell which one ended up in ``aud``.
DEFAULT_AUDIENCE = "https://default.example.test"
DEFAULT_TTL = 1800
#: 2026-01-01T00:00:00Z: the fake clock's start, in epoch seconds as the token claims use.
EPOCH = 1_767_225_600.0
#: The contract's per-client limit: from the 11th failure within a minute the id is locked.
LOCK_THRESHOLD = 10
LOCK_WINDOW_SECONDS = 60
CLIENT_ADDRESS = "192.0.2.10"

#: Where each endpoint is served; the URI plays no part in the grant, but FormRequest needs one.
#: The route table's paths by endpoint name (routes.py is plain data: no Flask is loaded).
ENDPOINT_PATHS = {route.handler: route.path for route in ROUTES}

Form = Mapping[str, str | Sequence[str]]


@dataclass
class MemoryClient:
    """A registration as the backend holds it, secret in plaintext (this is test storage).

    ``chosen_secret`` marks an admin-chosen secret: the real backend stores it as Argon2id and
    does not check it while the id is locked (:func:`authserver.security.secrets.unless_locked`),
    so its right secret is refused then too; a generated secret is always checked.
    """

    client_id: str
    secret: str
    scopes: tuple[str, ...] = ("api",)
    audiences: tuple[str, ...] = ()
    token_ttl: int | None = None
    enabled: bool = True
    chosen_secret: bool = False
    #: A private_key_jwt client's public keys (its ``secret`` is then unused).
    key_set: KeySet | None = None
    max_tokens_per_hour: int | None = None

    def oauth_client(self) -> OAuthClient:
        return OAuthClient(
            client_id=self.client_id,
            scopes=self.scopes,
            audiences=self.audiences,
            token_ttl=self.token_ttl,
            auth_method=CLIENT_SECRET_BASIC if self.key_set is None else PRIVATE_KEY_JWT,
            key_set=self.key_set,
            max_tokens_per_hour=self.max_tokens_per_hour,
        )


@dataclass(frozen=True)
class AuditEvent:
    event: str
    outcome: str
    client_id: str | None
    details: dict[str, Any]


@dataclass(frozen=True)
class Revocation:
    client_id: str
    expires_at: datetime


@dataclass
class FailureWindow:
    """Failures of one client id counted from ``started`` for ``LOCK_WINDOW_SECONDS``."""

    started: float
    count: int = 0


@dataclass
class MemoryBackend:
    """Everything :class:`~authserver.oauth.backend.Backend` asks for, in dicts and lists.

    ``signing_key`` is not part of the protocol: it is what the token generator signs with
    (the real server's key ring's active key), kept here so a test can unload it.
    """

    clock: Callable[[], float]
    clients: dict[str, MemoryClient] = field(default_factory=dict)
    #: The keys whose signatures still count (the JWKS), in any order.
    keys: list[SigningKey] = field(default_factory=list)
    signing_key: SigningKey | None = None
    revocations: dict[str, Revocation] = field(default_factory=dict)
    lock_threshold: int = LOCK_THRESHOLD
    lock_window_seconds: int = LOCK_WINDOW_SECONDS
    client_failures: dict[str, FailureWindow] = field(default_factory=dict)
    address_failures: Counter[str] = field(default_factory=Counter)
    events: list[AuditEvent] = field(default_factory=list)
    #: When True, every credential check answers as a worker with no free Argon2id turn.
    busy: bool = False
    #: Spent assertions: (issuer, jti) → when they expire.
    used_assertions: dict[tuple[str, str], datetime] = field(default_factory=dict)
    #: Workload identity trusts, and each trusted issuer's keys (by issuer).
    trusts: list[TrustRule] = field(default_factory=list)
    issuer_keys: dict[str, KeySet] = field(default_factory=dict)
    #: Clients counted as used (a right secret, or an accepted assertion).
    used_clients: list[str] = field(default_factory=list)
    #: Tokens counted against quotas: client id → times taken (the window is the test's).
    quota_taken: Counter[str] = field(default_factory=Counter)
    #: Every token issued: (client id, expires_in, address).
    issued: list[tuple[str, int, str]] = field(default_factory=list)

    def register(self, client_id: str, secret: str, **fields: Any) -> MemoryClient:
        client = MemoryClient(client_id, secret, **fields)
        self.clients[client_id] = client
        return client

    # --- the Backend protocol ------------------------------------------------------------

    def verify_credentials(
        self, client_id: str, secret: str, *, locked: Callable[[], bool]
    ) -> OAuthClient | None:
        """As the real one: a disabled client never matches, and ``locked`` is asked only for
        an admin-chosen secret (which then counts as wrong, unchecked)."""
        if self.busy:
            raise VerifierBusyError
        client = self.clients.get(client_id)
        if client is None or not client.enabled:
            return None
        if client.chosen_secret and locked():
            return None
        if not hmac.compare_digest(secret.encode(), client.secret.encode()):
            return None
        return client.oauth_client()

    def published_keys(self) -> Sequence[SigningKey]:
        return tuple(self.keys)

    def find_client(self, client_id: str) -> OAuthClient | None:
        client = self.clients.get(client_id)
        return client.oauth_client() if client is not None and client.enabled else None

    def client_keys(self, client: OAuthClient, kid: str | None) -> KeySet:
        if client.key_set is None:
            raise KeySetUnavailable("the client has no keys registered")
        return client.key_set

    def accept_assertion(
        self, issuer: str, jti: str | None, expires_at: datetime, *, client_id: str
    ) -> bool:
        fresh = (
            jti is None or self.used_assertions.setdefault((issuer, jti), expires_at) is expires_at
        )
        if fresh:
            self.used_clients.append(client_id)
        return fresh

    def trusts_for(self, issuer: str) -> Sequence[TrustRule]:
        return tuple(trust for trust in self.trusts if trust.issuer == issuer)

    def trust_keys(self, trust: TrustRule, kid: str | None) -> KeySet:
        key_set = self.issuer_keys.get(trust.issuer)
        if key_set is None:
            raise KeySetUnavailable(f"{trust.issuer}: no keys published")
        return key_set

    def token_issued(self, client_id: str, expires_in: int, address: str) -> None:
        self.issued.append((client_id, expires_in, address))

    def take_token(self, client_id: str, per_hour: int) -> int | None:
        """A quota over the whole test (an hour is longer than any test): the next token
        after ``per_hour`` waits an hour."""
        if self.quota_taken[client_id] >= per_hour:
            return 3600
        self.quota_taken[client_id] += 1
        return None

    def client_retry_after(self, client_id: str) -> int | None:
        """Whole seconds left in the window (at least 1) once it holds the threshold."""
        window = self.client_failures.get(client_id)
        if window is None or window.count < self.lock_threshold:
            return None
        left = window.started + self.lock_window_seconds - self.clock()
        return max(1, math.ceil(left)) if left > 0 else None

    def record_authentication_failure(self, client_id: str | None, address: str) -> int | None:
        """The lock as it stood before this failure, as FailureLimiter's ``hit`` answers: the
        failure that reaches the threshold is still a 401, the one after it the first 429."""
        self.address_failures[address] += 1
        if client_id is None:
            return None
        retry_after = self.client_retry_after(client_id)
        window = self.client_failures.get(client_id)
        if window is None or self.clock() >= window.started + self.lock_window_seconds:
            window = self.client_failures[client_id] = FailureWindow(started=self.clock())
        window.count += 1
        return retry_after

    def client_is_active(self, client_id: str) -> bool:
        client = self.clients.get(client_id)
        return client is not None and client.enabled

    def is_revoked(self, jti: str) -> bool:
        """Presence only, as in the database: expired entries are purged by maintenance, and
        an expired token is inactive whatever the deny-list says."""
        return jti in self.revocations

    def revoke(self, jti: str, client_id: str, expires_at: datetime) -> bool:
        if jti in self.revocations:
            return False
        self.revocations[jti] = Revocation(client_id, expires_at)
        return True

    def record(self, event: str, *, outcome: str, client_id: str | None, **details: Any) -> None:
        self.events.append(AuditEvent(event, outcome, client_id, details))


def build_server(
    backend: MemoryBackend,
    clock: Callable[[], float],
    *,
    issuer: str = ISSUER,
    default_audience: str = DEFAULT_AUDIENCE,
    default_ttl: int = DEFAULT_TTL,
) -> AuthorizationServer:
    """Authlib's server and our token generator around ``backend``, both on ``clock``.

    Wired as :meth:`authserver.runtime.Runtime.build` wires the real one, except for the clock
    (epoch seconds, moved by the test) and where the signing key comes from.
    """
    protocol: Backend = backend  # mypy checks here that MemoryBackend conforms to the Protocol
    generator = AccessTokenGenerator(issuer, lambda: backend.signing_key, default_ttl, clock=clock)
    return AuthorizationServer(
        protocol,
        generator,
        issuer=issuer,
        default_audience=default_audience,
        token_endpoint=f"{issuer}{ENDPOINT_PATHS[TOKEN_ENDPOINT]}",
        clock=clock,
    )


def form_request(
    server: AuthorizationServer,
    endpoint: str,
    form: Form,
    *,
    basic: tuple[str, str] | None = None,
    authorization_scheme: str | None = None,
    remote_addr: str = CLIENT_ADDRESS,
) -> FormRequest:
    """The request the HTTP layer would build for this form POST.

    ``basic`` is the plaintext (id, secret) a client puts in ``Authorization: Basic``; it is
    form-urlencoded first, as RFC 6749 §2.3.1 asks clients to and as the HTTP layer hands it
    on. ``authorization_scheme`` alone (no ``basic``) stands for a header that is not valid
    Basic credentials. Single values become one-element lists, as the form parser gives them.
    """
    values = {
        name: [value] if isinstance(value, str) else list(value) for name, value in form.items()
    }
    encoded = None
    if basic is not None:
        encoded = (quote_plus(basic[0]), quote_plus(basic[1]))
        authorization_scheme = authorization_scheme or "basic"
    return FormRequest(
        endpoint_uri=f"{server.issuer}{ENDPOINT_PATHS[endpoint]}",
        form=values,
        authorization_scheme=authorization_scheme,
        basic=encoded,
        remote_addr=remote_addr,
    )


def post(
    server: AuthorizationServer,
    endpoint: str,
    form: Form,
    *,
    basic: tuple[str, str] | None = None,
    authorization_scheme: str | None = None,
    remote_addr: str = CLIENT_ADDRESS,
) -> Response:
    """``(status, body, headers)`` for a form POST to ``endpoint`` (see :func:`form_request`)."""
    request = form_request(
        server,
        endpoint,
        form,
        basic=basic,
        authorization_scheme=authorization_scheme,
        remote_addr=remote_addr,
    )
    return server.handle(endpoint, request)


def token(
    server: AuthorizationServer, form: Form, *, basic: tuple[str, str] | None = None, **kw: Any
) -> Response:
    """A POST to the token endpoint (the other endpoints: :func:`post` or :func:`post_as`)."""
    return post(server, TOKEN_ENDPOINT, form, basic=basic, **kw)


def header(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    """The value of ``name`` (case-insensitive) in a response's header list, if present."""
    found = [value for key, value in headers if key.lower() == name.lower()]
    assert len(found) <= 1, f"{name} appears {len(found)} times"
    return found[0] if found else None


def post_as(
    server: AuthorizationServer,
    endpoint: str,
    client: MemoryClient | None,
    form: Form,
    method: str = CLIENT_SECRET_BASIC,
    **kw: Any,
) -> Response:
    """POST ``form`` authenticating ``client`` with ``method`` (nobody: ``None``)."""
    if client is None:
        return post(server, endpoint, form, **kw)
    if method == CLIENT_SECRET_BASIC:
        return post(server, endpoint, form, basic=(client.client_id, client.secret), **kw)
    assert method == CLIENT_SECRET_POST, method
    body = {**form, "client_id": client.client_id, "client_secret": client.secret}
    return post(server, endpoint, body, **kw)


def issue(server: AuthorizationServer, client: MemoryClient, **form: str | list[str]) -> str:
    """A client_credentials access token for ``client`` (client_secret_basic)."""
    status, body, _ = token(
        server, {"grant_type": GRANT_TYPE, **form}, basic=(client.client_id, client.secret)
    )
    assert status == 200, body
    access_token: str = body["access_token"]
    return access_token
