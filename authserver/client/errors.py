"""What goes wrong getting a token, as one exception that never carries a secret."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

#: Statuses that mean "try again later" rather than "this request is wrong".
_UNAVAILABLE_STATUSES = frozenset({429, 502, 503, 504})
#: The most characters of server-sent text an error repeats: enough for any real OAuth
#: description, short enough that a hostile server cannot flood the service's logs.
MAX_ERROR_TEXT = 300
#: Terminal escape sequences (ECMA-48): CSI (colours, cursor moves), OSC (window titles,
#: hyperlinks, ended by BEL or ST) and the other two-byte ESC sequences.
_ESCAPE_SEQUENCES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC
    r"|\x1b[@-_]"
)
_LINE_BREAKS = re.compile(r"[\t\n\v\f\r\x85\u2028\u2029]+")


def printable(text: str, limit: int = MAX_ERROR_TEXT) -> str:
    """``text`` safe to print or log: escape sequences dropped, line breaks as one space,
    other control and format characters (including bidirectional overrides) removed, and
    cut to ``limit`` characters. Server-sent error text goes through this: verbatim, it
    could forge log lines or drive the terminal of whoever reads them."""
    text = _LINE_BREAKS.sub(" ", _ESCAPE_SEQUENCES.sub("", text)).strip()
    text = "".join(c for c in text if unicodedata.category(c) not in {"Cc", "Cf"})
    return text if len(text) <= limit else text[: limit - 1] + "…"


class TokenError(Exception):
    """A token could not be obtained.

    ``error`` is the OAuth error code (RFC 6749 §5.2: ``invalid_client``, ``invalid_scope``,
    ``invalid_target``, ``too_many_requests``, ...) when the server sent one; otherwise
    ``temporarily_unavailable`` (network failure, timeout, HTTP 429/502/503/504) or
    ``server_error`` (any other answer that is not a usable OAuth response). ``status`` is the
    HTTP status, or None when no response arrived. Messages never contain the client secret
    or a token: the module never puts request contents into them. Text from the server is
    made :func:`printable` (escapes and control characters removed, at most 300 characters).
    """

    def __init__(self, error: str, description: str | None = None, status: int | None = None):
        error = printable(error)
        description = printable(description) if description is not None else None
        super().__init__(error, description, status)
        self.error = error
        self.description = description
        self.status = status

    def __str__(self) -> str:
        text = self.error
        if self.description:
            text += f": {self.description}"
        if self.status is not None:
            text += f" (HTTP {self.status})"
        return text

    def __repr__(self) -> str:
        return (
            f"TokenError(error={self.error!r}, description={self.description!r}, "
            f"status={self.status!r})"
        )

    def _copy(self) -> TokenError:
        """A new instance for another waiter: each raise then gets its own traceback."""
        return TokenError(self.error, self.description, self.status)


def json_object(content: bytes | bytearray) -> dict[str, Any] | None:
    try:
        body = json.loads(content)
    except (ValueError, RecursionError):  # RecursionError: nesting too deep for the parser
        return None
    return body if isinstance(body, dict) else None


def unexpected_answer(status: int, content: bytes | bytearray, what: str) -> TokenError:
    """The OAuth error in a failed response, or a clear one when it carries none."""
    body = json_object(content)
    if body is not None and isinstance(body.get("error"), str) and status != 200:
        description = body.get("error_description")
        return TokenError(
            body["error"], description if isinstance(description, str) else None, status
        )
    error = "temporarily_unavailable" if status in _UNAVAILABLE_STATUSES else "server_error"
    kind = "JSON object" if body is None else "OAuth error"
    return TokenError(error, f"{what} answered HTTP {status} without a {kind}", status)


@contextmanager
def network_errors(what: str) -> Iterator[None]:
    """Transport failures (refused, reset, timed out, TLS) as ``temporarily_unavailable``."""
    try:
        yield
    except httpx.TransportError as exc:
        raise TokenError(
            "temporarily_unavailable", f"{what}: {type(exc).__name__}: {exc}", None
        ) from exc
