"""Failure counters shared by every worker of one instance: the table itself (driven by an
explicit clock, so no test waits), and the limits through a real ``authserver serve
--workers 2`` with a new connection per request, so both workers answer."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from authserver.security import shared_counters
from authserver.security.shared_counters import PROBE, SharedCounters
from tests.support.cli import ok, ok_json, sqlite_env
from tests.support.cli_in_process import run_in_process
from tests.support.clock import ManualClock as Clock
from tests.support.server import Server, Servers

LIMIT = 10
WINDOW = 60.0
GRANT = {"grant_type": "client_credentials"}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def table_file(tmp_path: Path) -> str:
    path = str(tmp_path / "failures")
    shared_counters.create_file(path, slots=64)
    return path


def fail(table: SharedCounters, key: str, times: int) -> list[int | None]:
    return [table.hit(key, LIMIT, WINDOW) for _ in range(times)]


def test_the_failure_after_the_limit_is_refused_until_the_window_of_the_first_ends(
    clock: Clock,
) -> None:
    table = SharedCounters(slots=64, clock=clock)
    assert fail(table, "client\0cli_a", LIMIT) == [None] * LIMIT
    clock.now += 20
    assert table.retry_after("client\0cli_a", LIMIT) == 40
    assert table.hit("client\0cli_a", LIMIT, WINDOW) == 40
    clock.now += 39.5
    assert table.retry_after("client\0cli_a", LIMIT) == 1
    clock.now += 0.5
    assert table.retry_after("client\0cli_a", LIMIT) is None
    assert table.hit("client\0cli_a", LIMIT, WINDOW) is None


def test_keys_count_apart(clock: Clock) -> None:
    table = SharedCounters(slots=64, clock=clock)
    fail(table, "client\0cli_a", LIMIT)
    assert table.retry_after("client\0cli_b", LIMIT) is None
    assert table.retry_after("address\0cli_a", LIMIT) is None


def test_two_mappings_of_one_file_count_together(table_file: str, clock: Clock) -> None:
    """What two workers do: each opens and maps the file serve created."""
    first = SharedCounters(table_file, slots=64, clock=clock)
    second = SharedCounters(table_file, slots=64, clock=clock)
    fail(first, "client\0cli_a", 5)
    fail(second, "client\0cli_a", 5)
    assert first.retry_after("client\0cli_a", LIMIT) == 60
    assert second.hit("client\0cli_a", LIMIT, WINDOW) == 60


def test_a_flood_of_made_up_keys_neither_grows_the_table_nor_frees_a_locked_key(
    table_file: str, clock: Clock
) -> None:
    """Finding 4's flood, against the counters: 100 times the table's size in unique ids."""
    table = SharedCounters(table_file, slots=64, clock=clock)
    size = os.path.getsize(table_file)
    fail(table, "client\0cli_locked", LIMIT)
    for attempt in range(6400):
        table.hit(f"client\0cli_guess{attempt}", LIMIT, WINDOW)
    assert os.path.getsize(table_file) == size
    assert table.retry_after("client\0cli_locked", LIMIT) == 60


def test_expired_entries_are_reused(clock: Clock) -> None:
    table = SharedCounters(slots=PROBE, clock=clock)
    for attempt in range(PROBE):
        fail(table, f"client\0cli_{attempt}", LIMIT)
    clock.now += WINDOW
    fail(table, "client\0cli_new", LIMIT)
    assert table.retry_after("client\0cli_new", LIMIT) == 60


def test_a_file_of_another_size_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "failures"
    path.write_bytes(b"\0" * 100)
    with pytest.raises(ValueError, match="not a counter table"):
        SharedCounters(str(path))


# --- through the real server (finding 5: the 11th failure gave a 429 at request 19-20 and the
# 51st at 100-101 with two workers, each counting alone)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, Any]]]:
    """One ``serve --workers 2`` that believes X-Forwarded-For, so each test fails from its
    own address; and a client with a generated secret."""
    tmp_path = tmp_path_factory.mktemp("shared-limits")
    env = sqlite_env(tmp_path, AUTHSERVER_TRUSTED_PROXIES="1")
    ok(run_in_process(env, "db", "upgrade"))
    client = ok_json(
        run_in_process(env, "clients", "create", "--name", "t", "--scope", "api", "--json")
    )
    with Servers(tmp_path) as servers:
        yield servers.start(env, workers=2), client


def post_alone(server: Server, client_id: str, secret: str, address: str) -> requests.Response:
    """A token request on a connection of its own, which either worker may accept."""
    return requests.post(
        f"{server.url}/oauth2/token",
        data=GRANT,
        auth=(client_id, secret),
        headers={"X-Forwarded-For": address, "Connection": "close"},
        timeout=10,
    )


def test_eleventh_wrong_secret_across_two_workers_gets_429(
    served: tuple[Server, dict[str, Any]],
) -> None:
    server, client = served
    statuses = [
        post_alone(server, client["client_id"], "wrong", "203.0.113.1").status_code
        for _ in range(11)
    ]
    assert statuses == [401] * 10 + [429]
    right = post_alone(server, client["client_id"], client["client_secret"], "203.0.113.1")
    assert right.status_code == 200


def test_fifty_first_failure_from_one_address_across_two_workers_gets_429(
    served: tuple[Server, dict[str, Any]],
) -> None:
    server, client = served
    statuses = [
        post_alone(server, f"cli_guess{attempt}", "wrong", "203.0.113.2").status_code
        for attempt in range(51)
    ]
    assert statuses == [401] * 50 + [429]
    blocked = post_alone(server, client["client_id"], client["client_secret"], "203.0.113.2")
    assert blocked.status_code == 429
    assert 1 <= int(blocked.headers["Retry-After"]) <= 60
