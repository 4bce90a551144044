"""``AUTHSERVER_TRUSTED_PROXIES`` as proxy addresses: ``X-Forwarded-*`` is believed only
from those peers, read from the right past the listed proxies (docs/configuration.md)."""

from __future__ import annotations

import ipaddress
from wsgiref.types import StartResponse, WSGIEnvironment

import pytest
from werkzeug.test import Client

from authserver.config import Settings
from authserver.errors import ConfigError
from authserver.http.forwarded import behind_proxies

PROXIES = "10.0.0.5, 10.1.0.0/16, fd00::/64"


def echo_origin(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    """What the server below the middleware sees: the client's address and scheme."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"{environ['REMOTE_ADDR']} {environ['wsgi.url_scheme']}".encode()]


def seen(peer: str, headers: dict[str, str], proxies: str = PROXIES) -> str:
    settings = Settings.from_env({"AUTHSERVER_TRUSTED_PROXIES": proxies})
    client = Client(behind_proxies(echo_origin, settings))
    return client.get("/", headers=headers, environ_base={"REMOTE_ADDR": peer}).get_data(
        as_text=True
    )


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "client"),
    [
        # a listed proxy reports its client
        ("10.0.0.5", "203.0.113.7", "203.0.113.7"),
        # proxies in a chain are skipped from the right; the first other address is the client
        ("10.0.0.5", "203.0.113.7, 10.1.2.3", "203.0.113.7"),
        # whatever the client put in front of that is not believed
        ("10.0.0.5", "198.51.100.1, 203.0.113.7, 10.1.2.3", "203.0.113.7"),
        # an IPv6 proxy network
        ("fd00::17", "2001:db8::1", "2001:db8::1"),
        # a dual-stack socket reports IPv4 peers as IPv4-mapped IPv6
        ("::ffff:10.0.0.5", "203.0.113.7", "203.0.113.7"),
        # garbage ends the walk at the last listed proxy
        ("10.0.0.5", "203.0.113.7, not-an-address", "10.0.0.5"),
        ("10.0.0.5", "", "10.0.0.5"),
        # only proxies in the chain: the leftmost one is as far as anyone can tell
        ("10.0.0.5", "10.1.9.9", "10.1.9.9"),
    ],
)
def test_a_listed_proxy_names_the_client(peer: str, forwarded_for: str, client: str) -> None:
    assert seen(peer, {"X-Forwarded-For": forwarded_for}).split()[0] == client


@pytest.mark.parametrize("peer", ["203.0.113.50", "10.0.0.6", "fd01::1", "127.0.0.1"])
def test_a_peer_that_is_not_a_listed_proxy_cannot_choose_its_address(peer: str) -> None:
    """An attacker reaching an instance directly is counted under its own address."""
    headers = {"X-Forwarded-For": "198.51.100.1", "X-Forwarded-Proto": "https"}
    assert seen(peer, headers) == f"{peer} http"


def test_the_scheme_is_the_listed_proxys_last_http_or_https_value() -> None:
    assert seen("10.0.0.5", {"X-Forwarded-Proto": "http, https"}).endswith(" https")
    assert seen("10.0.0.5", {"X-Forwarded-Proto": "gopher"}).endswith(" http")


def test_a_count_of_proxies_still_means_the_nth_entry_from_the_right() -> None:
    assert seen("127.0.0.1", {"X-Forwarded-For": "203.0.113.7, 10.1.2.3"}, "2").startswith(
        "203.0.113.7 "
    )


def test_proxy_addresses_are_parsed_into_networks() -> None:
    settings = Settings.from_env({"AUTHSERVER_TRUSTED_PROXIES": PROXIES})
    assert settings.trusted_proxies == 0
    assert settings.trusted_proxy_networks == (
        ipaddress.ip_network("10.0.0.5/32"),
        ipaddress.ip_network("10.1.0.0/16"),
        ipaddress.ip_network("fd00::/64"),
    )


@pytest.mark.parametrize("value", ["-1", "proxy.local", "10.0.0.5,,10.0.0.6", "10.0.0.0/33"])
def test_trusted_proxies_must_be_a_count_or_addresses(value: str) -> None:
    with pytest.raises(ConfigError, match="^AUTHSERVER_TRUSTED_PROXIES must be a number"):
        Settings.from_env({"AUTHSERVER_TRUSTED_PROXIES": value})
