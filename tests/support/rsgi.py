"""What granian hands an RSGI app for one request, for driving the gateway in one process (no
socket): the scope's fields the gateway reads, and its headers."""

from __future__ import annotations


class Headers:
    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._items = items

    def items(self) -> list[tuple[str, str]]:
        return self._items


class Scope:
    """A POST over HTTP/1.1 from a loopback client, with ``headers``."""

    proto = "http"
    http_version = "1.1"
    server = "127.0.0.1:8080"
    client = "127.0.0.1:50000"
    scheme = "http"
    method = "POST"
    query_string = ""

    def __init__(self, path: str, headers: list[tuple[str, str]]) -> None:
        self.path = path
        self.headers = Headers(headers)
