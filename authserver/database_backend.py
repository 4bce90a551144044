"""The OAuth layer's :class:`~authserver.oauth.backend.Backend`, built on the database, the
key ring, the failure limits and the audit log: the one place where the protocol code meets
storage, so neither imports the other.

Every database call goes through the worker's :class:`DatabaseGuard`, so none waits more
than its timeout; while the database is unreachable, what the worker last read answers
(within the outage grace) and anything else is a 503 ``temporarily_unavailable``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from joserfc.jwk import KeySet
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from authserver.audit import audit_event
from authserver.database import allow_long_statements
from authserver.http.request_ids import current_request_id
from authserver.models import Trust
from authserver.oauth.clients import OAuthClient
from authserver.oauth.errors import TemporarilyUnavailableError
from authserver.oauth.trusts import TrustRule
from authserver.security.failure_limits import FailureLimiter
from authserver.security.issuer_keys import IssuerKeys
from authserver.security.keyring import KeyRingLoader
from authserver.security.keys import SigningKey
from authserver.security.quotas import TokenQuotas
from authserver.security.remote_jwks import MAX_URI_LENGTH, KeySetUnavailable, RemoteKeySets
from authserver.security.secrets import RememberingVerifier, unless_locked
from authserver.services import registrations, revocations
from authserver.services import trusts as trust_service
from authserver.services.assertion_ledger import AssertionLedger, ledger_for
from authserver.services.database_guard import (
    BACKGROUND_CALL_TIMEOUT_SECONDS,
    RETRY_AFTER_SECONDS,
    DatabaseGuard,
    DatabaseUnreachable,
    in_session,
)
from authserver.services.issuance import IssuanceWatch
from authserver.services.key_retention import RetentionCache
from authserver.services.registration_cache import FreshCache, RegistrationCache
from authserver.services.registrations import Registration
from authserver.services.revocation_list import RevocationList
from authserver.services.usage import UsageRecorder

T = TypeVar("T")


def read_through(
    database: DatabaseGuard,
    engine: Engine,
    work: Callable[[Session], T],
    timeout: float | None = None,
) -> T:
    """``work`` in a session of its own on ``engine``, through the guard."""
    return database.call(in_session(engine, work), timeout)


def _unavailable(why: str) -> TemporarilyUnavailableError:
    return TemporarilyUnavailableError(
        f"The database is unreachable and {why}; retry shortly.",
        retry_after=RETRY_AFTER_SECONDS,
    )


def trust_rule(trust: Trust) -> TrustRule:
    """A stored trust, detached from its session, as the protocol code applies it."""
    return TrustRule(
        trust_id=trust.trust_id,
        client_id=trust.client_id,
        issuer=trust.issuer,
        subject=trust.subject,
        audience=trust.audience,
        jwks_uri=trust.jwks_uri,
        allow_reuse=trust.allow_reuse,
        max_lifetime=trust.max_lifetime,
    )


def oauth_client(found: Registration) -> OAuthClient:
    return OAuthClient(
        client_id=found.client_id,
        scopes=found.scopes,
        audiences=found.audiences,
        token_ttl=found.token_ttl,
        auth_method=found.auth_method,
        key_set=found.key_set,
        jwks_uri=found.jwks_uri,
        max_tokens_per_hour=found.max_tokens_per_hour,
    )


@dataclass(frozen=True)
class DatabaseBackend:
    """One worker's backend. It holds the app's engine itself, so a request needs no Flask
    app context (pushing and tearing one down cost ~50 calls per token request)."""

    engine: Engine
    keys: KeyRingLoader
    retention: RetentionCache
    usage: UsageRecorder
    failure_limiter: FailureLimiter | None
    database: DatabaseGuard
    revocations: RevocationList
    registrations: RegistrationCache = field(init=False)
    trusts: FreshCache[tuple[TrustRule, ...]] = field(init=False)
    assertion_ledger: AssertionLedger = field(init=False)
    remote_keys: RemoteKeySets
    issuer_keys: IssuerKeys
    quotas: TokenQuotas
    verify_secret: RememberingVerifier = field(default_factory=RememberingVerifier)
    issuance: IssuanceWatch = field(default_factory=IssuanceWatch)
    outage_grace: float = 0.0

    def __post_init__(self) -> None:
        cache = RegistrationCache(self._load_registration, outage_grace=self.outage_grace)
        object.__setattr__(self, "registrations", cache)
        trusts = FreshCache[tuple[TrustRule, ...]](
            self._load_trusts,
            empty=(),
            max_key_length=MAX_URI_LENGTH,
            outage_grace=self.outage_grace,
        )
        object.__setattr__(self, "trusts", trusts)
        object.__setattr__(self, "assertion_ledger", ledger_for(self.engine, self.database))

    def read(self, work: Callable[[Session], T], timeout: float | None = None) -> T:
        return read_through(self.database, self.engine, work, timeout)

    def _load_registration(self, client_id: str) -> Registration | None:
        return self.read(lambda session: registrations.registration(session, client_id))

    def _load_trusts(self, issuer: str) -> tuple[TrustRule, ...]:
        return self.read(
            lambda session: tuple(trust_rule(t) for t in trust_service.trusts_of(session, issuer))
        )

    def _registration(self, client_id: str) -> Registration | None:
        try:
            return self.registrations.get(client_id)
        except DatabaseUnreachable:
            raise _unavailable("this server has not seen this client recently") from None

    def verify_credentials(
        self, client_id: str, secret: str, *, locked: Callable[[], bool]
    ) -> OAuthClient | None:
        found = self._registration(client_id)
        now = datetime.now(UTC)
        verify = unless_locked(self.verify_secret, locked)
        found = registrations.accepted(found, secret, now, verify)
        if found is None:
            return None
        self.usage.record(client_id, now)
        return oauth_client(found)

    def find_client(self, client_id: str) -> OAuthClient | None:
        found = self._registration(client_id)
        return oauth_client(found) if found is not None and found.enabled else None

    def client_keys(self, client: OAuthClient, kid: str | None) -> KeySet:
        if client.key_set is not None:
            return client.key_set
        if client.jwks_uri is None:
            raise KeySetUnavailable("the client has no keys registered")
        return self.remote_keys.key_set(client.jwks_uri, kid)

    def accept_assertion(
        self, issuer: str, jti: str | None, expires_at: datetime, *, client_id: str
    ) -> bool:
        fresh = True
        if jti is not None:
            try:
                fresh = self.assertion_ledger.spend(issuer, jti, expires_at)
            except DatabaseUnreachable:
                raise _unavailable("used assertions cannot be recorded") from None
        if fresh:
            self.usage.record(client_id, datetime.now(UTC))
        return fresh

    def trusts_for(self, issuer: str) -> tuple[TrustRule, ...]:
        try:
            return self.trusts.get(issuer)
        except DatabaseUnreachable:
            raise _unavailable("this server has not seen this issuer's trusts recently") from None

    def trust_keys(self, trust: TrustRule, kid: str | None) -> KeySet:
        return self.issuer_keys.key_set(trust.issuer, trust.jwks_uri, kid)

    def token_issued(self, client_id: str, expires_in: int, address: str) -> None:
        self.issuance.record(client_id, expires_in, address)

    def take_token(self, client_id: str, per_hour: int) -> int | None:
        return self.quotas.take(client_id, per_hour)

    def published_keys(self) -> Sequence[SigningKey]:
        return self.keys.current().published(datetime.now(UTC), self.retention.current())

    def client_retry_after(self, client_id: str) -> int | None:
        if self.failure_limiter is None:
            return None
        return self.failure_limiter.client_retry_after(client_id)

    def record_authentication_failure(self, client_id: str | None, address: str) -> int | None:
        if self.failure_limiter is None:
            return None
        return self.failure_limiter.record_failure(client_id, address)

    def client_is_active(self, client_id: str) -> bool:
        found = self._registration(client_id)
        return found is not None and found.enabled

    def is_revoked(self, jti: str) -> bool:
        """From this worker's copy of the deny-list. The revocation poll keeps it current; an
        app without one (or whose polls failed longer than the grace) polls here first."""
        if not self.revocations.usable():
            try:
                self.sync_revocations()
            except DatabaseUnreachable:
                raise _unavailable("this server's list of revoked tokens is out of date") from None
        return self.revocations.is_revoked(jti)

    def sync_revocations(self, *, background: bool = False) -> None:
        """One poll of the deny-list (see :class:`RevocationList`). The background poll may
        wait longer than a request: a full reload of a large deny-list takes its time."""
        timeout = BACKGROUND_CALL_TIMEOUT_SECONDS if background else None

        def fetch(since: datetime | None) -> list[tuple[str, datetime]]:
            now = datetime.now(UTC)

            def work(session: Session) -> list[tuple[str, datetime]]:
                if background:
                    allow_long_statements(session, BACKGROUND_CALL_TIMEOUT_SECONDS)
                return revocations.revoked_since(session, since, now)

            return self.read(work, timeout)

        self.revocations.sync(fetch)

    def revoke(self, jti: str, client_id: str, expires_at: datetime) -> bool:
        try:
            newly = self.read(
                lambda session: revocations.revoke(
                    session, jti=jti, client_id=client_id, expires_at=expires_at
                )
            )
        except DatabaseUnreachable:
            raise _unavailable("revocations cannot be recorded") from None
        self.revocations.add(jti, expires_at)
        return newly

    def record(self, event: str, *, outcome: str, client_id: str | None, **details: Any) -> None:
        audit_event(
            event,
            outcome=outcome,
            client_id=client_id,
            request_id=current_request_id(),
            **details,
        )
