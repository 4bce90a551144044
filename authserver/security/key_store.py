"""What the key lifecycle, the CLI and every worker need from a place that holds signing keys.

Two stores implement it: the keys folder (``security/keys.py``, one host or a shared disk)
and the database (``security/key_database.py``, any number of hosts). Everything above works
through this protocol only, so both behave alike and derive the same states from the same
schedule and clock.
"""

from __future__ import annotations

from collections.abc import Hashable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol

from authserver.errors import KeyStoreError
from authserver.security.key_material import LoadResult, SigningKey


class SigningKeyStore(Protocol):
    #: Where the keys are, for messages (a folder, or "the database").
    location: str

    def prepare(self) -> None:
        """Make the store usable for writing; a store that cannot be written says so with
        a :class:`~authserver.errors.KeyStoreError`."""

    def stamp(self) -> Hashable:
        """Changes whenever a key is added, changed or removed; cheap enough to poll every
        second."""

    def load(self) -> LoadResult:
        """Every usable key; unusable ones are reported, not fatal (a worker must go on)."""

    def load_all(self) -> list[SigningKey]:
        """Every key, failing on the first that cannot be used (start-up, CLI)."""

    def generate(self, alg: str, rsa_bits: int, activates_at: datetime | None = None) -> SigningKey:
        """Create and store a key that signs from ``activates_at`` (default: now)."""

    def put(self, key: SigningKey) -> None:
        """Store ``key``, replacing a stored key with the same kid (new schedule or PEM)."""

    def add(self, key: SigningKey) -> bool:
        """Store ``key`` unless a key with its kid is stored; True if it was added."""

    def delete(self, kid: str) -> None:
        """Remove a key; :class:`~authserver.errors.KeyNotFound` when there is none."""

    def exclusive(self) -> AbstractContextManager[None]:
        """Held around a lifecycle change (read, decide, write): one holder at a time across
        every process and host sharing the store, so concurrent starts or rotations decide
        on the state the previous holder left."""


def every_key(result: LoadResult) -> list[SigningKey]:
    """The keys of ``result``, failing on the first that cannot be used (start-up, CLI):
    where a running worker skips a bad key, an admin must hear about it."""
    if result.problems:
        raise KeyStoreError(result.problems[0])
    return result.keys
