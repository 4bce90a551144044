"""Placeholder until the fetcher lands (branch jwks): only the URI rule."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from joserfc.jwk import KeySet


def uri_problem(uri: str) -> str | None:
    parts = urlsplit(uri)
    if parts.scheme == "https" and parts.hostname:
        return None
    host = parts.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parts.scheme == "http" and loopback:
        return None
    return "a jwks_uri must be https (http only for a loopback host)"


class KeySetUnavailable(Exception):
    pass


class RemoteKeySets:
    def key_set(self, uri: str, kid: str | None) -> KeySet:
        raise KeySetUnavailable("the fetcher is not merged yet")

    def close(self) -> None:
        pass
