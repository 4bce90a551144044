"""A service calling an API protected by authserver: a client_credentials token from
``authserver.client``, cached and refreshed by it, sent as ``Authorization: Bearer`` by
``BearerAuth`` (which also retries once with a fresh token if the API answers 401).

Configuration comes from the environment, as a deployed service would get it:

    AUTHSERVER_ISSUER   the authorization server's issuer URL (the token endpoint is discovered)
    TOKEN_URL           ...or the token endpoint itself, instead of AUTHSERVER_ISSUER
    CLIENT_ID           this service's client id
    CLIENT_SECRET       its secret (from a secret store; never logged or printed)
    API_URL             the protected URL to GET
    SCOPE, AUDIENCE     optional: narrower than the client's registered scopes and audiences

Prints the API's status and body; exits 0 on a 2xx, 1 otherwise, 2 on missing configuration.
"""

from __future__ import annotations

import os
import sys

import requests

from authserver.client import BearerAuth, ClientCredentials, TokenError

REQUIRED = ("CLIENT_ID", "CLIENT_SECRET", "API_URL")


def main() -> int:
    missing = [name for name in REQUIRED if not os.environ.get(name)]
    issuer, token_url = os.environ.get("AUTHSERVER_ISSUER"), os.environ.get("TOKEN_URL")
    if bool(issuer) == bool(token_url):
        missing.append("AUTHSERVER_ISSUER or TOKEN_URL (one of them)")
    if missing:
        print(f"service.py: set {', '.join(missing)}", file=sys.stderr)
        return 2

    source = ClientCredentials(
        os.environ["CLIENT_ID"],
        os.environ["CLIENT_SECRET"],
        issuer=issuer or None,
        token_url=token_url or None,
        scope=os.environ.get("SCOPE") or None,
        audience=os.environ.get("AUDIENCE") or None,
    )
    # One source and one session for the life of the service: the token is fetched once and
    # reused for every call until shortly before it expires.
    with source, requests.Session() as session:
        session.auth = BearerAuth(source)
        try:
            response = session.get(os.environ["API_URL"], timeout=10)
        except TokenError as exc:
            print(f"service.py: no access token: {exc}", file=sys.stderr)
            return 1
        except requests.RequestException as exc:
            print(f"service.py: API unreachable: {exc}", file=sys.stderr)
            return 1
    print(response.status_code)
    print(response.text)
    return 0 if response.ok else 1


if __name__ == "__main__":
    sys.exit(main())
