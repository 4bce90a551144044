"""What the OAuth layer needs from storage and the outside world, as one interface.

The HTTP layer implements it with the database, the key ring and the audit log; the OAuth
code never imports Flask or SQLAlchemy. A method that cannot answer for want of its storage
(a database outage past what the implementation remembers) raises
:class:`~authserver.oauth.errors.TemporarilyUnavailableError`, which the endpoints send as
their 503.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from joserfc.jwk import KeySet

from authserver.oauth.clients import OAuthClient
from authserver.oauth.trusts import TrustRule
from authserver.security.keys import SigningKey


class Backend(Protocol):
    def verify_credentials(
        self, client_id: str, secret: str, *, locked: Callable[[], bool]
    ) -> OAuthClient | None:
        """The enabled client whose live secret matches, else None.

        While ``locked()`` (the per-client limit holds the id) admin-chosen secrets count as
        wrong, unchecked (:func:`~authserver.security.secrets.unless_locked`). Raises
        :class:`~authserver.security.secrets.VerifierBusyError` when an Argon2id check found
        no free turn.
        """

    def find_client(self, client_id: str) -> OAuthClient | None:
        """The registered, enabled client (None: unknown or disabled), checking nothing else:
        for an assertion, whose proof is checked against what this returns."""

    def client_keys(self, client: OAuthClient, kid: str | None) -> KeySet:
        """A key client's public keys: registered, or fetched from its ``jwks_uri`` (again
        when ``kid`` is not among them, at most every 30 s). Raises
        :class:`~authserver.security.remote_jwks.KeySetUnavailable`, or
        :class:`~authserver.security.pending.ResultPending` when a fetch must be awaited."""

    def accept_assertion(
        self, issuer: str, jti: str | None, expires_at: datetime, *, client_id: str
    ) -> bool:
        """Spend the ``jti`` of an assertion ``issuer`` signed (the client itself, or a
        trusted platform) for every worker and instance, until ``expires_at``; False if it was
        spent before (a replay). ``jti`` None: the trust accepts the token again, nothing is
        spent. Either way ``client_id`` counts as used, as with a right secret."""

    def trusts_for(self, issuer: str) -> Sequence[TrustRule]:
        """The trusts naming ``issuer`` (none: not a trusted issuer), at most a second old;
        while the database is unreachable, as last read within the outage grace."""

    def trust_keys(self, trust: TrustRule, kid: str | None) -> KeySet:
        """The trusted issuer's keys: at the trust's ``jwks_uri`` or its discovery document's
        (fetched as a client's ``jwks_uri`` is). Raises as :meth:`client_keys` does."""

    def take_token(self, client_id: str, per_hour: int) -> int | None:
        """Count one token against the client's quota of ``per_hour``; if the quota is used up,
        count nothing and return the seconds until the next token is allowed."""

    def token_issued(self, client_id: str, expires_in: int, address: str) -> None:
        """Note a token issued to ``client_id`` at ``address`` (in memory: for spotting clients
        that do not cache their tokens)."""

    def published_keys(self) -> Sequence[SigningKey]:
        """Keys whose signatures still count (next, active, retired within its window)."""

    def client_retry_after(self, client_id: str) -> int | None:
        """Seconds until ``client_id`` leaves the per-client lock, or None if it is not locked."""

    def record_authentication_failure(self, client_id: str | None, address: str) -> int | None:
        """Count a failed authentication from ``address`` (and for ``client_id`` unless None);
        seconds to wait when the client id was locked (the answer becomes 429), else None."""

    def client_is_active(self, client_id: str) -> bool:
        """Registered and enabled."""

    def is_revoked(self, jti: str) -> bool: ...

    def revoke(self, jti: str, client_id: str, expires_at: datetime) -> bool:
        """Deny-list a token until it expires; False if it already was."""

    def record(self, event: str, *, outcome: str, client_id: str | None, **details: Any) -> None:
        """Write an audit event (never a secret or a token)."""
