"""Signing keys themselves, whichever store holds them: generating them, the kid, the PEM
sealed under the passphrase, and opening it again (with the previous passphrase as a
fallback, so the passphrase can change while keys sealed under the old one still serve).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from joserfc.jwk import ECKey, OKPKey, RSAKey

from authserver.config import SUPPORTED_ALGS
from authserver.errors import KeyStoreError

RSA_PUBLIC_EXPONENT = 65537
#: The passphrase's setting in messages: either variable may have given it.
PASSPHRASE_SETTING = "AUTHSERVER_KEY_PASSPHRASE(_FILE)"  # noqa: S105 (a variable name, not a secret)
PREVIOUS_PASSPHRASE_SETTING = "AUTHSERVER_KEY_PASSPHRASE_PREVIOUS"  # noqa: S105 (a name too)

JWK = RSAKey | ECKey | OKPKey
SigningPrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


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
    #: False when the PEM is not sealed under the current passphrase (opened with the previous
    #: one, or stored in clear while a passphrase is set): ``keys rewrap`` re-seals it.
    sealed_with_current: bool = field(default=True, compare=False, repr=False)

    def public_jwk(self) -> dict[str, Any]:
        """The RFC 7517 public members only, with the ``use``/``alg`` resource servers need."""
        public = self.jwk.as_dict(private=False)
        return {**public, "kid": self.kid, "alg": self.alg, "use": "sig"}


@dataclass(frozen=True)
class LoadResult:
    keys: list[SigningKey]
    #: One message per stored key that could not be used, naming it (file or kid).
    problems: list[str]


class Passphrases:
    """The passphrase keys are sealed under, and the previous one they may still be under."""

    def __init__(self, current: str | None, previous: str | None = None) -> None:
        self._current = current.encode() if current else None
        self._previous = previous.encode() if previous else None

    @property
    def has_current(self) -> bool:
        return self._current is not None

    def seal(self, private_key: PrivateKeyTypes) -> bytes:
        """PKCS#8 PEM, encrypted under the current passphrase when there is one."""
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(self._current)
            if self._current
            else serialization.NoEncryption()
        )
        return private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )

    def open(self, pem: bytes, where: str) -> tuple[PrivateKeyTypes, bool]:
        """The private key, and whether it is sealed under the current passphrase.

        ``where`` names the key in errors (``signing key file PATH``, ``signing key KID``).
        """
        if b"ENCRYPTED" not in pem.split(b"\n", 1)[0]:
            return _load_pem(pem, None, where, "holds no valid private key"), not self._current
        candidates = [p for p in (self._current, self._previous) if p]
        if not candidates:
            raise KeyStoreError(f"{where} is encrypted and {PASSPHRASE_SETTING} is not set")
        for passphrase in candidates:
            try:
                private_key = serialization.load_pem_private_key(pem, password=passphrase)
            except (ValueError, TypeError):
                continue
            return private_key, passphrase == self._current
        tried = PASSPHRASE_SETTING + (
            f" or {PREVIOUS_PASSPHRASE_SETTING}" if self._previous else ""
        )
        raise KeyStoreError(f"{where} cannot be decrypted with {tried}")


def _load_pem(pem: bytes, password: bytes | None, where: str, problem: str) -> PrivateKeyTypes:
    try:
        return serialization.load_pem_private_key(pem, password=password)
    except (ValueError, TypeError):
        raise KeyStoreError(f"{where} {problem}") from None


def new_signing_key(
    alg: str, rsa_bits: int, activates_at: datetime | None, passphrases: Passphrases
) -> SigningKey:
    """A fresh key sealed under the current passphrase; it signs from ``activates_at``
    (default: now)."""
    now = datetime.now(UTC)
    private_key = _generate_private_key(alg, rsa_bits)
    return _signing_key(private_key, alg, now, activates_at or now, passphrases.seal(private_key))


def open_signing_key(
    alg: str,
    created_at: datetime,
    activates_at: datetime,
    pem: bytes,
    passphrases: Passphrases,
    where: str,
) -> SigningKey:
    """The stored key behind ``pem``, checked against its declared algorithm."""
    if created_at.tzinfo is None or activates_at.tzinfo is None:
        raise KeyStoreError(f"{where} has times without a time zone")
    private_key, sealed_with_current = passphrases.open(pem, where)
    if alg not in SUPPORTED_ALGS or not _matches(private_key, alg):
        raise KeyStoreError(f"{where} does not hold a valid {alg} key")
    key = _signing_key(private_key, alg, created_at, activates_at, pem)  # type: ignore[arg-type]
    return replace(key, sealed_with_current=sealed_with_current)


def resealed(key: SigningKey, passphrases: Passphrases) -> SigningKey:
    """``key`` with its PEM sealed under the current passphrase (``keys rewrap``)."""
    private_key, _ = passphrases.open(key.pem, f"signing key {key.kid}")
    return replace(key, pem=passphrases.seal(private_key), sealed_with_current=True)


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
