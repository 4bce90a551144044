"""Signing-key operations for the CLI and the server start-up."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from authserver.security.keyring import KeyRing, KeyStatus
from authserver.security.keys import KeyStore, SigningKey
from authserver.services.formatting import iso_utc


def ensure_signing_key(store: KeyStore) -> SigningKey | None:
    """Create the first key, active at once, when the folder has none; return it if created."""
    store.ensure_directory()
    if store.load_all():
        return None
    return store.generate()


def key_statuses(store: KeyStore, now: datetime | None = None) -> list[KeyStatus]:
    return KeyRing(tuple(store.load_all())).statuses(now or datetime.now(UTC))


def key_view(status: KeyStatus) -> dict[str, Any]:
    """The public key object of the contract; never any private material."""
    return {
        "kid": status.key.kid,
        "alg": status.key.alg,
        "state": status.state,
        "created_at": iso_utc(status.key.created_at),
        "activates_at": iso_utc(status.key.activates_at),
        "retires_at": iso_utc(status.retires_at),
    }
