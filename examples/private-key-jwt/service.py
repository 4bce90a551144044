"""A service that authenticates to authserver with a private key instead of a secret
(``private_key_jwt``, RFC 7523): the server stores only the public key, so nothing it holds
(database, backups, logs) can be used to impersonate the service.

    python service.py jwks     print the public JWK Set to register (makes KEY_FILE if missing)
    python service.py          get a token with ClientCredentials(private_key=KEY_FILE) and,
                               when API_URL is set, GET it with the token

Configuration comes from the environment, as a deployed service would get it:

    KEY_FILE            the private key, PEM (made by ``jwks`` with mode 0600 when missing;
                        in production, mounted from a secret store)
    ALGORITHM           ES256 (default), RS256, PS256 or EdDSA: the key made, and the signature
    AUTHSERVER_ISSUER   the authorization server's issuer URL (the token endpoint is discovered)
    TOKEN_URL           ...or the token endpoint itself, instead of AUTHSERVER_ISSUER
    CLIENT_ID           the id ``authserver clients create`` printed for the service
    API_URL             optional: the protected URL to GET
    SCOPE, AUDIENCE     optional: narrower than the client's registered scopes and audiences

The key's ``kid`` is its RFC 7638 thumbprint, so the registered key set and the assertions
agree on it without another setting, and a new key has a new kid (rotation: register a set with
both keys, switch KEY_FILE, then drop the old key from the set).

Exits 0 on success, 1 on failure (no token, or the API said no), 2 on missing configuration.
The private key is never printed; nor is the token.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import requests
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, RSAKey

from authserver.client import BearerAuth, ClientCredentials, TokenError

#: The joserfc key type each algorithm signs with.
KEY_TYPES: dict[str, type[RSAKey] | type[ECKey] | type[OKPKey]] = {
    "RS256": RSAKey,
    "PS256": RSAKey,
    "ES256": ECKey,
    "EdDSA": OKPKey,
}
#: How a new key of each type is made: RSA at the size the server requires at least.
NEW_KEYS: dict[type[RSAKey] | type[ECKey] | type[OKPKey], Callable[[], RSAKey | ECKey | OKPKey]] = {
    RSAKey: lambda: RSAKey.generate_key(2048, private=True),
    ECKey: lambda: ECKey.generate_key("P-256", private=True),
    OKPKey: lambda: OKPKey.generate_key("Ed25519", private=True),
}


class ConfigurationError(Exception):
    """Something to fix in the environment; the message says what."""


def algorithm() -> str:
    chosen = os.environ.get("ALGORITHM", "ES256")
    if chosen not in KEY_TYPES:
        raise ConfigurationError(f"set ALGORITHM to one of {', '.join(KEY_TYPES)}, not {chosen!r}")
    return chosen


def required(*names: str) -> None:
    missing = [name for name in names if not os.environ.get(name)]
    if missing:
        raise ConfigurationError(f"set {', '.join(missing)}")


def read_key(path: Path, algorithm: str) -> RSAKey | ECKey | OKPKey:
    try:
        return KEY_TYPES[algorithm].import_key(path.read_bytes())
    except FileNotFoundError:
        raise ConfigurationError(f"no key at {path}: run `service.py jwks` first") from None
    except (OSError, JoseError, ValueError, TypeError):
        raise ConfigurationError(f"{path} does not hold a private key for {algorithm}") from None


def load_or_make_key(path: Path, algorithm: str) -> RSAKey | ECKey | OKPKey:
    """The service's key pair: read from ``path``, or made and written there (readable only
    by this user) when the file does not exist yet."""
    if path.exists():
        return read_key(path, algorithm)
    key = NEW_KEYS[KEY_TYPES[algorithm]]()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(key.as_pem(private=True))
    print(f"service.py: made a new {algorithm} key in {path}", file=sys.stderr)
    return key


def print_jwks() -> int:
    """The public JWK Set for ``authserver clients create --auth-method private_key_jwt
    --jwks-file``: public members only, by construction."""
    required("KEY_FILE")
    chosen = algorithm()
    key = load_or_make_key(Path(os.environ["KEY_FILE"]), chosen)
    jwk = {**key.as_dict(private=False), "kid": key.thumbprint(), "use": "sig", "alg": chosen}
    print(json.dumps({"keys": [jwk]}, indent=2))
    return 0


def fetch_and_call() -> int:
    required("KEY_FILE", "CLIENT_ID")
    issuer, token_url = os.environ.get("AUTHSERVER_ISSUER"), os.environ.get("TOKEN_URL")
    if bool(issuer) == bool(token_url):
        raise ConfigurationError("set AUTHSERVER_ISSUER or TOKEN_URL (one of them)")
    chosen, path = algorithm(), Path(os.environ["KEY_FILE"])
    # The helper reads the file once, here; each token request gets a new signed assertion.
    source = ClientCredentials(
        os.environ["CLIENT_ID"],
        private_key=path,
        key_id=read_key(path, chosen).thumbprint(),
        algorithm=chosen,
        issuer=issuer or None,
        token_url=token_url or None,
        scope=os.environ.get("SCOPE") or None,
        audience=os.environ.get("AUDIENCE") or None,
    )
    with source, requests.Session() as session:
        try:
            source.token()
        except TokenError as exc:
            print(f"service.py: no access token: {exc}", file=sys.stderr)
            return 1
        print(f"service.py: got an access token for {source.client_id}", file=sys.stderr)
        api_url = os.environ.get("API_URL")
        if not api_url:
            return 0
        # The call reuses the cached token (a new one only shortly before it expires).
        session.auth = BearerAuth(source)
        try:
            response = session.get(api_url, timeout=10)
        except (TokenError, requests.RequestException) as exc:
            print(f"service.py: API call failed: {exc}", file=sys.stderr)
            return 1
    print(response.status_code)
    print(response.text)
    return 0 if response.ok else 1


def main(argv: list[str]) -> int:
    if argv not in ([], ["jwks"]):
        print("usage: service.py [jwks]", file=sys.stderr)
        return 2
    try:
        return print_jwks() if argv else fetch_and_call()
    except (ConfigurationError, ValueError) as exc:  # ValueError: a key that does not fit
        print(f"service.py: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
