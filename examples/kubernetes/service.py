"""A service in a Kubernetes pod that gets authserver access tokens with the identity the
cluster already gave it: the projected service-account token the kubelet writes into the pod
(and rewrites before it expires). authserver holds a trust for the cluster's issuer, so there is
no client secret or key to create, mount or rotate.

Configuration comes from the environment, as the Deployment in README.md sets it:

    AUTHSERVER_ISSUER   the authorization server's issuer URL (the token endpoint is discovered)
    TOKEN_FILE          the projected token (default /var/run/secrets/tokens/authserver)
    CLIENT_ID           optional: the trust's client (the server checks it when given)
    API_URL             the protected URL to GET with the access token
    CALLS, INTERVAL     how many calls (default 1), how many seconds apart (default 0)
    SCOPE, AUDIENCE     optional: narrower than the client's registered scopes and audiences

Prints each answer's status and body on one line.

The token file is read at each access-token fetch (about once per access-token lifetime, not
per call), so the kubelet's rotation needs nothing from the service.

Exits 0 when every call succeeded, 1 on a failure (no token, or the API said no), 2 on missing
configuration.
Neither the platform token nor the access token is ever printed.
"""

from __future__ import annotations

import os
import sys
import time

import requests

from authserver.client import BearerAuth, ClientCredentials, TokenError

#: Where the Deployment in README.md mounts the projected token.
PROJECTED_PATH = "/var/run/secrets/tokens/authserver"


def log(message: str) -> None:
    print(f"service.py: {message}", file=sys.stderr, flush=True)


def main() -> int:
    issuer, api_url = os.environ.get("AUTHSERVER_ISSUER"), os.environ.get("API_URL")
    if not issuer or not api_url:
        log("set AUTHSERVER_ISSUER and API_URL")
        return 2
    try:
        calls, interval = int(os.environ.get("CALLS", "1")), float(os.environ.get("INTERVAL", "0"))
    except ValueError:
        log("CALLS is a whole number, INTERVAL a number of seconds")
        return 2
    source = ClientCredentials.from_token_file(
        os.environ.get("TOKEN_FILE", PROJECTED_PATH),
        issuer=issuer,
        client_id=os.environ.get("CLIENT_ID") or None,
        scope=os.environ.get("SCOPE") or None,
        audience=os.environ.get("AUDIENCE") or None,
    )
    # One source and one session for the life of the pod: every call reuses the cached
    # access token until shortly before it expires; only then is the file read again.
    with source, requests.Session() as session:
        session.auth = BearerAuth(source)
        for call in range(calls):
            time.sleep(interval if call else 0)
            try:
                answer = session.get(api_url, timeout=10)
            except TokenError as exc:
                # A PlatformTokenError names the file (not projected? wrong TOKEN_FILE?);
                # invalid_client from the server means no trust accepted the token.
                log(f"no access token: {exc}")
                return 1
            except requests.RequestException as exc:
                log(f"API unreachable: {exc}")
                return 1
            print(answer.status_code, answer.text.strip(), flush=True)
            if not answer.ok:
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
