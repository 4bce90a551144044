"""``make bench`` refuses to report figures from a broken set-up: a run answered with nothing
but errors, a missing wrk script, an unknown peer. Its own files come with the repository."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.bench import __main__ as bench

WRK_OUTPUT = """Running 5s test @ http://127.0.0.1:8080/oauth2/token
  1 threads and 16 connections
  Latency Distribution
     50%    2.50ms
     75%    3.10ms
     90%    4.00ms
     99%    8.54ms
  27695 requests in 5.00s, 6.10MB read
  Non-2xx or 3xx responses: {non2xx}
Requests/sec:   5539.00
"""


def test_a_run_answered_with_nothing_but_errors_stops_the_bench() -> None:
    with pytest.raises(bench.BenchError, match="every response was non-2xx"):
        bench.parse_wrk("POST /oauth2/token", WRK_OUTPUT.format(non2xx=27695))


def test_a_few_errors_under_load_are_reported_as_figures() -> None:
    result = bench.parse_wrk("POST /oauth2/token", WRK_OUTPUT.format(non2xx=3))

    assert (result.rps, result.non2xx, result.p99_ms) == (5539.0, 3, 8.54)


def test_a_missing_wrk_script_is_an_error_not_a_run_without_it(tmp_path: Path) -> None:
    with pytest.raises(bench.BenchError, match="no wrk script"):
        bench.wrk_command("http://127.0.0.1:1/", tmp_path / "token.lua", 16, 5)


def test_an_unknown_peer_is_an_error_naming_the_known_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bench, "PEER", "oidc-provder")

    with pytest.raises(bench.BenchError, match=r"no such peer \(known: oidc-provider\)"):
        bench.known_peer()


def test_the_token_script_and_the_peer_come_with_the_repository(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bench, "PEER", "oidc-provider")

    bench.known_peer()
    assert bench.TOKEN_LUA.is_file()
    assert bench.PEERS_DIR.is_relative_to(bench.ROOT)
    assert (bench.PEERS_DIR / "oidc-provider" / "package-lock.json").is_file()
