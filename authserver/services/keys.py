"""Signing-key lifecycle for the CLI and the server: first key, rotation, emergency revoke.

Every operation is a file change in the keys folder; running workers and other instances
pick it up by polling (``KeyRingLoader``), so nothing here talks to a server.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from authserver.config import Settings
from authserver.errors import KeyNotFound
from authserver.security.keyring import KeyRing, KeyStatus
from authserver.security.keys import KeyStore, SigningKey
from authserver.services.formatting import iso_utc


def key_store(settings: Settings) -> KeyStore:
    return KeyStore(settings.keys_dir, settings.key_passphrase)


def retention(settings: Settings, longest_token_ttl: int) -> timedelta:
    """How long a key stays published after it stops signing.

    Its last tokens live ``longest_token_ttl`` more seconds, and a resource server may serve
    them from a JWKS fetched just before, cached for ``jwks_max_age``.
    """
    return timedelta(seconds=longest_token_ttl + settings.jwks_max_age)


def ensure_signing_key(settings: Settings) -> SigningKey | None:
    """Create a key signing at once when none can sign now; return it if created.

    Loads every key file strictly, so a corrupt or undecryptable one stops start-up here,
    named, instead of being skipped silently.
    """
    store = key_store(settings)
    store.ensure_directory()
    if KeyRing(tuple(store.load_all())).signing_key(datetime.now(UTC)) is not None:
        return None
    return store.generate(settings.signing_alg, settings.rsa_bits)


def rotate_key(
    settings: Settings,
    retention: timedelta,
    *,
    immediate: bool,
    prune: bool = True,
    now: datetime | None = None,
) -> SigningKey:
    """Stage a new key: published at once, signing after the propagation delay (or now, and
    always now when no key signs yet).

    With ``prune``, key files whose publication window has ended are deleted on the way:
    they can no longer verify anything, and a private key kept for nothing is a liability.
    The caller turns it off when ``retention`` is only a guess.
    """
    now = now or datetime.now(UTC)
    store = key_store(settings)
    ring = KeyRing(tuple(store.load().keys))
    for status in ring.statuses(now, retention):
        if prune and not status.published(now):
            store.delete(status.key.kid)
    # With nothing signing yet there is no hand-over to protect: waiting would only mean
    # no tokens at all until the delay ends.
    immediate = immediate or ring.signing_key(now) is None
    delay = timedelta(seconds=0 if immediate else settings.key_propagation_delay)
    return store.generate(settings.signing_alg, settings.rsa_bits, now + delay)


def revoke_key(
    settings: Settings, kid: str, retention: timedelta, now: datetime | None = None
) -> SigningKey | None:
    """Remove a key from signing and from the JWKS at once; return the key that signs now.

    If the revoked key was signing, the newest other published key takes over immediately
    (a staged key is brought forward); with none left, a fresh key is generated.
    """
    now = now or datetime.now(UTC)
    store = key_store(settings)
    keys = store.load().keys
    ring = KeyRing(tuple(keys))
    if kid not in {k.kid for k in keys}:
        raise KeyNotFound(kid)
    signer = ring.signing_key(now)
    store.delete(kid)
    if signer is None or signer.kid != kid:
        return signer
    remaining = KeyRing(tuple(k for k in keys if k.kid != kid))
    published = remaining.published(now, retention)
    if not published:
        return store.generate(settings.signing_alg, settings.rsa_bits)
    successor = max(published, key=lambda k: k.created_at)
    if remaining.signing_key(now) != successor:
        successor = store.reschedule(successor, now)
    return successor


def rotate_if_due(
    settings: Settings, retention: timedelta, now: datetime | None = None
) -> SigningKey | None:
    """Scheduled rotation: stage a successor once the signing key is old enough.

    Safe to call from every worker of every instance: nothing happens while a successor is
    already staged, and the store's claim lets only one caller rotate a given key.
    """
    if settings.key_rotation_days is None:
        return None
    now = now or datetime.now(UTC)
    store = key_store(settings)
    ring = KeyRing(tuple(store.load().keys))
    signer = ring.signing_key(now)
    if signer is None or any(k.activates_at > now for k in ring.keys):
        return None
    if now - signer.created_at < timedelta(days=settings.key_rotation_days):
        return None
    if not store.claim_rotation(signer.kid):
        return None
    return rotate_key(settings, retention, immediate=False, now=now)


def key_statuses(
    settings: Settings, retention: timedelta, now: datetime | None = None
) -> list[KeyStatus]:
    """Published keys with their states; keys past their publication window are left out."""
    now = now or datetime.now(UTC)
    ring = KeyRing(tuple(key_store(settings).load_all()))
    return [s for s in ring.statuses(now, retention) if s.published(now)]


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
