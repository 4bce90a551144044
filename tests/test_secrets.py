"""Client secrets: generation, the two stored formats and verification."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from authserver.security import secrets

URL_SAFE = re.compile(r"^[A-Za-z0-9_-]+$")
ARGON2ID_PREFIX = "$argon2id$v=19$m=65536,t=3,p=4$"
CHOSEN_SECRET = "Migr@ted secret from the old server!"


def test_generated_secret_has_the_scanner_prefix() -> None:
    assert secrets.generate_client_secret().startswith("ascs_")


def test_generated_secret_carries_at_least_256_bits() -> None:
    body = secrets.generate_client_secret().removeprefix("ascs_")
    # 256 bits in unpadded base64url need ceil(256 / 6) = 43 characters.
    assert len(body) >= 43
    assert len(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))) >= 32


def test_generated_secret_uses_only_url_safe_characters() -> None:
    for _ in range(200):
        assert URL_SAFE.match(secrets.generate_client_secret())


def test_generated_secrets_never_repeat() -> None:
    generated = {secrets.generate_client_secret() for _ in range(1000)}
    assert len(generated) == 1000


def test_generated_client_id_is_url_safe_and_unique() -> None:
    ids = {secrets.generate_client_id() for _ in range(1000)}
    assert len(ids) == 1000
    for client_id in ids:
        assert URL_SAFE.match(client_id)
        assert client_id.startswith("cli_")
        # At least 128 random bits: 22 base64url characters after the prefix.
        assert len(client_id.removeprefix("cli_")) >= 22


def test_sha256_stored_format_is_the_prefixed_base64url_digest() -> None:
    secret = secrets.generate_client_secret()
    stored = secrets.hash_generated_secret(secret)
    expected = base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest())
    assert stored == "$sha256$" + expected.decode().rstrip("=")
    assert re.fullmatch(r"\$sha256\$[A-Za-z0-9_-]{43}", stored)
    assert secret not in stored
    assert secret.removeprefix("ascs_") not in stored


def test_sha256_hash_verifies_the_right_secret_only() -> None:
    secret = secrets.generate_client_secret()
    stored = secrets.hash_generated_secret(secret)
    assert secrets.verify_secret(secret, stored) is True
    assert secrets.verify_secret(secrets.generate_client_secret(), stored) is False
    assert secrets.verify_secret(secret + "x", stored) is False
    assert secrets.verify_secret(secret[:-1], stored) is False
    assert secrets.verify_secret("", stored) is False


def test_argon2id_stored_format_is_a_phc_string_with_rfc9106_parameters() -> None:
    stored = secrets.hash_chosen_secret(CHOSEN_SECRET)
    assert stored.startswith(ARGON2ID_PREFIX)
    salt, digest = stored.removeprefix(ARGON2ID_PREFIX).split("$")
    assert len(salt) >= 22  # at least 16 bytes of salt, unpadded base64
    assert len(digest) >= 43  # at least 32 bytes of hash
    assert CHOSEN_SECRET not in stored


def test_argon2id_hashes_of_one_secret_are_salted_differently() -> None:
    assert secrets.hash_chosen_secret(CHOSEN_SECRET) != secrets.hash_chosen_secret(CHOSEN_SECRET)


def test_argon2id_hash_verifies_the_right_secret_only() -> None:
    stored = secrets.hash_chosen_secret(CHOSEN_SECRET)
    assert secrets.verify_secret(CHOSEN_SECRET, stored) is True
    assert secrets.verify_secret(CHOSEN_SECRET + " ", stored) is False
    assert secrets.verify_secret(CHOSEN_SECRET.lower(), stored) is False
    assert secrets.verify_secret("", stored) is False


@pytest.mark.parametrize(
    "stored",
    [
        "$bcrypt$2b$12$abcdefghijklmnopqrstuu",
        "$argon2i$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNo",
        "sha256$deadbeef",
        "",
    ],
)
def test_unknown_stored_format_never_verifies(stored: str) -> None:
    assert secrets.verify_secret(CHOSEN_SECRET, stored) is False


def test_plaintext_in_the_stored_column_never_verifies() -> None:
    secret = secrets.generate_client_secret()
    assert secrets.verify_secret(secret, secret) is False


def test_unknown_client_never_verifies() -> None:
    assert secrets.verify_secret(secrets.generate_client_secret(), None) is False
    assert secrets.verify_secret("", None) is False
