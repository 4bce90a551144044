"""The client assertion a key-holding client authenticates with (``private_key_jwt``).

RFC 7523 §2.2 lets a client prove who it is with a JWT signed by its own private key instead
of sending a shared secret: the server holds only the public half, so nothing the server
stores or logs can be replayed as the client's credential. Each token request carries a new
assertion (RFC 7523 §3): ``iss`` and ``sub`` are the client id, ``aud`` names the server,
``exp`` is a minute away and ``jti`` is random, so a captured assertion is refused once used
and is worthless a minute later.

The key is loaded and checked against the algorithm once, when the source is made: a wrong
key fails the service at start-up rather than at its first token request, and a PEM file is
never read again on the request path.
"""

from __future__ import annotations

import os
import secrets
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, OKPKey, RSAKey

#: RFC 7521 §4.2: the ``client_assertion_type`` of a JWT client assertion.
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: What a source can sign with. HMAC is absent on purpose (that is ``client_secret_jwt``,
#: a shared secret again), and so is ``none``.
ALGORITHMS = ("RS256", "PS256", "ES256", "EdDSA")
#: Seconds an assertion is valid: enough for the request to reach the server on a slow
#: network, short enough that a captured one is soon useless (and the server remembers its
#: ``jti`` only briefly).
ASSERTION_LIFETIME = 60
#: Random bytes in a ``jti``: 256 bits, well above RFC 7519's "negligible probability" of
#: two assertions sharing one, which the server would refuse as a replay.
JTI_BYTES = 32
#: The smallest RSA key the server accepts in a client's key set.
MIN_RSA_BITS = 2048

#: A private key as a caller may hold it: the path of a PEM file, PEM bytes, a joserfc key,
#: or a ``cryptography`` private key object.
PrivateKey = (
    str
    | os.PathLike[str]
    | bytes
    | RSAKey
    | ECKey
    | OKPKey
    | rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
)
_Signable = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey

#: The key each algorithm signs with, as the error messages name it.
_NEEDED = {
    "RS256": "an RSA key",
    "PS256": "an RSA key",
    "ES256": "an EC P-256 key",
    "EdDSA": "an Ed25519 key",
}


class AssertionSigner:
    """Signs a fresh client assertion for each token request with one private key."""

    def __init__(
        self,
        client_id: str,
        private_key: PrivateKey,
        *,
        key_id: str | None,
        algorithm: str,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm {algorithm!r:.40} is not one of {', '.join(ALGORITHMS)}")
        if key_id is not None and (not isinstance(key_id, str) or not key_id):
            raise ValueError("key_id must be a non-empty string (the kid of the registered key)")
        self.client_id = client_id
        self.key_id = key_id
        self.algorithm = algorithm
        self._key = _joserfc_key(_checked(_private_key(private_key), algorithm))
        # The registered key set names the key by kid; without one the server picks the
        # only key that fits the algorithm.
        self._header = {"alg": algorithm, "typ": "JWT"}
        if key_id is not None:
            self._header["kid"] = key_id
        self._wall_clock = wall_clock
        if algorithm == "EdDSA":
            # RFC 9864 deprecates the polymorphic "EdDSA" name and joserfc warns on each
            # signature; it is still the name servers' libraries understand, and the caller
            # chose it by name.
            warnings.filterwarnings(
                "ignore",
                message="EdDSA is deprecated",
                category=SecurityWarning,
                module=r"joserfc\.",
            )

    def __repr__(self) -> str:
        return (
            f"AssertionSigner(client_id={self.client_id!r}, private_key='***', "
            f"key_id={self.key_id!r}, algorithm={self.algorithm!r})"
        )

    def form(self, audience: str) -> dict[str, str]:
        """The form fields that authenticate one token request (RFC 7521 §4.2), with a new
        assertion for ``audience`` (the server's issuer identifier or its token endpoint).

        Times are the wall clock's (``exp`` and ``iat`` are compared with the server's
        clock), not the monotonic clock the token cache runs on."""
        now = int(self._wall_clock())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": audience,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME,
            "jti": secrets.token_urlsafe(JTI_BYTES),
        }
        assertion = jwt.encode(self._header, claims, self._key, algorithms=[self.algorithm])
        return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}


def _private_key(private_key: PrivateKey) -> object:
    """The key as a ``cryptography`` object (not yet checked): a path's file is read here,
    once."""
    if isinstance(private_key, RSAKey | ECKey | OKPKey):
        if not private_key.is_private:
            raise ValueError("private_key is a public key: give the private key")
        return private_key.private_key
    if isinstance(private_key, str) and private_key.lstrip().startswith("-----BEGIN"):
        raise ValueError("a str private_key is a file path: pass PEM contents as bytes")
    if isinstance(private_key, str | os.PathLike):
        try:
            pem = Path(private_key).read_bytes()
        except OSError as exc:
            raise ValueError(f"cannot read private_key {exc.filename!r}: {exc.strerror}") from None
        return _from_pem(pem, f"the file {os.fspath(private_key)!r}")
    if isinstance(private_key, bytes):
        return _from_pem(private_key, "private_key")
    return private_key


def _from_pem(pem: bytes, where: str) -> object:
    try:
        return load_pem_private_key(pem, password=None)
    except TypeError:
        raise ValueError(
            f"{where} holds an encrypted private key: decrypt it (or load it with the "
            "cryptography package) and pass the key object"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        # Never repeat the contents: they may be a private key in a format we do not read.
        raise ValueError(f"{where} is not an unencrypted PEM private key") from None


def _checked(key: object, algorithm: str) -> _Signable:
    """``key`` if ``algorithm`` can sign with it; ``ValueError`` saying what it needs."""
    if isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
        raise ValueError("private_key is a public key: give the private key")
    needed = _NEEDED[algorithm]
    if algorithm in ("RS256", "PS256") and isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise ValueError(
                f"private_key is a {key.key_size}-bit RSA key: {algorithm} needs at least "
                f"{MIN_RSA_BITS} bits"
            )
        return key
    if (
        algorithm == "ES256"
        and isinstance(key, ec.EllipticCurvePrivateKey)
        and isinstance(key.curve, ec.SECP256R1)
    ):
        return key
    if algorithm == "EdDSA" and isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    raise ValueError(f"algorithm {algorithm} needs {needed}, not {_described(key)}")


def _described(key: object) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        return "an RSA key"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return f"an EC {key.curve.name} key"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "an Ed25519 key"
    return f"a {type(key).__name__}"


def _joserfc_key(key: _Signable) -> RSAKey | ECKey | OKPKey:
    if isinstance(key, rsa.RSAPrivateKey):
        return RSAKey.import_key(key)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return ECKey.import_key(key)
    return OKPKey.import_key(key)
