"""``GET /metrics``: Prometheus text format.

Under ``authserver serve`` every worker writes its samples to files in
``PROMETHEUS_MULTIPROC_DIR`` (set by ``serve`` before the workers start) and a scrape, served
by whichever worker gets it, adds them all up. Without that variable (tests, a single
process) the process's own registry is served.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from flask import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from authserver.config import PROMETHEUS_MULTIPROC_ENV
from authserver.http.routes import TOKEN
from authserver.security.failure_limits import FailureLimiter
from authserver.security.keyring import KeyRingLoader

TOKENS_ISSUED = Counter("authserver_tokens_issued", "Access tokens issued.")
OAUTH_FAILURES = Counter(
    "authserver_oauth_failures",
    "OAuth requests answered with an error, by endpoint and RFC 6749 error code "
    "(too_many_requests: rate-limit hits).",
    ["endpoint", "reason"],
)
OAUTH_LATENCY = Histogram(
    "authserver_oauth_request_duration_seconds",
    "Time to answer an OAuth request, by endpoint.",
    ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


def observe(endpoint: str, status: int, body: dict[str, Any], started: float) -> None:
    _latency(endpoint).observe(time.perf_counter() - started)
    if status == 200 and endpoint == TOKEN.handler:
        TOKENS_ISSUED.inc()
    elif status >= 400:
        OAUTH_FAILURES.labels(endpoint, str(body.get("error", "unknown"))).inc()


@functools.cache  # one child per endpoint: labels() takes a lock and builds a key per call
def _latency(endpoint: str) -> Histogram:
    return OAUTH_LATENCY.labels(endpoint)


class SigningKeyCollector(Collector):
    """Age of the key signing now, read from this worker's key ring at scrape time."""

    def __init__(self, keys: KeyRingLoader) -> None:
        self._keys = keys

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = datetime.now(UTC)
        key = self._keys.current().signing_key(now)
        gauge = GaugeMetricFamily(
            "authserver_signing_key_age_seconds", "Seconds since the signing key was created."
        )
        if key is not None:
            gauge.add_metric([], (now - key.created_at).total_seconds())
        yield gauge


class CounterStorageCollector(Collector):
    """Whether this worker's failed-authentication counters answer (1) or the limits are off
    because their storage (Redis) does not (0), as this worker last found it."""

    def __init__(self, limiter: FailureLimiter) -> None:
        self._limiter = limiter

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "authserver_ratelimit_storage_up",
            "1 while the failed-authentication counter storage answers, 0 while the limits "
            "are off because it does not.",
            value=1 if self._limiter.storage_up else 0,
        )


class MetricsPage:
    """The scrape: every worker's samples (or this process's), and this worker's key age and
    counter storage state."""

    def __init__(self, keys: KeyRingLoader, limiter: FailureLimiter | None) -> None:
        self._local = CollectorRegistry()
        self._local.register(SigningKeyCollector(keys))
        if limiter is not None:
            self._local.register(CounterStorageCollector(limiter))

    def __call__(self) -> Response:
        if os.environ.get(PROMETHEUS_MULTIPROC_ENV):
            shared = CollectorRegistry()
            multiprocess.MultiProcessCollector(shared)  # type: ignore[no-untyped-call]
        else:
            shared = REGISTRY
        body = generate_latest(shared) + generate_latest(self._local)
        return Response(body, content_type=CONTENT_TYPE_LATEST)
