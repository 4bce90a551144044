"""Which address a request comes from, when proxies stand in front of the server.

The client's address drives the failed-authentication limit per address and the logs, so
whoever can set it can dodge that limit. ``X-Forwarded-*`` is therefore believed only from a
configured proxy: by count (werkzeug's ``ProxyFix``: the Nth entry from the right, which a
client that reaches an instance directly can forge) or, safer, by the proxies' addresses.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from werkzeug.middleware.proxy_fix import ProxyFix

from authserver.config import ProxyNetwork, Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: The schemes a proxy may report; anything else is ignored.
FORWARDED_SCHEMES = ("http", "https")


def behind_proxies(app: WSGIApplication, settings: Settings) -> WSGIApplication:
    """``app``, taking the client's address from the proxies ``settings`` trusts (if any)."""
    if settings.trusted_proxy_networks:
        return TrustedProxies(app, settings.trusted_proxy_networks)
    if settings.trusted_proxies:
        return ProxyFix(app, x_for=settings.trusted_proxies, x_proto=settings.trusted_proxies)
    return app


class TrustedProxies:
    """Believe ``X-Forwarded-For`` and ``X-Forwarded-Proto`` only from the listed peers.

    The chain is read from the right, as each proxy appends the address it received from:
    entries that are trusted proxies themselves are skipped, and the first one that is not is
    the client (nginx's ``real_ip_recursive``). An entry that is not an address ends the walk
    at the last trusted hop, so garbage cannot be chosen as anyone's address.
    """

    def __init__(self, app: WSGIApplication, networks: tuple[ProxyNetwork, ...]) -> None:
        self._app = app
        self._networks = networks

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        peer = _address(environ.get("REMOTE_ADDR", ""))
        if peer is not None and self._trusted(peer):
            environ["REMOTE_ADDR"] = str(self._client(peer, environ.get("HTTP_X_FORWARDED_FOR")))
            scheme = _last(environ.get("HTTP_X_FORWARDED_PROTO"))
            if scheme in FORWARDED_SCHEMES:
                environ["wsgi.url_scheme"] = scheme
        return self._app(environ, start_response)

    def _client(self, peer: IPAddress, forwarded_for: str | None) -> IPAddress:
        client = peer
        for entry in reversed(_entries(forwarded_for)):
            address = _address(entry)
            if address is None:
                break
            client = address
            if not self._trusted(address):
                break
        return client

    def _trusted(self, address: IPAddress) -> bool:
        return any(address in network for network in self._networks)


def _entries(header: str | None) -> list[str]:
    return [entry.strip() for entry in (header or "").split(",") if entry.strip()]


def _last(header: str | None) -> str | None:
    entries = _entries(header)
    return entries[-1].lower() if entries else None


def _address(text: str) -> IPAddress | None:
    """The address, with an IPv4-mapped IPv6 peer (a dual-stack socket) seen as IPv4."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
