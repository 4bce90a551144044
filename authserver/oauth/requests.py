"""The framework-free request Authlib's grants read, built from an already-parsed form body."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from authlib.oauth2.rfc6749 import OAuth2Payload, OAuth2Request


@dataclass(frozen=True)
class FormRequest:
    """What the HTTP layer extracted from a form POST to an OAuth endpoint.

    ``form`` holds every value of every parameter, so duplicates can be judged here.
    ``basic`` is the (id, secret) pair of an ``Authorization: Basic`` header still in its
    form-urlencoded shape; ``authorization_scheme`` is set whenever that header is present,
    even when it could not be decoded. ``remote_addr`` is the client's address (for the
    failed-authentication limits).
    """

    endpoint_uri: str
    form: Mapping[str, list[str]]
    headers: Mapping[str, str] = field(default_factory=dict)
    authorization_scheme: str | None = None
    basic: tuple[str, str] | None = None
    remote_addr: str = "unknown"


class FormPayload(OAuth2Payload):
    def __init__(self, form: Mapping[str, list[str]]) -> None:
        self._form = form
        self._data = {name: values[0] for name, values in form.items() if values}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return defaultdict(list, {name: list(values) for name, values in self._form.items()})


class OAuthFormRequest(OAuth2Request):
    """Authlib's request for a form POST, with our parsed Basic credentials attached."""

    def __init__(self, form_request: FormRequest) -> None:
        # Authlib refuses plain-http URIs; TLS is terminated in front of this server and the
        # URI plays no part in the client_credentials grant, so state the https form of the
        # public endpoint.
        super().__init__("POST", _as_https(form_request.endpoint_uri), headers=form_request.headers)
        self.payload = FormPayload(form_request.form)
        self.source = form_request

    @property
    def form(self) -> dict[str, str]:
        return self.payload.data


@functools.lru_cache(maxsize=16)  # the three endpoint URIs, asked for on every request
def _as_https(uri: str) -> str:
    parts = urlsplit(uri)
    return urlunsplit(("https", *parts[1:]))
