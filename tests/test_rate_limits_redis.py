"""The failed-authentication limits across two instances: shared through Redis, separate in
memory, and off (never a 5xx) while Redis is unreachable.

Two apps share one SQLite file and one keys folder, each behind its own threaded HTTP server,
as two instances of the server behind a load balancer would. The Redis server and the
``redis_url`` fixture (a URL to it, emptied before each test) come from tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask

from authserver.app import create_app
from authserver.config import Settings
from authserver.extensions import db
from authserver.schema import upgrade_schema
from authserver.services import registry
from authserver.services.formatting import client_view
from tests.conftest import ISSUER, LiveServer, RegisteredClient
from tests.support.postgres import free_port
from tests.support.wsgi import serving
from tests.test_rate_limits import CHOSEN_SECRET, assert_too_many_requests, lock, post


@dataclass(frozen=True)
class Instance:
    app: Flask
    server: LiveServer


@dataclass(frozen=True)
class Pair:
    a: Instance
    b: Instance

    def create_client(self, name: str, **overrides: Any) -> RegisteredClient:
        """Register a client in the shared database (through instance A's app)."""
        with self.a.app.app_context():
            created = registry.create_client(db.session(), name=name, scope="api", **overrides)
            db.session.commit()
            view = client_view(created.client)
        return RegisteredClient(view["client_id"], created.client_secret, view)


def serve(app: Flask, stack: ExitStack) -> LiveServer:
    return LiveServer(stack.enter_context(serving(app)))


@pytest.fixture
def two_instances(sqlite_url: str, keys_dir: Path) -> Iterator[Callable[[str], Pair]]:
    """Start two instances with the given rate-limit storage URL, sharing database and keys."""
    with ExitStack() as stack:

        def start(storage_url: str) -> Pair:
            settings = Settings(
                database_url=sqlite_url,
                issuer=ISSUER,
                default_audience=ISSUER,
                keys_dir=keys_dir,
                ratelimit_storage_url=storage_url,
            )
            instances = []
            for _ in range(2):
                app = create_app(settings)
                stack.callback(_dispose_engine, app)
                instances.append(Instance(app, serve(app, stack)))
            upgrade_schema(instances[0].app)
            return Pair(*instances)

        yield start


def _dispose_engine(app: Flask) -> None:
    with app.app_context():
        db.engine.dispose()


def test_redis_shares_per_client_failures_between_instances(
    http: requests.Session, two_instances: Callable[[str], Pair], redis_url: str
) -> None:
    pair = two_instances(redis_url)
    client = pair.create_client("shared per-client limit")
    a, b = pair.a.server.token_url, pair.b.server.token_url
    for url in (a, b):
        for _ in range(5):
            assert post(http, url, client.client_id, "wrong").status_code == 401
    assert_too_many_requests(post(http, a, client.client_id, "wrong"))
    assert_too_many_requests(post(http, b, client.client_id, "wrong"))
    assert post(http, a, client.client_id, client.client_secret).status_code == 200
    assert post(http, b, client.client_id, client.client_secret).status_code == 200


def test_redis_shares_per_address_failures_between_instances(
    http: requests.Session, two_instances: Callable[[str], Pair], redis_url: str
) -> None:
    pair = two_instances(redis_url)
    client = pair.create_client("shared per-address limit")
    a, b = pair.a.server.token_url, pair.b.server.token_url
    for attempt in range(25):
        assert post(http, a, f"cli_guess_a{attempt}", "wrong").status_code == 401
        assert post(http, b, f"cli_guess_b{attempt}", "wrong").status_code == 401
    # 50 failures in all, at most 25 on either instance: the address is now blocked on both,
    # even for a client with the right secret.
    assert_too_many_requests(post(http, a, client.client_id, client.client_secret))
    assert_too_many_requests(post(http, b, client.client_id, client.client_secret))


def test_memory_storage_keeps_each_instance_counting_alone(
    http: requests.Session, two_instances: Callable[[str], Pair]
) -> None:
    pair = two_instances("memory://")
    client = pair.create_client("per-instance counters")
    a, b = pair.a.server.token_url, pair.b.server.token_url
    for _ in range(10):
        assert post(http, a, client.client_id, "wrong").status_code == 401
    assert_too_many_requests(post(http, a, client.client_id, "wrong"))
    assert post(http, b, client.client_id, "wrong").status_code == 401


def test_unreachable_redis_turns_limits_off_without_failing_requests(
    http: requests.Session, two_instances: Callable[[str], Pair]
) -> None:
    """Nothing listens on the port: the limits fail open, token requests never get a 5xx."""
    pair = two_instances(f"redis://127.0.0.1:{free_port()}/0")
    client = pair.create_client("redis is down")
    for instance in (pair.a, pair.b):
        url = instance.server.token_url
        for _ in range(12):
            assert post(http, url, client.client_id, "wrong").status_code == 401
        assert post(http, url, client.client_id, client.client_secret).status_code == 200


def test_redis_shares_the_lock_on_an_admin_chosen_secret_between_instances(
    http: requests.Session, two_instances: Callable[[str], Pair], redis_url: str
) -> None:
    """Ten failures counted by instance A lock the id on B too: even the right admin-chosen
    secret gets 429 there."""
    pair = two_instances(redis_url)
    client = pair.create_client("shared lock", chosen_secret=CHOSEN_SECRET)
    assert post(http, pair.b.server.token_url, client.client_id, CHOSEN_SECRET).ok
    lock(pair.a.app, client.client_id)
    assert_too_many_requests(post(http, pair.b.server.token_url, client.client_id, CHOSEN_SECRET))


def test_unreachable_redis_still_lets_an_admin_chosen_secret_through(
    http: requests.Session, two_instances: Callable[[str], Pair]
) -> None:
    """Reading the per-client lock fails like counting does: the limits are off, not the server."""
    pair = two_instances(f"redis://127.0.0.1:{free_port()}/0")
    client = pair.create_client("redis is down", chosen_secret=CHOSEN_SECRET)
    url = pair.a.server.token_url
    assert post(http, url, client.client_id, "wrong").status_code == 401
    assert post(http, url, client.client_id, CHOSEN_SECRET).ok
