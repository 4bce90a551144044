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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from joserfc.jwk import RSAKey

from authserver.errors import KeyStoreError

KEY_FILE_SUFFIX = ".key.json"
RSA_PUBLIC_EXPONENT = 65537
RSA_BITS = 2048


@dataclass(frozen=True)
class SigningKey:
    """A private signing key and its schedule (``activates_at``: when it may start signing)."""

    kid: str
    alg: str
    created_at: datetime
    activates_at: datetime
    jwk: RSAKey

    def public_jwk(self) -> dict[str, Any]:
        """The RFC 7517 public members only, with the ``use``/``alg`` resource servers need."""
        public = self.jwk.as_dict(private=False)
        return {**public, "kid": self.kid, "alg": self.alg, "use": "sig"}


class KeyStore:
    """Reads and writes the key files of one folder."""

    def __init__(self, directory: Path, passphrase: str | None = None) -> None:
        self.directory = directory
        self._passphrase = passphrase.encode() if passphrase else None

    def ensure_directory(self) -> None:
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise KeyStoreError(
                f"AUTHSERVER_KEYS_DIR: cannot create {self.directory}: {exc.strerror}"
            ) from None
        if not self.directory.is_dir():
            raise KeyStoreError(f"AUTHSERVER_KEYS_DIR: {self.directory} is not a folder")

    def stamp(self) -> int:
        """Changes whenever a key file is added, replaced or removed (renames touch the folder).

        One ``stat`` call: cheap enough to poll, so workers notice changes without reading files.
        """
        try:
            return self.directory.stat().st_mtime_ns
        except OSError:
            return -1

    def load_all(self) -> list[SigningKey]:
        if not self.directory.is_dir():
            return []
        return [self._load(path) for path in sorted(self.directory.glob("*" + KEY_FILE_SUFFIX))]

    def generate(self, activates_at: datetime | None = None) -> SigningKey:
        """Create an RS256 key and write it; it signs from ``activates_at`` (default: now)."""
        now = datetime.now(UTC)
        private_key = rsa.generate_private_key(
            public_exponent=RSA_PUBLIC_EXPONENT, key_size=RSA_BITS
        )
        key = _signing_key(private_key, "RS256", now, activates_at or now)
        self.ensure_directory()
        self._write(key, private_key)
        return key

    def _write(self, key: SigningKey, private_key: rsa.RSAPrivateKey) -> None:
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(self._passphrase)
            if self._passphrase
            else serialization.NoEncryption()
        )
        pem = private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )
        document = {
            "kid": key.kid,
            "alg": key.alg,
            "created_at": key.created_at.isoformat(),
            "activates_at": key.activates_at.isoformat(),
            "private_key": pem.decode(),
        }
        target = self.directory / f"{key.kid}{KEY_FILE_SUFFIX}"
        fd, temp_name = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(document, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temp_name, 0o600)
            os.replace(temp_name, target)
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
        private_key = self._decrypt(path, pem)
        if not isinstance(private_key, rsa.RSAPrivateKey) or alg != "RS256":
            raise KeyStoreError(f"signing key file {path} does not hold an RS256 key")
        return _signing_key(private_key, alg, created_at, activates_at)

    def _decrypt(self, path: Path, pem: bytes) -> PrivateKeyTypes:
        encrypted = b"ENCRYPTED" in pem.split(b"\n", 1)[0]
        if encrypted and not self._passphrase:
            raise KeyStoreError(
                f"signing key file {path} is encrypted and AUTHSERVER_KEY_PASSPHRASE is not set"
            )
        try:
            return serialization.load_pem_private_key(
                pem, password=self._passphrase if encrypted else None
            )
        except (ValueError, TypeError):
            problem = (
                "cannot be decrypted with AUTHSERVER_KEY_PASSPHRASE"
                if encrypted
                else ("holds no valid private key")
            )
            raise KeyStoreError(f"signing key file {path} {problem}") from None


def _signing_key(
    private_key: rsa.RSAPrivateKey, alg: str, created_at: datetime, activates_at: datetime
) -> SigningKey:
    jwk = RSAKey.import_key(private_key)
    kid = jwk.thumbprint()
    jwk = RSAKey.import_key(private_key, parameters={"kid": kid, "alg": alg, "use": "sig"})
    return SigningKey(kid, alg, created_at, activates_at, jwk)
