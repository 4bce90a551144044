"""Bounded token load through the load balancer, every token verified like a resource server
would, with each answer's status and latency counted."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import jwt
import requests

from authserver.resource import InvalidToken, JWTVerifier, VerifierUnavailable

#: Each load thread waits this long between its requests: enough load to spread over every
#: worker, little enough that a 2-core machine measures the server, not its own queueing.
PACE_SECONDS = 0.02
#: Bounds of one load phase, whatever happens to the stop signal.
MAX_REQUESTS_PER_THREAD = 5_000
MAX_PHASE_SECONDS = 90.0
REQUEST_TIMEOUT_SECONDS = 15
#: How many distinct failure descriptions a tally keeps (a stuck failure repeats itself).
MAX_FAILURE_KINDS = 10


@dataclass
class Tally:
    """What one phase of load saw."""

    requests: int = 0
    failures: int = 0
    max_latency: float = 0.0
    #: The longest an instance itself spent on one of these requests (from its access log).
    server_max_latency: float | None = None
    kids: Counter[str] = field(default_factory=Counter)
    failure_kinds: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, latency: float, failure: str | None = None, kid: str | None = None) -> None:
        with self.lock:
            self.requests += 1
            self.max_latency = max(self.max_latency, latency)
            if kid:
                self.kids[kid] += 1
            if failure:
                self.failures += 1
                if failure in self.failure_kinds or len(self.failure_kinds) < MAX_FAILURE_KINDS:
                    self.failure_kinds[failure] += 1


class Load:
    """One thread per known client, each asking for tokens until stopped (or its bounds)."""

    def __init__(
        self,
        url: str,
        clients: list[tuple[str, str]],
        verifier: JWTVerifier,
        certificate: str,
    ) -> None:
        self.url = url
        self.clients = clients
        self.verifier = verifier
        self.certificate = certificate
        self.tally = Tally()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> Load:
        deadline = time.monotonic() + MAX_PHASE_SECONDS
        self._threads = [
            threading.Thread(target=self._run, args=(client, deadline), daemon=True)
            for client in self.clients
        ]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(REQUEST_TIMEOUT_SECONDS + 5)

    def _run(self, auth: tuple[str, str], deadline: float) -> None:
        with requests.Session() as session:
            session.verify = self.certificate
            session.trust_env = False  # see Cluster.session
            for _ in range(MAX_REQUESTS_PER_THREAD):
                if self._stop.is_set() or time.monotonic() > deadline:
                    return
                self._one(session, auth)
                self._stop.wait(PACE_SECONDS)

    def _one(self, session: requests.Session, auth: tuple[str, str]) -> None:
        started = time.monotonic()
        try:
            response = session.post(
                f"{self.url}/oauth2/token",
                data={"grant_type": "client_credentials"},
                auth=auth,
                timeout=REQUEST_TIMEOUT_SECONDS,
            )
        except requests.RequestException as exc:
            self.tally.add(time.monotonic() - started, f"no answer: {type(exc).__name__}")
            return
        latency = time.monotonic() - started
        if response.status_code != 200:
            error = response.json().get("error") if response.content else ""
            self.tally.add(latency, f"HTTP {response.status_code} {error}")
            return
        token = response.json()["access_token"]
        self.tally.add(latency, verification_failure(self.verifier, token), kid_of(token))


def verification_failure(verifier: JWTVerifier, token: str) -> str | None:
    try:
        verifier.verify(token)
    except (InvalidToken, VerifierUnavailable) as exc:
        return f"verification: {exc}"
    return None


def kid_of(token: str) -> str:
    return str(jwt.get_unverified_header(token).get("kid"))
