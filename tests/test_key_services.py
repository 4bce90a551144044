"""Key lifecycle operations on a real keys folder: rotation, revocation, scheduled rotation."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from authserver.config import Settings
from authserver.errors import KeyNotFound
from authserver.security.keyring import KeyRing
from authserver.security.keys import KeyStore, SigningKey
from authserver.services import keys as key_service

RETENTION = timedelta(minutes=40)


@pytest.fixture
def settings(keys_dir: Path, tmp_path: Path) -> Settings:
    """One active RS256 key (from the session template), 15-minute propagation delay."""
    return Settings(database_url=f"sqlite:///{tmp_path / 'unused.db'}", keys_dir=keys_dir)


def ring_of(settings: Settings) -> KeyRing:
    return KeyRing(tuple(KeyStore(settings.keys_dir).load_all()))


def states(settings: Settings, now: datetime) -> dict[str, str]:
    return {s.key.kid: s.state for s in ring_of(settings).statuses(now, RETENTION)}


def rotate_the_one_key(
    settings: Settings, *, immediate: bool
) -> tuple[datetime, SigningKey, SigningKey]:
    """Rotate the folder's only key now: the moment, the old key and the new one."""
    now = datetime.now(UTC)
    [old] = ring_of(settings).keys
    return now, old, key_service.rotate_key(settings, RETENTION, immediate=immediate, now=now)


def revoke_and_expect_signer(
    settings: Settings, revoked_kid: str, signer_kid: str, now: datetime
) -> None:
    """Revoking ``revoked_kid`` returns the key ``signer_kid``, which then signs at ``now``."""
    signer = key_service.revoke_key(settings, revoked_kid, RETENTION, now=now)
    assert signer is not None
    assert signer.kid == signer_kid
    signing = ring_of(settings).signing_key(now)
    assert signing is not None
    assert signing.kid == signer_kid


def test_rotate_stages_a_key_that_signs_after_the_propagation_delay(settings: Settings) -> None:
    now, old, staged = rotate_the_one_key(settings, immediate=False)
    assert staged.activates_at == now + timedelta(seconds=settings.key_propagation_delay)
    assert states(settings, now) == {old.kid: "active", staged.kid: "next"}
    later = staged.activates_at + timedelta(seconds=1)
    assert ring_of(settings).signing_key(later) == staged
    assert states(settings, later) == {old.kid: "retired", staged.kid: "active"}


def test_rotate_now_signs_at_once(settings: Settings) -> None:
    now = datetime.now(UTC)
    new = key_service.rotate_key(settings, RETENTION, immediate=True, now=now)
    assert ring_of(settings).signing_key(now) == new


def test_rotate_deletes_key_files_whose_publication_window_has_ended(settings: Settings) -> None:
    now, old, second = rotate_the_one_key(settings, immediate=True)
    still_published = now + RETENTION - timedelta(seconds=1)
    key_service.rotate_key(settings, RETENTION, immediate=True, now=still_published)
    assert old.kid in {k.kid for k in ring_of(settings).keys}
    after_window = now + RETENTION + timedelta(seconds=1)
    third = key_service.rotate_key(settings, RETENTION, immediate=True, now=after_window)
    remaining = {k.kid for k in ring_of(settings).keys}
    assert old.kid not in remaining
    assert {second.kid, third.kid} <= remaining


def test_revoke_of_the_active_key_promotes_the_staged_key_at_once(settings: Settings) -> None:
    now, old, staged = rotate_the_one_key(settings, immediate=False)
    revoke_and_expect_signer(settings, old.kid, staged.kid, now)
    assert [k.kid for k in ring_of(settings).keys] == [staged.kid]


def test_revoke_of_the_active_key_falls_back_to_the_newest_retired_key(
    settings: Settings,
) -> None:
    now, old, current = rotate_the_one_key(settings, immediate=True)
    revoke_and_expect_signer(settings, current.kid, old.kid, now)


def test_revoke_of_the_only_key_generates_a_new_one_that_signs_at_once(
    settings: Settings,
) -> None:
    now = datetime.now(UTC)
    [old] = ring_of(settings).keys
    signer = key_service.revoke_key(settings, old.kid, RETENTION, now=now)
    assert signer is not None
    assert signer.kid != old.kid
    assert [k.kid for k in ring_of(settings).keys] == [signer.kid]
    assert ring_of(settings).signing_key(datetime.now(UTC)) == signer


def test_revoke_of_a_staged_key_leaves_the_signer_alone(settings: Settings) -> None:
    now, old, staged = rotate_the_one_key(settings, immediate=False)
    signer = key_service.revoke_key(settings, staged.kid, RETENTION, now=now)
    assert signer == old
    assert [k.kid for k in ring_of(settings).keys] == [old.kid]


def test_revoke_of_an_unknown_kid_raises_and_changes_nothing(settings: Settings) -> None:
    before = [k.kid for k in ring_of(settings).keys]
    with pytest.raises(KeyNotFound):
        key_service.revoke_key(settings, "no-such-kid", RETENTION)
    with pytest.raises(KeyNotFound):
        key_service.revoke_key(settings, "../escape", RETENTION)
    assert [k.kid for k in ring_of(settings).keys] == before


def age_key_files(directory: Path, days: int) -> None:
    for path in directory.glob("*.key.json"):
        document = json.loads(path.read_text())
        created = datetime.fromisoformat(document["created_at"]) - timedelta(days=days)
        document["created_at"] = created.isoformat()
        document["activates_at"] = created.isoformat()
        path.write_text(json.dumps(document))


def test_scheduled_rotation_does_nothing_when_disabled_or_the_key_is_young(
    settings: Settings,
) -> None:
    assert key_service.rotate_if_due(settings, RETENTION) is None
    enabled = Settings(**{**settings.__dict__, "key_rotation_days": 1})
    assert key_service.rotate_if_due(enabled, RETENTION) is None
    assert len(ring_of(settings).keys) == 1


def test_scheduled_rotation_stages_exactly_one_successor_for_an_old_key(
    settings: Settings,
) -> None:
    age_key_files(settings.keys_dir, days=2)
    enabled = Settings(**{**settings.__dict__, "key_rotation_days": 1})
    now = datetime.now(UTC)
    staged = key_service.rotate_if_due(enabled, RETENTION, now=now)
    assert staged is not None
    assert states(settings, now)[staged.kid] == "next"
    # Every other worker and instance asking afterwards finds the successor staged.
    assert key_service.rotate_if_due(enabled, RETENTION, now=now) is None
    assert len(ring_of(settings).keys) == 2


def test_rotate_on_an_empty_folder_signs_at_once(tmp_path: Path) -> None:
    """Nothing to hand over from: a staged-only key would leave the server without a signer."""
    settings = Settings(keys_dir=tmp_path / "empty-keys")
    key = key_service.rotate_key(settings, RETENTION, immediate=False)
    assert ring_of(settings).signing_key(datetime.now(UTC)) == key


def test_ensure_signing_key_creates_a_signer_when_only_a_staged_key_exists(
    settings: Settings,
) -> None:
    now, old, staged = rotate_the_one_key(settings, immediate=False)
    KeyStore(settings.keys_dir).delete(old.kid)
    created = key_service.ensure_signing_key(settings)
    assert created is not None
    assert ring_of(settings).signing_key(datetime.now(UTC)) == created
    assert key_service.ensure_signing_key(settings) is None
    assert {k.kid for k in ring_of(settings).keys} == {staged.kid, created.kid}
