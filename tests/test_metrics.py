"""``/metrics`` in Prometheus text format, read through a real HTTP server.

Counters live in the process-wide registry (several apps share it in one test process), so
the tests compare values before and after their own requests.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import LiveServer, RegisteredClient


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


def scrape(http: requests.Session, live_server: LiveServer) -> dict[tuple[str, tuple], float]:
    response = http.get(live_server.url + "/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_metrics_count_issued_tokens_failures_by_reason_and_latency(
    http: requests.Session, live_server: LiveServer, create_client: Callable[..., RegisteredClient]
) -> None:
    client = create_client()
    issued = ("authserver_tokens_issued_total", ())
    bad_client = (
        "authserver_oauth_failures_total",
        (("endpoint", "token"), ("reason", "invalid_client")),
    )
    bad_scope = (
        "authserver_oauth_failures_total",
        (("endpoint", "token"), ("reason", "invalid_scope")),
    )
    timed = ("authserver_oauth_request_duration_seconds_count", (("endpoint", "token"),))
    before = scrape(http, live_server)

    grant = {"grant_type": "client_credentials"}
    auth = (client.client_id, client.client_secret)
    for _ in range(3):
        assert http.post(live_server.token_url, data=grant, auth=auth, timeout=10).ok
    http.post(live_server.token_url, data=grant, auth=(client.client_id, "wrong"), timeout=10)
    http.post(live_server.token_url, data={**grant, "scope": "admin"}, auth=auth, timeout=10)

    after = scrape(http, live_server)
    assert after[issued] - before.get(issued, 0) == 3
    assert after[bad_client] - before.get(bad_client, 0) == 1
    assert after[bad_scope] - before.get(bad_scope, 0) == 1
    assert after[timed] - before.get(timed, 0) == 5


def test_metrics_report_the_signing_key_age(
    http: requests.Session, live_server: LiveServer
) -> None:
    age = scrape(http, live_server)[("authserver_signing_key_age_seconds", ())]
    assert 0 <= age < 24 * 3600


def test_metrics_say_the_counter_storage_answers(
    http: requests.Session, live_server: LiveServer
) -> None:
    """1 while the failed-authentication counters answer (the outage case, 0, is shown with a
    Redis that stops answering in test_ratelimit_storage_outage.py)."""
    assert scrape(http, live_server)[("authserver_ratelimit_storage_up", ())] == 1
