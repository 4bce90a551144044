"""Strict parsing of ``application/x-www-form-urlencoded`` bodies for the OAuth endpoints.

RFC 6749 §3.2 requires the form encoding and §3.1/§3.2 that "request and response parameters
MUST NOT be included more than once"; RFC 8707 makes ``resource`` the one repeatable
parameter. Parameters sent without a value are treated as omitted (§3.1).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from authlib.oauth2.rfc6749.errors import InvalidRequestError
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_options_header
from werkzeug.wsgi import get_content_length, get_input_stream

from authserver.config import MAX_BODY_BYTES

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

#: The environ key under which the server front (``authserver.http.gateway``) hands over the
#: body it has already read whole, so the endpoints need not wrap and re-read a stream.
BODY = "authserver.body"
FORM_MIMETYPE = "application/x-www-form-urlencoded"
REPEATABLE = frozenset({"resource"})
#: RFC 3986 §2.1: pct-encoded = "%" HEXDIG HEXDIG; parse_qsl would keep a stray "%" as text.
_BAD_PERCENT_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")


def parse_form(environ: WSGIEnvironment) -> dict[str, list[str]]:
    """The form of a POST to an OAuth endpoint, every value of every parameter."""
    if parse_options_header(environ.get("CONTENT_TYPE"))[0].lower() != FORM_MIMETYPE:
        raise InvalidRequestError(description=f"The body must be {FORM_MIMETYPE}.")
    body = environ.get(BODY)
    if body is None:
        body = _read_body(environ)
    if _BAD_PERCENT_ESCAPE.search(body):
        raise InvalidRequestError(description="The body has a malformed percent-encoding.")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequestError(description="The body is not UTF-8 form data.") from None
    form: dict[str, list[str]] = {}
    for name, value in pairs:
        form.setdefault(name, []).append(value)
    repeated = sorted(name for name, values in form.items() if len(values) > 1)
    repeated = [name for name in repeated if name not in REPEATABLE]
    if repeated:
        raise InvalidRequestError(
            description=f"The parameter {_printable(repeated[0])} is repeated."
        )
    return {name: [v for v in values if v] for name, values in form.items() if any(values)}


def _read_body(environ: WSGIEnvironment) -> bytes:
    """The body from ``wsgi.input``, for a WSGI server other than ours (a test client).

    werkzeug refuses a ``Content-Length`` over the limit itself; a body without one (chunked)
    it stops reading at the limit and returns what it has, so an over-long form would be
    served cut short, its trailing ``scope`` or ``resource`` gone: one more byte tells.
    """
    body: bytes = get_input_stream(environ, max_content_length=MAX_BODY_BYTES).read()
    if (
        len(body) == MAX_BODY_BYTES
        and get_content_length(environ) is None
        and environ["wsgi.input"].read(1)
    ):
        raise RequestEntityTooLarge
    return body


def _printable(name: str) -> str:
    """Error descriptions may only hold a restricted ASCII set (RFC 6749 §5.2)."""
    if name.isascii() and name.isprintable() and '"' not in name and "\\" not in name:
        return f"'{name[:58]}'"
    return "(unprintable name)"
