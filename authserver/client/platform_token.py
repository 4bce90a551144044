"""The platform's own token as the client's credential (workload identity federation).

A workload on Kubernetes, in a GitHub Actions job or under SPIRE already holds a JWT that its
platform signed and keeps fresh. When the authorization server trusts that platform's issuer
(``authserver trust add``), the workload presents that JWT, unchanged, as its
``client_assertion`` (RFC 7521 §4.2, RFC 7523 §2.2) and receives its client's access token:
there is no client secret or private key to issue, store, distribute or rotate.

The token is read anew for every token request and never cached here: platforms rotate it
(the kubelet rewrites a projected token file well before it expires; an Actions job asks for a
new one per audience), so the file or callable is always the freshest credential there is, and
rotation needs nothing from the service. The access token it buys is cached by the source as
usual, so the file is read about once per access-token lifetime, not per API call.

Nothing here ever puts the platform token into an error message or a ``repr``: it is a bearer
credential for as long as it lives.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

from authserver.client.assertion import ASSERTION_TYPE
from authserver.client.errors import TokenError

#: The most bytes read from a token file: real platform tokens are 1 to 2 KiB, and the server
#: refuses a request body over 64 KiB anyway; a path pointing at something else (a log, a
#: disk image) is refused without being read whole.
MAX_TOKEN_BYTES = 64 * 1024
#: A compact JWS (RFC 7515 §7.1): three base64url parts. Checked so that a file holding
#: something else (a CA bundle, a config file) fails here, naming the file, instead of as an
#: opaque ``invalid_client`` from the server.
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


class PlatformTokenError(TokenError):
    """The platform token could not be had: the file is missing, empty, unreadable or does
    not hold a JWT, or the callable that fetches it failed. ``error`` is ``invalid_client``
    (the client has nothing to authenticate with) and ``status`` is None: no request was
    sent. The message names the file or what failed, never the token."""

    def __init__(self, description: str | None, error: str = "invalid_client", status: None = None):
        super().__init__(error, description, status)

    def _copy(self) -> PlatformTokenError:
        return PlatformTokenError(self.description)


class TokenFile:
    """Reads a platform token from ``path`` each time it is called: a Kubernetes projected
    service-account token, a SPIFFE helper's JWT-SVID file, a CI system's token file.

    Surrounding whitespace (a trailing newline) is stripped. Kubernetes replaces the file
    atomically (a symlink swap), so a read never sees half a token."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        if not self.path:
            raise ValueError("the token file path must not be empty")

    def __repr__(self) -> str:
        return f"TokenFile({self.path!r})"

    def __call__(self) -> str:
        try:
            with open(self.path, "rb") as file:
                content = file.read(MAX_TOKEN_BYTES + 1)
        except OSError as exc:
            raise PlatformTokenError(
                f"cannot read the platform token file {self.path!r}: {exc.strerror or exc}"
            ) from None
        if len(content) > MAX_TOKEN_BYTES:
            raise PlatformTokenError(
                f"the platform token file {self.path!r} holds more than {MAX_TOKEN_BYTES} "
                "bytes: it is not a token"
            )
        try:
            return content.decode("ascii").strip()
        except UnicodeDecodeError:
            raise PlatformTokenError(
                f"the platform token file {self.path!r} does not hold a JWT"
            ) from None

    def where(self) -> str:
        return f"the platform token file {self.path!r}"


class PlatformToken:
    """What authenticates each token request of a federated source: the JWT that
    ``get_token`` returns, sent unchanged as the ``client_assertion``."""

    def __init__(self, get_token: Callable[[], str]) -> None:
        if not callable(get_token):
            raise TypeError("get_token must be a callable returning the platform's JWT")
        self.get_token = get_token

    def __repr__(self) -> str:
        return f"PlatformToken({self.get_token!r})"

    def _where(self) -> str:
        if isinstance(self.get_token, TokenFile):
            return self.get_token.where()
        return f"the platform token from {self.get_token!r:.100}"

    def form(self) -> dict[str, str]:
        """The form fields that authenticate one token request (RFC 7521 §4.2), with the
        token read now; ``PlatformTokenError`` when there is none to be had."""
        try:
            token = self.get_token()
        except TokenError:
            raise
        except Exception as exc:
            # The callable's own failure (its platform unreachable, say), named by type: its
            # text is the callable's and is made printable by TokenError.
            raise PlatformTokenError(
                f"getting {self._where()} failed: {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(token, str) or not token.strip():
            raise PlatformTokenError(f"{self._where()} is empty")
        token = token.strip()
        if not _COMPACT_JWS.fullmatch(token):
            raise PlatformTokenError(f"{self._where()} is not a JWT")
        return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": token}
