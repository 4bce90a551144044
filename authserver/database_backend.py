"""The OAuth layer's :class:`~authserver.oauth.backend.Backend`, built on the database, the
key ring, the failure limits and the audit log: the one place where the protocol code meets
storage, so neither imports the other."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from authserver.audit import audit_event
from authserver.extensions import db
from authserver.http.request_ids import current_request_id
from authserver.oauth.clients import OAuthClient
from authserver.security.failure_limits import FailureLimiter
from authserver.security.keyring import KeyRingLoader
from authserver.security.keys import SigningKey
from authserver.security.secrets import RememberingVerifier, unless_locked
from authserver.services import registrations, revocations
from authserver.services.key_retention import RetentionCache
from authserver.services.registration_cache import RegistrationCache
from authserver.services.registrations import Registration
from authserver.services.usage import UsageRecorder


def _load_registration(client_id: str) -> Registration | None:
    return registrations.registration(db.session(), client_id)


def _oauth_client(found: Registration) -> OAuthClient:
    return OAuthClient(
        client_id=found.client_id,
        scopes=found.scopes,
        audiences=found.audiences,
        token_ttl=found.token_ttl,
    )


@dataclass(frozen=True)
class DatabaseBackend:
    """One worker's backend; the caller provides the Flask app context (the session)."""

    keys: KeyRingLoader
    retention: RetentionCache
    usage: UsageRecorder
    failure_limiter: FailureLimiter | None
    registrations: RegistrationCache = field(
        default_factory=lambda: RegistrationCache(_load_registration)
    )
    verify_secret: RememberingVerifier = field(default_factory=RememberingVerifier)

    def verify_credentials(
        self, client_id: str, secret: str, *, locked: Callable[[], bool]
    ) -> OAuthClient | None:
        now = datetime.now(UTC)
        verify = unless_locked(self.verify_secret, locked)
        found = registrations.accepted(self.registrations.get(client_id), secret, now, verify)
        if found is None:
            return None
        self.usage.record(client_id, now)
        return _oauth_client(found)

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
        found = self.registrations.get(client_id)
        return found is not None and found.enabled

    def is_revoked(self, jti: str) -> bool:
        return revocations.is_revoked(db.session(), jti)

    def revoke(self, jti: str, client_id: str, expires_at: datetime) -> bool:
        newly = revocations.revoke(
            db.session(), jti=jti, client_id=client_id, expires_at=expires_at
        )
        db.session.commit()
        return newly

    def record(self, event: str, *, outcome: str, client_id: str | None, **details: Any) -> None:
        audit_event(
            event,
            outcome=outcome,
            client_id=client_id,
            request_id=current_request_id(),
            **details,
        )
