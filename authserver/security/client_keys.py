"""The public keys a client signs its assertions with (RFC 7523 §2.2, RFC 7517 §5).

One set of rules for a JWK Set, whether an admin registers it (``clients create --jwks-file``)
or a client's ``jwks_uri`` serves it: public keys only, of the types our assertion algorithms
use, each usable for signing. A key set that breaks a rule is refused whole with one line
saying which key and why, so an admin fixes it before any client depends on it.

A workload platform's key set (``issuer_key_set``) is read more leniently: it serves every
verifier of that platform, so keys we cannot use are passed over rather than refused.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, Key, KeySet, OKPKey, RSAKey

#: The algorithms an assertion may be signed with. ``Ed25519`` is RFC 9864's name for what
#: ``EdDSA`` names with an Ed25519 key (openid-client sends it); HMAC and ``none`` are absent
#: on purpose: a client's key set is public, so an HMAC "signature" proves nothing.
ASSERTION_ALGORITHMS = ("RS256", "PS256", "ES256", "EdDSA", "Ed25519")
#: Which key type (and curve) each algorithm needs.
_ALGORITHM_KEYS: dict[str, tuple[str, str | None]] = {
    "RS256": ("RSA", None),
    "PS256": ("RSA", None),
    "ES256": ("EC", "P-256"),
    "EdDSA": ("OKP", "Ed25519"),
    "Ed25519": ("OKP", "Ed25519"),
}
_KEY_CLASSES: dict[str, type[RSAKey] | type[ECKey] | type[OKPKey]] = {
    "RSA": RSAKey,
    "EC": ECKey,
    "OKP": OKPKey,
}
_CURVES = {"EC": ("P-256",), "OKP": ("Ed25519",)}
#: RFC 7518 §6.2.2, §6.3.2 and §6.4 (``k``), RFC 8037 §2 (``d`` of an OKP key).
PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
#: Enough for a rotation overlap of several keys; a set is read on every verification.
MAX_KEYS = 16
MIN_RSA_BITS = 2048
#: A platform publishes keys for every verifier; a SPIFFE bundle holds one per signing key.
MAX_ISSUER_KEYS = 64
#: What marks a signing key in a platform's set: SPIFFE bundles say ``jwt-svid`` for the keys
#: that sign JWT-SVIDs (SPIFFE Trust Domain and Bundle, section 4.2.1).
ISSUER_SIGNING_USES = ("sig", "jwt-svid")


class InvalidKeySet(ValueError):
    """The document is not a JWK Set of public signing keys we accept; the message says why."""


def public_key_set(document: Any) -> KeySet:
    """The key set ``document`` describes, checked key by key; raises :class:`InvalidKeySet`."""
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise InvalidKeySet('a JWK Set is a JSON object with a "keys" list (RFC 7517 section 5)')
    members = document["keys"]
    if not 1 <= len(members) <= MAX_KEYS:
        raise InvalidKeySet(
            f"a JWK Set must hold 1 to {MAX_KEYS} keys, this one has {len(members)}"
        )
    keys = [_public_key(position, member) for position, member in enumerate(members, 1)]
    return _with_unique_kids(keys)


def issuer_key_set(document: Any) -> KeySet:
    """The keys of a workload platform's JWK Set that can verify our assertion algorithms.

    Keys of other types or curves, encryption keys and a SPIFFE bundle's ``x509-svid`` keys
    are passed over: the set is the platform's, made for every verifier. A private member in
    any key refuses the whole set (a platform that publishes one is misconfigured, and its
    keys are no proof of anything), as does a set with no usable key at all.
    """
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise InvalidKeySet('a JWK Set is a JSON object with a "keys" list (RFC 7517 section 5)')
    members = document["keys"]
    if len(members) > MAX_ISSUER_KEYS:
        raise InvalidKeySet(f"the JWK Set has {len(members)} keys, more than {MAX_ISSUER_KEYS}")
    keys = []
    for position, member in enumerate(members, 1):
        if isinstance(member, Mapping) and any(name in member for name in PRIVATE_MEMBERS):
            raise InvalidKeySet(f"key {position} of the JWK Set has private members")
        try:
            keys.append(_public_key(position, member, uses=ISSUER_SIGNING_USES))
        except InvalidKeySet:
            continue  # not a key for us
    if not keys:
        raise InvalidKeySet(
            f"none of its {len(members)} keys can verify {', '.join(ASSERTION_ALGORITHMS)}"
        )
    return _with_unique_kids(keys)


def _with_unique_kids(keys: list[Key]) -> KeySet:
    """A ``kid`` must name one key: which of two a signature meant would be a guess."""
    kids = [key.kid for key in keys if key.kid is not None]
    if len(kids) != len(set(kids)):
        raise InvalidKeySet("two keys of the set have the same kid")
    return KeySet(keys)


def _public_key(position: int, member: Any, uses: tuple[str, ...] = ("sig",)) -> Key:
    where = f"key {position} of the JWK Set"
    if not isinstance(member, Mapping):
        raise InvalidKeySet(f"{where} is not a JSON object")
    private = [name for name in PRIVATE_MEMBERS if name in member]
    if private:
        raise InvalidKeySet(
            f"{where} has private member(s) {', '.join(private)}: register public keys only"
        )
    kty = member.get("kty")
    if kty not in ("RSA", "EC", "OKP"):
        raise InvalidKeySet(f"{where} has kty {kty!r}: use RSA, EC (P-256) or OKP (Ed25519)")
    if kty in _CURVES and member.get("crv") not in _CURVES[kty]:
        raise InvalidKeySet(f"{where} has curve {member.get('crv')!r}: use {_CURVES[kty][0]}")
    if member.get("use", "sig") not in uses:
        raise InvalidKeySet(f'{where} has use {member.get("use")!r}: a signing key has "sig"')
    alg, usable = member.get("alg"), usable_algorithms_for(kty, member.get("crv"))
    if alg is not None and alg not in usable:
        raise InvalidKeySet(f"{where} has alg {alg!r}: use one of {', '.join(usable)}")
    kid = member.get("kid")
    if kid is not None and (not isinstance(kid, str) or not kid):
        raise InvalidKeySet(f"{where} has a kid that is not a non-empty string")
    try:
        with warnings.catch_warnings():
            # joserfc warns about a short RSA key; it is refused below with our own words.
            warnings.simplefilter("ignore")
            # A SPIFFE "jwt-svid" key is a signing key; joserfc knows "use" as sig or enc only.
            parameters = {**member, "use": "sig"} if "use" in member else dict(member)
            key: Key = _KEY_CLASSES[kty].import_key(parameters)
    except (JoseError, ValueError, TypeError) as exc:
        detail = f": {exc}" if str(exc) else ""
        raise InvalidKeySet(f"{where} is not a valid {kty} public key{detail}") from None
    if isinstance(key, RSAKey) and key.raw_value.key_size < MIN_RSA_BITS:
        raise InvalidKeySet(f"{where} is an RSA key under {MIN_RSA_BITS} bits")
    return key


def usable_algorithms_for(kty: str, crv: str | None) -> tuple[str, ...]:
    """The assertion algorithms a key of this type and curve can verify."""
    return tuple(
        alg
        for alg, (needed_kty, needed_crv) in _ALGORITHM_KEYS.items()
        if needed_kty == kty and (needed_crv is None or needed_crv == crv)
    )


def verification_key(key_set: KeySet, kid: str | None, alg: str) -> Key | None:
    """The key of ``key_set`` that verifies an assertion with header ``kid`` and ``alg``.

    With a ``kid``, the key that has it; without one, the only key that can verify ``alg``
    (a client with several such keys must name one). ``None`` when no key fits: the key's
    type, curve and declared ``alg`` must all agree with the header's ``alg``.
    """
    candidates = [
        key
        for key in key_set.keys
        if (kid is None or key.kid == kid) and alg in _algorithms_of(key)
    ]
    return candidates[0] if len(candidates) == 1 else None


def _algorithms_of(key: Key) -> tuple[str, ...]:
    declared = key.get("alg")
    crv = key.get("crv")
    usable = usable_algorithms_for(key.key_type, crv if isinstance(crv, str) else None)
    if declared is None:
        return usable
    # A key registered for EdDSA also verifies RFC 9864's name for the same signature.
    if declared in ("EdDSA", "Ed25519"):
        return tuple(alg for alg in ("EdDSA", "Ed25519") if alg in usable)
    return (declared,) if declared in usable else ()


def has_kid(key_set: KeySet, kid: str) -> bool:
    return any(key.kid == kid for key in key_set.keys)
