"""A GitHub Actions job step that gets an authserver access token with the job's own OIDC
identity: GitHub signs a short-lived token naming the repository, ref and workflow, and
authserver holds a trust for GitHub's issuer and that repository's subject. No client secret
is stored in the repository's secrets.

    ACCESS_TOKEN=$(python get_token.py)     the access token, for the step's next commands

Configuration comes from the environment:

    ACTIONS_ID_TOKEN_REQUEST_URL, ACTIONS_ID_TOKEN_REQUEST_TOKEN
                        set by the runner when the job has ``permissions: id-token: write``
    OIDC_AUDIENCE       the audience the job's token is asked for: the trust's ``--audience``
    AUTHSERVER_ISSUER   the authorization server's issuer URL (the token endpoint is discovered)
    CLIENT_ID           optional: the trust's client (the server checks it when given)
    SCOPE, AUDIENCE     optional: narrower than the client's registered scopes and audiences

A new job token is asked for at each access-token fetch: each carries its own ``jti``, which
authserver accepts once, and lives five minutes.

Exits 0 on success, 1 when there is no access token, 2 on missing configuration. The job's
OIDC token is never printed; the access token only to standard output.
"""

from __future__ import annotations

import os
import sys
from urllib.parse import quote

import httpx

from authserver.client import ClientCredentials, TokenError

REQUIRED = (
    "ACTIONS_ID_TOKEN_REQUEST_URL",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    "OIDC_AUDIENCE",
    "AUTHSERVER_ISSUER",
)


class ConfigurationError(Exception):
    """Something to fix in the workflow; the message says what."""


class ActionsIdToken:
    """Asks the runner for a job OIDC token for ``audience``, as ``core.getIDToken()`` of
    @actions/core does: GET the request URL plus ``&audience=``, with the request token as a
    bearer; the answer's ``value`` is the JWT."""

    def __init__(self, request_url: str, request_token: str, audience: str) -> None:
        separator = "&" if "?" in request_url else "?"
        self.url = f"{request_url}{separator}audience={quote(audience, safe='')}"
        self._headers = {"Authorization": f"Bearer {request_token}", "Accept": "application/json"}
        self.audience = audience

    def __repr__(self) -> str:
        return f"ActionsIdToken(audience={self.audience!r})"

    def __call__(self) -> str:
        response = httpx.get(self.url, headers=self._headers, timeout=10)
        if response.status_code != 200:
            # The runner's answer, not ours to repeat: its status says enough.
            raise RuntimeError(f"the runner's token service answered HTTP {response.status_code}")
        value = response.json().get("value")
        if not isinstance(value, str):
            raise RuntimeError("the runner's token service answered without a token")
        return value


def source_from_environment() -> ClientCredentials:
    missing = [name for name in REQUIRED if not os.environ.get(name)]
    if any(name.startswith("ACTIONS_") for name in missing):
        raise ConfigurationError(
            "ACTIONS_ID_TOKEN_REQUEST_URL/_TOKEN unset: give the job `permissions: id-token: write`"
        )
    if missing:
        raise ConfigurationError(f"set {', '.join(missing)}")
    job_token = ActionsIdToken(
        os.environ["ACTIONS_ID_TOKEN_REQUEST_URL"],
        os.environ["ACTIONS_ID_TOKEN_REQUEST_TOKEN"],
        os.environ["OIDC_AUDIENCE"],
    )
    return ClientCredentials.from_platform_token(
        job_token,
        issuer=os.environ["AUTHSERVER_ISSUER"],
        client_id=os.environ.get("CLIENT_ID") or None,
        scope=os.environ.get("SCOPE") or None,
        audience=os.environ.get("AUDIENCE") or None,
    )


def main() -> int:
    try:
        source = source_from_environment()
    except ConfigurationError as exc:
        print(f"get_token.py: {exc}", file=sys.stderr)
        return 2
    with source:
        try:
            print(source.token())
        except TokenError as exc:
            # invalid_client: no trust accepted the job's token (another repository, branch
            # or audience than the trust names).
            print(f"get_token.py: no access token: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
