"""Spotting clients that do not cache their tokens (``services/issuance.py``): who is named
after a window, and who is not, on a hand-moved clock."""

from __future__ import annotations

from authserver.oauth.clients import GRANT_TYPE
from authserver.oauth.server import AuthorizationServer
from authserver.services.issuance import MAX_CLIENTS, MIN_TOKENS, WINDOW_SECONDS, IssuanceWatch
from tests.fast.conftest import SECRET
from tests.support.clock import ManualClock
from tests.support.memory_backend import CLIENT_ADDRESS, MemoryBackend, token


def watch_after(clock: ManualClock, *tokens: tuple[str, int, str]) -> IssuanceWatch:
    watch = IssuanceWatch(clock)
    for client_id, ttl, address in tokens:
        watch.record(client_id, ttl, address)
    clock.now += WINDOW_SECONDS
    return watch


def test_a_client_asking_per_call_is_named() -> None:
    clock = ManualClock()
    watch = watch_after(clock, *[("cli_noisy", 1800, "10.0.0.1")] * 30)

    assert watch.due()
    (found,) = watch.report()

    # One replica caching 1800 s tokens needs about 2 tokens in ten minutes.
    assert (found.client_id, found.tokens, found.addresses) == ("cli_noisy", 30, 1)
    assert (found.token_ttl, found.expected_at_most) == (1800, 2)


def test_clients_that_cache_are_not_named() -> None:
    clock = ManualClock()
    replicas = [("cli_wide", 1800, f"10.0.1.{n}") for n in range(40)]  # 40 replicas, 1 each
    short_lived = [("cli_short", 60, "10.0.0.2")] * 40  # 60 s tokens: 21 in ten minutes
    few = [("cli_few", 1800, "10.0.0.3")] * (MIN_TOKENS - 1)
    watch = watch_after(clock, *replicas, *short_lived, *few)

    assert watch.report() == []


def test_each_report_starts_a_new_window() -> None:
    clock = ManualClock()
    watch = watch_after(clock, *[("cli_noisy", 1800, "10.0.0.1")] * 30)
    assert len(watch.report()) == 1
    assert not watch.due()
    clock.now += WINDOW_SECONDS
    assert watch.report() == []


def test_memory_is_bounded_by_the_number_of_clients_tracked() -> None:
    """Past ``MAX_CLIENTS`` clients in a window, new ones are not tracked (nor reported)."""
    clock = ManualClock()
    watch = IssuanceWatch(clock)
    for n in range(MAX_CLIENTS):
        watch.record(f"cli_{n}", 1800, "10.0.0.1")
    for _ in range(30):
        watch.record("cli_late", 1800, "10.0.0.1")
        watch.record("cli_0", 1800, "10.0.0.1")
    clock.now += WINDOW_SECONDS
    assert [found.client_id for found in watch.report()] == ["cli_0"]


def test_the_token_endpoint_notes_each_token_with_its_lifetime_and_address(
    server: AuthorizationServer, backend: MemoryBackend
) -> None:
    backend.register("cli_a", SECRET, token_ttl=900)
    assert token(server, {"grant_type": GRANT_TYPE}, basic=("cli_a", SECRET))[0] == 200
    assert backend.issued == [("cli_a", 900, CLIENT_ADDRESS)]
