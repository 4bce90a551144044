"""Signing keys on real files: permissions, kid, encryption, error reporting, the key ring."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import RSAKey

from authserver.errors import KeyStoreError
from authserver.security.keyring import RELOAD_INTERVAL_SECONDS, KeyRing, KeyRingLoader
from authserver.security.keys import KeyStore
from tests.support.waiting import wait_until

PASSPHRASE = "correct horse battery staple"


def key_file(directory: Path, kid: str) -> Path:
    return directory / f"{kid}.key.json"


def read_document(path: Path) -> dict[str, str]:
    document: dict[str, str] = json.loads(path.read_text())
    return document


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@pytest.fixture(scope="module")
def plain_key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One unencrypted key file, generated once; tests copy its bytes."""
    directory = tmp_path_factory.mktemp("plain") / "keys"
    key = KeyStore(directory).generate()
    return key_file(directory, key.kid)


@pytest.fixture(scope="module")
def encrypted_key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("encrypted") / "keys"
    key = KeyStore(directory, PASSPHRASE).generate()
    return key_file(directory, key.kid)


def copy_into(source: Path, directory: Path) -> Path:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = directory / source.name
    target.write_bytes(source.read_bytes())
    return target


# --- KeyStore -------------------------------------------------------------------------------


def test_generate_creates_the_keys_folder_with_mode_0700(tmp_path: Path) -> None:
    directory = tmp_path / "nested" / "keys"
    KeyStore(directory).generate()
    assert directory.is_dir()
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_generate_writes_the_key_file_with_mode_0600(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    key = KeyStore(directory).generate()
    path = key_file(directory, key.kid)
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_ensure_directory_takes_others_access_off_the_folder_and_its_key_files(
    tmp_path: Path, plain_key_file: Path
) -> None:
    """A checked-out ``keys/`` is 0755; files copied in keep the copier's umask."""
    directory = tmp_path / "keys"
    shared = copy_into(plain_key_file, directory)
    read_only = directory / f"read-only{plain_key_file.name}"
    read_only.write_bytes(plain_key_file.read_bytes())
    other = directory / "README.md"
    other.write_text("not a key\n")
    directory.chmod(0o755)
    shared.chmod(0o644)
    read_only.chmod(0o444)
    other.chmod(0o644)

    KeyStore(directory).ensure_directory()

    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(shared.stat().st_mode) == 0o600
    assert stat.S_IMODE(read_only.stat().st_mode) == 0o400  # never widened
    assert stat.S_IMODE(other.stat().st_mode) == 0o644  # not ours to change


def test_generate_leaves_no_temporary_files_behind(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    store = KeyStore(directory)
    first = store.generate()
    second = store.generate()
    names = sorted(p.name for p in directory.iterdir())
    assert names == sorted([f"{first.kid}.key.json", f"{second.kid}.key.json"])


def test_kid_is_the_rfc7638_thumbprint_of_the_public_key(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    key = KeyStore(directory).generate()
    document = read_document(key_file(directory, key.kid))
    private_key = serialization.load_pem_private_key(
        document["private_key"].encode(), password=None
    )
    assert isinstance(private_key, rsa.RSAPrivateKey)
    public_key = private_key.public_key()

    assert key.kid == RSAKey.import_key(public_key).thumbprint()

    # RFC 7638 §3 by hand: SHA-256 of the required members in lexicographic order, no spaces.
    numbers = public_key.public_numbers()
    members = {
        "e": b64url(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")),
        "kty": "RSA",
        "n": b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
    }
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    assert key.kid == b64url(hashlib.sha256(canonical).digest())
    assert document["kid"] == key.kid


def test_generated_key_is_rs256_with_at_least_2048_bits(tmp_path: Path) -> None:
    key = KeyStore(tmp_path / "keys").generate()
    assert key.alg == "RS256"
    public = key.public_jwk()
    n = base64.urlsafe_b64decode(public["n"] + "=" * (-len(public["n"]) % 4))
    assert len(n) * 8 >= 2048


def test_public_jwk_has_no_private_members(tmp_path: Path) -> None:
    key = KeyStore(tmp_path / "keys").generate()
    public = key.public_jwk()
    assert public["kid"] == key.kid
    assert public["kty"] == "RSA"
    assert public["alg"] == "RS256"
    assert public["use"] == "sig"
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(public)


def test_generate_then_load_returns_the_same_key_and_schedule(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys")
    activates_at = datetime.now(UTC) + timedelta(minutes=15)
    key = store.generate(activates_at=activates_at)
    [loaded] = store.load_all()
    assert loaded.kid == key.kid
    assert loaded.activates_at == activates_at
    assert loaded.created_at == key.created_at
    assert loaded.public_jwk() == key.public_jwk()


def test_passphrase_writes_an_encrypted_pkcs8_pem(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    key = KeyStore(directory, PASSPHRASE).generate()
    raw = key_file(directory, key.kid).read_text()
    pem = read_document(key_file(directory, key.kid))["private_key"]
    assert pem.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert "BEGIN PRIVATE KEY" not in raw
    assert "BEGIN RSA PRIVATE KEY" not in raw
    private_key = serialization.load_pem_private_key(pem.encode(), password=PASSPHRASE.encode())
    assert isinstance(private_key, rsa.RSAPrivateKey)
    assert RSAKey.import_key(private_key).thumbprint() == key.kid


def test_encrypted_key_loads_with_the_passphrase(tmp_path: Path, encrypted_key_file: Path) -> None:
    copy_into(encrypted_key_file, tmp_path / "keys")
    [loaded] = KeyStore(tmp_path / "keys", PASSPHRASE).load_all()
    assert loaded.kid == encrypted_key_file.name.removesuffix(".key.json")


def test_without_passphrase_the_pem_is_unencrypted_pkcs8(plain_key_file: Path) -> None:
    pem = read_document(plain_key_file)["private_key"]
    assert pem.startswith("-----BEGIN PRIVATE KEY-----")


def test_unencrypted_key_still_loads_when_a_passphrase_is_set(
    tmp_path: Path, plain_key_file: Path
) -> None:
    copy_into(plain_key_file, tmp_path / "keys")
    [loaded] = KeyStore(tmp_path / "keys", PASSPHRASE).load_all()
    assert loaded.kid == plain_key_file.name.removesuffix(".key.json")


def test_wrong_passphrase_raises_naming_the_file(tmp_path: Path, encrypted_key_file: Path) -> None:
    path = copy_into(encrypted_key_file, tmp_path / "keys")
    with pytest.raises(KeyStoreError) as caught:
        KeyStore(tmp_path / "keys", "not the passphrase").load_all()
    assert str(path) in str(caught.value)


def test_missing_passphrase_for_an_encrypted_key_raises_naming_the_file(
    tmp_path: Path, encrypted_key_file: Path
) -> None:
    path = copy_into(encrypted_key_file, tmp_path / "keys")
    with pytest.raises(KeyStoreError) as caught:
        KeyStore(tmp_path / "keys").load_all()
    assert str(path) in str(caught.value)
    assert "AUTHSERVER_KEY_PASSPHRASE" in str(caught.value)


def test_corrupt_json_raises_naming_the_file(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    directory.mkdir()
    path = directory / "broken.key.json"
    path.write_text("{this is not json")
    with pytest.raises(KeyStoreError) as caught:
        KeyStore(directory).load_all()
    assert str(path) in str(caught.value)


def test_key_file_missing_members_raises_naming_the_file(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    directory.mkdir()
    path = directory / "partial.key.json"
    path.write_text(json.dumps({"kid": "partial", "alg": "RS256"}))
    with pytest.raises(KeyStoreError) as caught:
        KeyStore(directory).load_all()
    assert str(path) in str(caught.value)


def test_truncated_key_file_raises_naming_the_file(tmp_path: Path, plain_key_file: Path) -> None:
    directory = tmp_path / "keys"
    path = copy_into(plain_key_file, directory)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(KeyStoreError) as caught:
        KeyStore(directory).load_all()
    assert str(path) in str(caught.value)


def test_truncated_pem_inside_valid_json_raises_naming_the_file(
    tmp_path: Path, plain_key_file: Path
) -> None:
    directory = tmp_path / "keys"
    path = copy_into(plain_key_file, directory)
    document = read_document(path)
    document["private_key"] = document["private_key"][:300]
    path.write_text(json.dumps(document))
    with pytest.raises(KeyStoreError) as caught:
        KeyStore(directory).load_all()
    assert str(path) in str(caught.value)


def test_files_without_the_key_suffix_are_ignored(tmp_path: Path, plain_key_file: Path) -> None:
    directory = tmp_path / "keys"
    copy_into(plain_key_file, directory)
    (directory / "README.txt").write_text("not a key")
    (directory / ".tmp-abandoned.json").write_text("{")
    assert len(KeyStore(directory).load_all()) == 1


def test_missing_folder_loads_no_keys(tmp_path: Path) -> None:
    assert KeyStore(tmp_path / "absent").load_all() == []


# --- KeyRing --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scheduled_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[datetime, KeyRing]:
    """Three keys: one that activated two hours ago, one an hour ago, one in an hour."""
    now = datetime.now(UTC).replace(microsecond=0)
    store = KeyStore(tmp_path_factory.mktemp("ring") / "keys")
    for offset in (timedelta(hours=1), timedelta(hours=-2), timedelta(hours=-1)):
        store.generate(activates_at=now + offset)
    return now, KeyRing(tuple(store.load_all()))


def test_ring_orders_keys_by_activation(scheduled_keys: tuple[datetime, KeyRing]) -> None:
    now, ring = scheduled_keys
    assert [k.activates_at - now for k in ring.keys] == [
        timedelta(hours=-2),
        timedelta(hours=-1),
        timedelta(hours=1),
    ]


def test_signing_key_is_the_newest_activated_key(scheduled_keys: tuple[datetime, KeyRing]) -> None:
    now, ring = scheduled_keys
    oldest, middle, staged = ring.keys
    assert ring.signing_key(now) == middle
    assert ring.signing_key(now - timedelta(minutes=90)) == oldest
    assert ring.signing_key(now + timedelta(hours=2)) == staged


def test_no_signing_key_before_any_activation(scheduled_keys: tuple[datetime, KeyRing]) -> None:
    now, ring = scheduled_keys
    assert ring.signing_key(now - timedelta(hours=3)) is None
    assert KeyRing(()).signing_key(now) is None


def test_statuses_report_next_active_retired_with_retirement_times(
    scheduled_keys: tuple[datetime, KeyRing],
) -> None:
    now, ring = scheduled_keys
    oldest, middle, staged = ring.keys
    retention = timedelta(minutes=10)
    statuses = {
        s.key.kid: (s.state, s.retires_at, s.unpublishes_at) for s in ring.statuses(now, retention)
    }
    assert statuses == {
        oldest.kid: ("retired", middle.activates_at, middle.activates_at + retention),
        middle.kid: ("active", staged.activates_at, staged.activates_at + retention),
        staged.kid: ("next", None, None),
    }


def test_jwks_publishes_next_active_and_retired_keys_within_their_window(
    scheduled_keys: tuple[datetime, KeyRing],
) -> None:
    now, ring = scheduled_keys
    document = json.loads(ring.jwks(now, timedelta(hours=2)).body)
    assert [k["kid"] for k in document["keys"]] == [k.kid for k in ring.keys]


def test_jwks_drops_a_retired_key_once_its_window_has_passed(
    scheduled_keys: tuple[datetime, KeyRing],
) -> None:
    """The oldest key stopped signing an hour ago: with 59 minutes of retention it is gone."""
    now, ring = scheduled_keys
    oldest, middle, staged = ring.keys
    kept = ring.jwks(now, timedelta(minutes=61))
    dropped = ring.jwks(now, timedelta(minutes=59))
    assert [k["kid"] for k in json.loads(kept.body)["keys"]] == [oldest.kid, middle.kid, staged.kid]
    assert [k["kid"] for k in json.loads(dropped.body)["keys"]] == [middle.kid, staged.kid]
    assert kept.etag != dropped.etag


# --- KeyRingLoader --------------------------------------------------------------------------


def test_loader_picks_up_a_new_key_file_after_the_reload_interval(
    tmp_path: Path, plain_key_file: Path
) -> None:
    directory = tmp_path / "keys"
    copy_into(plain_key_file, directory)
    store = KeyStore(directory)
    loader = KeyRingLoader(store)
    assert len(loader.current().keys) == 1

    added = store.generate()
    wait_until(
        lambda: added.kid in {k.kid for k in loader.current().keys},
        RELOAD_INTERVAL_SECONDS + 1.0,
        "the loader picking up the new key file",
    )
    assert len(loader.current().keys) == 2
    assert loader.problems == []


def test_loader_logs_each_unusable_file_once_naming_it(
    tmp_path: Path, plain_key_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The log, not ``/readyz``, names the file; a reload that finds it again stays quiet."""
    directory = tmp_path / "keys"
    copy_into(plain_key_file, directory)
    bad = directory / "corrupt.key.json"
    bad.write_text("{not json")
    loader = KeyRingLoader(KeyStore(directory))
    loader.current()
    KeyStore(directory).generate("ES256")  # a change in the folder: the next poll reloads
    wait_until(
        lambda: len(loader.current().keys) == 2,
        RELOAD_INTERVAL_SECONDS + 1.0,
        "the loader picking up the new key file",
    )

    logged = [json.loads(r.getMessage()) for r in caplog.records if r.name == "authserver.operator"]
    assert [line["event"] for line in logged] == ["signing_key.unusable"]
    assert str(bad) in logged[0]["message"]


def test_loader_skips_and_reports_a_corrupt_file_and_keeps_the_good_keys(
    tmp_path: Path, plain_key_file: Path
) -> None:
    directory = tmp_path / "keys"
    copy_into(plain_key_file, directory)
    loader = KeyRingLoader(KeyStore(directory))
    good = loader.current()
    assert len(good.keys) == 1

    bad = directory / "corrupt.key.json"
    bad.write_text("{not json")
    # ``problems`` is refreshed by ``current()``, as every request does.
    wait_until(
        lambda: loader.current() and loader.problems,
        RELOAD_INTERVAL_SECONDS + 1.0,
        "the loader reporting the corrupt file",
    )
    [problem] = loader.problems
    assert str(bad) in problem
    assert [k.kid for k in loader.current().keys] == [k.kid for k in good.keys]
    assert loader.current().signing_key(datetime.now(UTC)) == good.keys[0]

    bad.unlink()
    wait_until(
        lambda: loader.current() and not loader.problems,
        RELOAD_INTERVAL_SECONDS + 1.0,
        "the loader dropping the report of the removed file",
    )
    assert [k.kid for k in loader.current().keys] == [k.kid for k in good.keys]
