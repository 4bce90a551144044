"""The files key store: one JSON file per signing key in ``AUTHSERVER_KEYS_DIR``.

A key file holds the key's schedule beside its PKCS#8 PEM, so that every worker and every
instance sharing the folder derives the same state for each key from the files and the clock
alone. Files are written to a temporary name and renamed into place, so a reader never sees a
half-written key; the folder is 0700 and each file 0600 because they hold private keys.
Lifecycle changes hold an ``flock`` on a lock file in the folder (:meth:`KeyStore.exclusive`).
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from authserver.config import DEFAULT_ALG
from authserver.errors import KeyNotFound, KeyStoreError
from authserver.security import owner_only
from authserver.security.key_material import (
    LoadResult,
    Passphrases,
    SigningKey,
    new_signing_key,
    open_signing_key,
)
from authserver.security.key_store import every_key

#: ``SigningKey`` is re-exported: the OAuth layer and the wiring know keys by this module.
__all__ = ["KEY_FILE_SUFFIX", "KeyStore", "SigningKey"]

KEY_FILE_SUFFIX = ".key.json"
#: Held with ``flock`` while a lifecycle change reads and rewrites the folder.
LOCK_FILE_NAME = ".lock"


class KeyStore:
    """Reads and writes the key files of one folder (a :class:`SigningKeyStore`)."""

    def __init__(
        self, directory: Path, passphrase: str | None = None, previous: str | None = None
    ) -> None:
        self.directory = directory
        self.location = str(directory)
        self._passphrases = Passphrases(passphrase, previous)

    def prepare(self) -> None:
        self.ensure_directory()

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
        return every_key(self.load())

    def generate(
        self, alg: str = DEFAULT_ALG, rsa_bits: int = 2048, activates_at: datetime | None = None
    ) -> SigningKey:
        """Create a key and write it; it signs from ``activates_at`` (default: now)."""
        key = new_signing_key(alg, rsa_bits, activates_at, self._passphrases)
        self.ensure_directory()
        self.put(key)
        return key

    def add(self, key: SigningKey) -> bool:
        if self._path(key.kid).exists():
            return False
        self.ensure_directory()
        self.put(key)
        return True

    def delete(self, kid: str) -> None:
        try:
            self._path(kid).unlink()
        except FileNotFoundError:
            raise KeyNotFound(kid) from None
        except OSError as exc:
            raise self._cannot_write(exc) from None

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """An ``flock`` on the folder's lock file, across processes (and hosts, where the
        shared file system supports it, as NFS v4 does)."""
        self.ensure_directory()
        try:
            fd = os.open(
                self.directory / LOCK_FILE_NAME,
                # Read-write: over NFS an exclusive flock is a write lock, which needs it.
                os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                owner_only.OWNER_ONLY_FILE,
            )
        except OSError as exc:
            raise self._cannot_write(exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _cannot_write(self, exc: OSError) -> KeyStoreError:
        return KeyStoreError(f"AUTHSERVER_KEYS_DIR: cannot write {self.directory}: {exc.strerror}")

    def _path(self, kid: str) -> Path:
        if "/" in kid or kid.startswith("."):
            raise KeyNotFound(kid)
        return self.directory / f"{kid}{KEY_FILE_SUFFIX}"

    def _key_paths(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob("*" + KEY_FILE_SUFFIX))

    def put(self, key: SigningKey) -> None:
        document = {
            "kid": key.kid,
            "alg": key.alg,
            "created_at": key.created_at.isoformat(),
            "activates_at": key.activates_at.isoformat(),
            "private_key": key.pem.decode(),
        }
        try:
            fd, temp_name = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".json")
        except OSError as exc:
            raise self._cannot_write(exc) from None
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(document, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temp_name, owner_only.OWNER_ONLY_FILE)
            os.replace(temp_name, self._path(key.kid))
        except BaseException as exc:
            Path(temp_name).unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise self._cannot_write(exc) from None
            raise

    def _load(self, path: Path) -> SigningKey:
        where = f"signing key file {path}"
        try:
            document = json.loads(path.read_text())
            alg = document["alg"]
            created_at = datetime.fromisoformat(document["created_at"])
            activates_at = datetime.fromisoformat(document["activates_at"])
            pem = document["private_key"].encode()
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            raise KeyStoreError(f"{where} is unreadable or corrupt") from None
        key = open_signing_key(alg, created_at, activates_at, pem, self._passphrases, where)
        if path.name != f"{key.kid}{KEY_FILE_SUFFIX}":
            raise KeyStoreError(f"{where} is not named after its key's kid")
        return key
