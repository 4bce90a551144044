"""Reliability run: load, garbage input and a database outage against the real server.

``make reliability`` (``python -m deploy.reliability``) starts a throw-away PostgreSQL
and ``authserver serve`` with two workers on loopback, then, within a bounded time:

1. holds a token load from several threads and counts every answer;
2. stops PostgreSQL in the middle of that load and starts it again;
3. sends random bytes and random form fields to every OAuth endpoint;
4. scans everything the server logged for secrets, tokens and private keys;
5. repeats each attack of issue 12 (Hardening II) against a second server, the CLI and the
   client helpers (``deploy/reliability/hostile.py``);

and writes what was tried and what held to ``docs/reliability.md``.
"""

from __future__ import annotations

import json
import random
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import requests

from deploy.reliability import hostile
from tests.support.cli import base_env, run_authserver
from tests.support.postgres import PostgresServer
from tests.support.server import Servers

REPORT = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"
LOAD_THREADS = 4
LOAD_SECONDS = 20
OUTAGE_STARTS_AT = 6
OUTAGE_SECONDS = 4
FUZZ_REQUESTS = 3000
OAUTH_PATHS = ("/oauth2/token", "/oauth2/introspect", "/oauth2/revoke")
FIELDS = ("grant_type", "scope", "resource", "audience", "client_id", "client_secret", "token")


@dataclass
class Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    tokens: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, status: int, token: str | None = None) -> None:
        with self.lock:
            self.statuses[status] += 1
            if token:
                self.tokens.append(token)


def hold_load(url: str, auth: tuple[str, str], stop: threading.Event, tally: Tally) -> None:
    with requests.Session() as session:
        while not stop.is_set():
            try:
                response = session.post(
                    f"{url}/oauth2/token",
                    data={"grant_type": "client_credentials"},
                    auth=auth,
                    timeout=10,
                )
            except requests.RequestException:
                tally.add(0)
                continue
            token = response.json().get("access_token") if response.ok else None
            tally.add(response.status_code, token)


def fuzz(url: str, rng: random.Random, tally: Tally) -> None:
    with requests.Session() as session:
        for _ in range(FUZZ_REQUESTS):
            path = rng.choice(OAUTH_PATHS)
            if rng.random() < 0.5:
                body = rng.randbytes(rng.randint(0, 400))
            else:
                pairs = [
                    (rng.choice(FIELDS), rng.randbytes(rng.randint(0, 40)).hex())
                    for _ in range(rng.randint(0, 6))
                ]
                body = "&".join(f"{name}={value}" for name, value in pairs).encode()
            response = session.post(
                url + path,
                data=body,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                timeout=10,
            )
            tally.add(response.status_code)


def main() -> None:
    started_at = datetime.now(UTC)
    rng = random.Random(20261122)  # noqa: S311 (test input, not security)
    workdir = Path(tempfile.mkdtemp(prefix="authserver-reliability-"))
    postgres = PostgresServer.start()
    try:
        env = base_env(
            postgres.create_database("reliability"),
            workdir / "keys",
            AUTHSERVER_RATELIMIT="off",  # the fuzzing fails authentication on purpose
        )
        run_authserver(env, "db", "upgrade")
        created = json.loads(
            run_authserver(
                env, "clients", "create", "--name", "load", "--scope", "api", "--json"
            ).stdout
        )
        auth = (created["client_id"], created["client_secret"])
        with Servers(workdir) as servers:
            server = servers.start(env, workers=2)
            load, fuzz_tally = Tally(), Tally()
            stop = threading.Event()
            threads = [
                threading.Thread(target=hold_load, args=(server.url, auth, stop, load))
                for _ in range(LOAD_THREADS)
            ]
            for thread in threads:
                thread.start()
            time.sleep(OUTAGE_STARTS_AT)
            postgres.pause()
            outage_began = sum(load.statuses.values())
            time.sleep(OUTAGE_SECONDS)
            postgres.resume()
            outage_ended = sum(load.statuses.values())
            time.sleep(LOAD_SECONDS - OUTAGE_STARTS_AT - OUTAGE_SECONDS)
            stop.set()
            for thread in threads:
                thread.join()
            after_recovery = requests.post(
                f"{server.url}/oauth2/token",
                data={"grant_type": "client_credentials"},
                auth=auth,
                timeout=10,
            ).status_code
            fuzz(server.url, rng, fuzz_tally)
            ready = requests.get(f"{server.url}/readyz", timeout=10).status_code
            log = server.stderr()
            workers_alive = "Worker exiting" not in log and "WORKER TIMEOUT" not in log
        leaks = {
            "client secret": auth[1] in log,
            "access token": any(token in log for token in load.tokens[:200]),
            "private key": "PRIVATE KEY" in log,
        }
        hostile_rows = hostile.measure(postgres, workdir)
        write_report(
            started_at,
            load,
            outage_ended - outage_began,
            fuzz_tally,
            after_recovery,
            ready,
            workers_alive,
            leaks,
            hostile_rows,
        )
    finally:
        postgres.stop()


def write_report(
    started_at: datetime,
    load: Tally,
    answered_during_outage: int,
    fuzzed: Tally,
    after_recovery: int,
    ready: int,
    workers_alive: bool,
    leaks: dict[str, bool],
    hostile_rows: list[hostile.Row],
) -> None:
    def statuses(tally: Tally) -> str:
        return ", ".join(f"{status}: {count}" for status, count in sorted(tally.statuses.items()))

    server_errors = sum(n for status, n in fuzzed.statuses.items() if status >= 500)
    unexpected = sum(n for s, n in load.statuses.items() if s not in (200, 503))
    lines = [
        "# Reliability report",
        "",
        f"Produced by `make reliability` on {started_at:%Y-%m-%d %H:%M} UTC "
        "(2 granian workers, PostgreSQL, loopback). Rerun it to refresh this file.",
        "",
        "| what was tried | what happened | held? |",
        "|---|---|---|",
        f"| token load: {LOAD_THREADS} threads for {LOAD_SECONDS} s | {statuses(load)} "
        f"| {'yes' if unexpected == 0 else 'NO'} (only 200, and 503 during the outage) |",
        f"| PostgreSQL stopped for {OUTAGE_SECONDS} s mid-load, then restarted "
        f"| {answered_during_outage} requests answered during the outage; "
        f"first request after it: {after_recovery} "
        f"| {'yes' if after_recovery == 200 else 'NO'} (recovered without a restart) |",
        f"| {FUZZ_REQUESTS} random bodies to {', '.join(OAUTH_PATHS)} | {statuses(fuzzed)} "
        f"| {'yes' if server_errors == 0 else 'NO'} (no 5xx) |",
        f"| server afterwards | /readyz {ready}; workers never died: {workers_alive} "
        f"| {'yes' if ready == 200 and workers_alive else 'NO'} |",
        "| server log scanned for the client secret, issued tokens, private keys "
        f"| found: {', '.join(k for k, v in leaks.items() if v) or 'none'} "
        f"| {'yes' if not any(leaks.values()) else 'NO'} |",
        "",
        "Also covered by the test suite (`make test`): property-based fuzzing with hypothesis "
        "(tests/test_fuzz.py), the database-outage test (tests/test_database_faults.py), "
        "SQLite under concurrent writers (tests/test_sqlite_concurrency.py) and the log "
        "leak checks (tests/test_audit.py).",
        "",
        *hostile.render(hostile_rows),
    ]
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text("\n".join(lines))
    print("\n".join(lines))  # noqa: T201


if __name__ == "__main__":
    main()
