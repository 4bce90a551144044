"""Signing-key lifecycle for the CLI and the server: first key, rotation, emergency revoke,
import and rewrap.

Every operation is a change in the key store (the keys folder or the database); running
workers and other instances pick it up by polling (``KeyRingLoader``), so nothing here talks
to a server. Each change runs under the store's exclusive lock and decides on the state it
finds inside it, so servers starting, or rotating, at the same moment on several hosts act
once between them.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from authserver.config import Settings
from authserver.errors import KeyNotFound, KeyStoreError
from authserver.security.key_database import DatabaseKeyStore
from authserver.security.key_material import (
    PASSPHRASE_SETTING,
    Passphrases,
    SigningKey,
    new_signing_key,
    resealed,
)
from authserver.security.key_store import SigningKeyStore
from authserver.security.keyring import KeyRing, KeyStatus
from authserver.security.keys import KeyStore
from authserver.services.formatting import iso_utc


def key_store(settings: Settings, *, polled: bool = False) -> SigningKeyStore:
    """The store ``AUTHSERVER_KEY_STORE`` names; ``polled`` for a worker's key poller, which
    keeps its database connection between polls."""
    if settings.key_store == "database":
        return DatabaseKeyStore(settings.database_url, _passphrases(settings), pooled=polled)
    return folder_store(settings, settings.keys_dir)


def folder_store(settings: Settings, directory: Path) -> KeyStore:
    """The files store of ``directory``, opened with the configured passphrases."""
    return KeyStore(directory, settings.key_passphrase, settings.key_passphrase_previous)


def _passphrases(settings: Settings) -> Passphrases:
    return Passphrases(settings.key_passphrase, settings.key_passphrase_previous)


def retention(settings: Settings, longest_token_ttl: int) -> timedelta:
    """How long a key stays published after it stops signing.

    Its last tokens live ``longest_token_ttl`` more seconds, and a resource server may serve
    them from a JWKS fetched just before, cached for ``jwks_max_age``.
    """
    return timedelta(seconds=longest_token_ttl + settings.jwks_max_age)


def ensure_signing_key(settings: Settings) -> SigningKey | None:
    """Create a key signing at once when none can sign now; return it if created.

    Loads every key strictly, so a corrupt or undecryptable one stops start-up here, named,
    instead of being skipped silently. The first look is without the lock, so servers
    starting on a store that already has a signer (or on a read-only keys folder) never wait
    for each other or need to write; the look inside the lock lets only the first of several
    servers starting together on an empty store create the key.
    """
    store = key_store(settings)
    store.prepare()
    if _signer_now(store) is not None:
        return None
    with store.exclusive():
        if _signer_now(store) is not None:
            return None
        return store.generate(settings.signing_alg, settings.rsa_bits)


def _signer_now(store: SigningKeyStore) -> SigningKey | None:
    return KeyRing(tuple(store.load_all())).signing_key(datetime.now(UTC))


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

    With ``prune``, keys whose publication window has ended are deleted on the way: they can
    no longer verify anything, and a private key kept for nothing is a liability. The caller
    turns it off when ``retention`` is only a guess.
    """
    store = key_store(settings)
    with store.exclusive():
        return _rotate(store, settings, retention, immediate, prune, now)


def _rotate(
    store: SigningKeyStore,
    settings: Settings,
    retention: timedelta,
    immediate: bool,
    prune: bool,
    now: datetime | None,
) -> SigningKey:
    key = new_signing_key(settings.signing_alg, settings.rsa_bits, None, _passphrases(settings))
    # Taken after the key is made (slow for RSA on a busy host): the propagation delay must
    # count from when the key is published, not from before.
    now = now or datetime.now(UTC)
    ring = KeyRing(tuple(store.load().keys))
    for status in ring.statuses(now, retention):
        if prune and not status.published(now):
            store.delete(status.key.kid)
    # With nothing signing yet there is no hand-over to protect: waiting would only mean
    # no tokens at all until the delay ends.
    immediate = immediate or ring.signing_key(now) is None
    delay = timedelta(seconds=0 if immediate else settings.key_propagation_delay)
    key = replace(key, activates_at=now + delay)
    store.put(key)
    return key


def revoke_key(
    settings: Settings, kid: str, retention: timedelta, now: datetime | None = None
) -> SigningKey | None:
    """Remove a key from signing and from the JWKS at once; return the key that signs now.

    If the revoked key was signing, the newest other published key takes over immediately
    (a staged key is brought forward); with none left, a fresh key is generated.
    """
    now = now or datetime.now(UTC)
    store = key_store(settings)
    with store.exclusive():
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
            successor = replace(successor, activates_at=now)
            store.put(successor)
        return successor


def rotate_if_due(
    settings: Settings, retention: timedelta, now: datetime | None = None
) -> SigningKey | None:
    """Scheduled rotation: stage a successor once the signing key is old enough.

    Safe to call from every worker of every instance: the check is repeated under the
    store's lock, and the first caller's staged successor makes it false for the others.
    """
    if settings.key_rotation_days is None:
        return None
    now = now or datetime.now(UTC)
    store = key_store(settings)
    if not _rotation_due(store, settings.key_rotation_days, now):
        return None
    with store.exclusive():
        if not _rotation_due(store, settings.key_rotation_days, now):
            return None
        return _rotate(store, settings, retention, immediate=False, prune=True, now=now)


def _rotation_due(store: SigningKeyStore, rotation_days: int, now: datetime) -> bool:
    """True when the signing key is older than ``rotation_days`` and no successor is staged."""
    ring = KeyRing(tuple(store.load().keys))
    signer = ring.signing_key(now)
    if signer is None or any(k.activates_at > now for k in ring.keys):
        return False
    return now - signer.created_at >= timedelta(days=rotation_days)


def import_keys(settings: Settings, directory: Path) -> list[SigningKey]:
    """Copy the key files of ``directory`` (schedules included) into the database store;
    return the keys that were not there yet.

    Every file must open (with the passphrase or the previous one) before anything is
    copied, and each key is sealed under the current passphrase on the way in: the database
    never receives a key in clear or one that only the old passphrase opens.
    """
    if settings.key_store != "database":
        raise KeyStoreError(
            "keys import copies a keys folder into the database store; "
            "set AUTHSERVER_KEY_STORE=database"
        )
    found = folder_store(settings, directory).load_all()
    passphrases = _passphrases(settings)
    store = key_store(settings)
    with store.exclusive():
        return [
            key
            for key in found
            if store.add(key if key.sealed_with_current else resealed(key, passphrases))
        ]


def rewrap_keys(settings: Settings) -> tuple[int, int]:
    """Seal every stored private key under the current passphrase; return how many were
    rewrapped and how many keys there are.

    All keys are opened before any is rewritten, so a key that opens with neither
    passphrase stops the command, named, with nothing changed.
    """
    if not settings.key_passphrase:
        raise KeyStoreError(f"keys rewrap needs {PASSPHRASE_SETTING}: the passphrase to seal with")
    passphrases = _passphrases(settings)
    store = key_store(settings)
    with store.exclusive():
        keys = store.load_all()
        stale = [key for key in keys if not key.sealed_with_current]
        for key in stale:
            store.put(resealed(key, passphrases))
    return len(stale), len(keys)


def key_statuses(
    settings: Settings, retention: timedelta, now: datetime | None = None
) -> list[KeyStatus]:
    """Published keys with their states; keys past their publication window are left out."""
    now = now or datetime.now(UTC)
    return [s for s in _all_statuses(settings, retention, now) if s.published(now)]


def statuses_of(
    settings: Settings, kids: set[str], retention: timedelta, now: datetime | None = None
) -> list[KeyStatus]:
    """The states of the keys ``kids``, published or not (what ``keys import`` copied)."""
    now = now or datetime.now(UTC)
    return [s for s in _all_statuses(settings, retention, now) if s.key.kid in kids]


def _all_statuses(settings: Settings, retention: timedelta, now: datetime) -> list[KeyStatus]:
    return KeyRing(tuple(key_store(settings).load_all())).statuses(now, retention)


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
