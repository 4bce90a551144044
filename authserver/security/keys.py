"""Signing keys on disk: one JSON file per key in ``AUTHSERVER_KEYS_DIR``.

A key file holds the key's schedule beside its PKCS#8 PEM, so that every worker and every
instance sharing the folder derives the same state for each key from the files and the clock
alone. Files are written to a temporary name and renamed into place, so a reader never sees a
half-written key; the folder is 0700 and each file 0600 because they hold private keys.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from joserfc.jwk import ECKey, OKPKey, RSAKey

from authserver.config import DEFAULT_ALG, SUPPORTED_ALGS
from authserver.errors import KeyNotFound, KeyStoreError
from authserver.security import owner_only

KEY_FILE_SUFFIX = ".key.json"
ROTATION_CLAIM_PREFIX = ".rotation-claimed-"
RSA_PUBLIC_EXPONENT = 65537
#: The passphrase's setting in messages: either variable may have given it.
PASSPHRASE_SETTING = "AUTHSERVER_KEY_PASSPHRASE(_FILE)"  # noqa: S105 (a variable name, not a secret)

JWK = RSAKey | ECKey | OKPKey


@dataclass(frozen=True)
class SigningKey:
    """A private signing key and its schedule (``activates_at``: when it may start signing)."""

    kid: str
    alg: str
    created_at: datetime
    activates_at: datetime
    jwk: JWK = field(repr=False)
    #: The PEM as stored (encrypted or not), so a rewritten schedule keeps the same protection.
    pem: bytes = field(repr=False)

    def public_jwk(self) -> dict[str, Any]:
        """The RFC 7517 public members only, with the ``use``/``alg`` resource servers need."""
        public = self.jwk.as_dict(private=False)
        return {**public, "kid": self.kid, "alg": self.alg, "use": "sig"}


@dataclass(frozen=True)
class LoadResult:
    keys: list[SigningKey]
    #: One message per key file that could not be used, naming the file.
    problems: list[str]


class KeyStore:
    """Reads and writes the key files of one folder."""

    def __init__(self, directory: Path, passphrase: str | None = None) -> None:
        self.directory = directory
        self._passphrase = passphrase.encode() if passphrase else None

    def ensure_directory(self) -> None:
        """Create the folder 0700, or take others' access off it and off its key files.

        A checked-out ``keys/`` is 0755 and a copied-in key file may be 0644; the folder
        alone would do, but each file is kept private too in case the folder is opened up.
        """
        try:
            owner_only.create_folder(self.directory)
        except OSError as exc:
            raise KeyStoreError(
                f"AUTHSERVER_KEYS_DIR: cannot create {self.directory}: {exc.strerror}"
            ) from None
        if not self.directory.is_dir():
            raise KeyStoreError(f"AUTHSERVER_KEYS_DIR: {self.directory} is not a folder")
        owner_only.tighten(self.directory, "the keys folder")
        for path in self._key_paths():
            owner_only.tighten(path, "a signing key file")

    def stamp(self) -> tuple[tuple[str, int, int, int], ...]:
        """Changes whenever a key file is added, replaced or removed.

        A listing and one ``stat`` per key file, no reads: cheap enough to poll every second,
        and unlike the folder's own mtime it still changes on file systems with coarse
        timestamps (replacing a file gives it a new inode).
        """
        entries = []
        for path in self._key_paths():
            try:
                info = path.stat()
            except OSError:
                continue
            entries.append((path.name, info.st_ino, info.st_size, info.st_mtime_ns))
        return tuple(entries)

    def load(self) -> LoadResult:
        """Every readable key; unreadable files are reported, not fatal (a worker must go on)."""
        keys, problems = [], []
        for path in self._key_paths():
            try:
                keys.append(self._load(path))
            except KeyStoreError as exc:
                problems.append(str(exc))
        return LoadResult(keys, problems)

    def load_all(self) -> list[SigningKey]:
        """Every key, failing on the first file that cannot be used (start-up, CLI)."""
        result = self.load()
        if result.problems:
            raise KeyStoreError(result.problems[0])
        return result.keys

    def generate(
        self, alg: str = DEFAULT_ALG, rsa_bits: int = 2048, activates_at: datetime | None = None
    ) -> SigningKey:
        """Create a key and write it; it signs from ``activates_at`` (default: now)."""
        now = datetime.now(UTC)
        private_key = _generate_private_key(alg, rsa_bits)
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(self._passphrase)
            if self._passphrase
            else serialization.NoEncryption()
        )
        pem = private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )
        key = _signing_key(private_key, alg, now, activates_at or now, pem)
        self.ensure_directory()
        self._write(key)
        return key

    def reschedule(self, key: SigningKey, activates_at: datetime) -> SigningKey:
        """Move a key's activation (emergency revoke promotes a staged key to sign now)."""
        moved = replace(key, activates_at=activates_at)
        self._write(moved)
        return moved

    def delete(self, kid: str) -> None:
        try:
            self._path(kid).unlink()
        except FileNotFoundError:
            raise KeyNotFound(kid) from None

    def claim_rotation(self, kid: str) -> bool:
        """True for exactly one caller per signing key, across workers and instances.

        ``O_EXCL`` creation is atomic on a shared folder, so when several servers find the
        same key due for scheduled rotation only one stages a successor. Claims of keys that
        no longer exist are removed.
        """
        live = {path.name.removesuffix(KEY_FILE_SUFFIX) for path in self._key_paths()}
        for stale in self.directory.glob(ROTATION_CLAIM_PREFIX + "*"):
            if stale.name.removeprefix(ROTATION_CLAIM_PREFIX) not in live:
                stale.unlink(missing_ok=True)
        try:
            fd = os.open(
                self.directory / f"{ROTATION_CLAIM_PREFIX}{kid}",
                os.O_CREAT | os.O_EXCL | os.O_WRONLY,
                owner_only.OWNER_ONLY_FILE,
            )
        except FileExistsError:
            return False
        os.close(fd)
        return True

    def _path(self, kid: str) -> Path:
        if "/" in kid or kid.startswith("."):
            raise KeyNotFound(kid)
        return self.directory / f"{kid}{KEY_FILE_SUFFIX}"

    def _key_paths(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob("*" + KEY_FILE_SUFFIX))

    def _write(self, key: SigningKey) -> None:
        document = {
            "kid": key.kid,
            "alg": key.alg,
            "created_at": key.created_at.isoformat(),
            "activates_at": key.activates_at.isoformat(),
            "private_key": key.pem.decode(),
        }
        fd, temp_name = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(document, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temp_name, owner_only.OWNER_ONLY_FILE)
            os.replace(temp_name, self._path(key.kid))
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise

    def _load(self, path: Path) -> SigningKey:
        try:
            document = json.loads(path.read_text())
            alg = document["alg"]
            created_at = datetime.fromisoformat(document["created_at"])
            activates_at = datetime.fromisoformat(document["activates_at"])
            pem = document["private_key"].encode()
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            raise KeyStoreError(f"signing key file {path} is unreadable or corrupt") from None
        if created_at.tzinfo is None or activates_at.tzinfo is None:
            raise KeyStoreError(f"signing key file {path} has times without a time zone")
        private_key = self._decrypt(path, pem)
        if alg not in SUPPORTED_ALGS or not _matches(private_key, alg):
            raise KeyStoreError(f"signing key file {path} does not hold a valid {alg} key")
        key = _signing_key(private_key, alg, created_at, activates_at, pem)  # type: ignore[arg-type]
        if path.name != f"{key.kid}{KEY_FILE_SUFFIX}":
            raise KeyStoreError(f"signing key file {path} is not named after its key's kid")
        return key

    def _decrypt(self, path: Path, pem: bytes) -> PrivateKeyTypes:
        encrypted = b"ENCRYPTED" in pem.split(b"\n", 1)[0]
        if encrypted and not self._passphrase:
            raise KeyStoreError(
                f"signing key file {path} is encrypted and {PASSPHRASE_SETTING} is not set"
            )
        try:
            return serialization.load_pem_private_key(
                pem, password=self._passphrase if encrypted else None
            )
        except (ValueError, TypeError):
            problem = (
                f"cannot be decrypted with {PASSPHRASE_SETTING}"
                if encrypted
                else "holds no valid private key"
            )
            raise KeyStoreError(f"signing key file {path} {problem}") from None


SigningPrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def _generate_private_key(alg: str, rsa_bits: int) -> SigningPrivateKey:
    if alg == "RS256":
        return rsa.generate_private_key(RSA_PUBLIC_EXPONENT, rsa_bits)
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise KeyStoreError(f"unsupported signing algorithm {alg!r}")


def _matches(private_key: PrivateKeyTypes, alg: str) -> bool:
    if alg == "RS256":
        return isinstance(private_key, rsa.RSAPrivateKey) and private_key.key_size >= 2048
    if alg == "ES256":
        return isinstance(private_key, ec.EllipticCurvePrivateKey) and isinstance(
            private_key.curve, ec.SECP256R1
        )
    return isinstance(private_key, ed25519.Ed25519PrivateKey)


def _signing_key(
    private_key: SigningPrivateKey,
    alg: str,
    created_at: datetime,
    activates_at: datetime,
    pem: bytes,
) -> SigningKey:
    jwk_class: type[JWK]
    if isinstance(private_key, rsa.RSAPrivateKey):
        jwk_class = RSAKey
    elif isinstance(private_key, ec.EllipticCurvePrivateKey):
        jwk_class = ECKey
    else:
        jwk_class = OKPKey
    kid = jwk_class.import_key(private_key).thumbprint()  # type: ignore[arg-type]
    parameters = {"kid": kid, "alg": alg, "use": "sig"}
    jwk = jwk_class.import_key(private_key, parameters=parameters)  # type: ignore[arg-type]
    return SigningKey(kid, alg, created_at, activates_at, jwk, pem)
