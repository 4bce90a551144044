"""The discovery paths under an issuer, shared by the server that serves them and the client
helpers that fetch them, and the rules those helpers apply to what discovery tells them;
imports only the standard library, so ``authserver.client`` stays light."""

import contextlib
import socket
import threading
from typing import Any
from urllib.parse import urlsplit

#: RFC 8414 §3: authorization server metadata.
METADATA_PATH = "/.well-known/oauth-authorization-server"
#: The JWK Set (RFC 7517) that ``jwks_uri`` names.
JWKS_PATH = "/.well-known/jwks.json"

#: The most bytes the helpers read of a metadata, JWKS or token response: each is a few KiB,
#: and a bigger one is an attack on the memory of the service that reads it.
MAX_DOCUMENT_BYTES = 1 << 20

_DEFAULT_PORTS = {"http": 80, "https": 443}


class DocumentTooLarge(ValueError):
    """A response passed ``MAX_DOCUMENT_BYTES``; each helper reports it in its own error."""


class CappedBody:
    """A response body read under a byte limit: refused by its ``Content-Length`` before
    anything is read, or as soon as the bytes streaming in (without one, or past a lying
    one) pass the limit, so no more than the limit is ever held."""

    def __init__(self, content_length: str | None, limit: int = MAX_DOCUMENT_BYTES) -> None:
        self.limit = limit
        self.content = bytearray()
        declared = content_length or ""
        if declared.isascii() and declared.isdigit() and int(declared) > limit:
            raise DocumentTooLarge(limit)

    def add(self, chunk: bytes) -> None:
        self.content += chunk
        if len(self.content) > self.limit:
            raise DocumentTooLarge(self.limit)


def origin(url: str) -> tuple[str, str, int] | None:
    """The RFC 6454 origin (scheme, host, port) of an http(s) URL, default ports filled in;
    None for anything else (another scheme, no host, a port that is not a number)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname, port if port is not None else _DEFAULT_PORTS[scheme]


def same_origin(url: str, issuer: str) -> bool:
    """Whether an endpoint read from the issuer's metadata lives on the issuer's own origin.

    Metadata is a document anyone who can change the issuer's responses can write; trusting
    an endpoint elsewhere would let it send our client secret (or our trust in keys) to a
    host the caller never named, so the helpers use other origins only when configured.
    """
    endpoint = origin(url)
    return endpoint is not None and endpoint == origin(issuer)


class FetchConnections:
    """The connections one fetch opens, so that its deadline can shut them from another thread.

    httpx bounds each read, not the whole response: a host sending a byte a second would hold
    a fetch as long as it liked. Shutting the socket down from another thread is what ends such
    a read. The sockets come from httpcore's ``trace`` extension (pass :meth:`trace` as the
    request's ``trace``): every connect (and TLS upgrade) reports the network stream it made,
    and ``get_extra_info("socket")`` is that stream's public accessor. Used by the resource
    server's JWKS refresh and the server's fetch of clients' ``jwks_uri``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._streams: list[Any] = []
        self.was_cut = False

    def trace(self, event: str, info: dict[str, Any]) -> None:
        stream = info.get("return_value")
        if not event.endswith(".complete") or not hasattr(stream, "get_extra_info"):
            return
        with self._lock:
            self._streams.append(stream)
            cut = self.was_cut
        if cut:  # connected only after the deadline: shut at once
            _shut(stream)

    def cut(self) -> None:
        with self._lock:
            self.was_cut = True
            streams = list(self._streams)
        for stream in streams:
            _shut(stream)


def _shut(stream: Any) -> None:
    sock = stream.get_extra_info("socket")
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):  # already closed: nothing left to stop
            sock.shutdown(socket.SHUT_RDWR)
