"""Benchmark: throughput and latency of the real server, as ratios measured in one run.

Why: issue 6 sets its performance targets as ratios (token vs ``/healthz``, JWKS vs ``/healthz``,
introspection vs token, token vs the machine's RS256 signing rate, token vs node-oidc-provider),
because these machines are shared and noisy and only figures from the same run compare.

How: ``make bench`` (``python -m deploy.bench``)

1. installs Debian's ``wrk`` with ``apt-get`` when it is missing;
2. makes a fresh SQLite database (``authserver db upgrade``) and keys folder in a temp dir,
   registers two clients with scope ``api`` (one with a secret, one with a public key) and
   inserts 8 more straight into the file, so the baseline has 10 clients; starts
   ``authserver serve`` exactly like a user would (default worker count; only ``--port``
   chosen), then waits for ``/healthz``;
3. runs ``wrk -t1 -c16 -d10s --latency`` against ``POST /oauth2/token``,
   ``POST /oauth2/introspect``, ``GET /.well-known/jwks.json`` and ``GET /healthz``;
   then the token endpoint with ``private_key_jwt`` (a second client, registered with a
   public RSA key) and with the secret client again, in 5 alternating pairs of 5 s runs, each
   counting the server's CPU per token: from the secret path's measured rate, enough RS256
   assertions for each run (×1.5) are pre-signed on every core (``assertions.py``) and
   ``private_key_jwt.lua`` sends each once;
   then the token endpoint at 1, 4, 16 and 64 connections, and at 1 and 4 in 5 alternating
   rounds (c=4 against c=1 shows whether connections spread over the workers), and
   ``JWTVerifier.verify`` against a bare joserfc decode-and-validate in this process
   (``verification.py``);
4. memory: runs wrk on the token endpoint for ``BENCH_SOAK`` seconds while sampling each granian
   worker's VmRSS every 5 s (target: each worker's RSS flat within ±5 %);
5. scale (last, as it changes the database): inserts clients and revoked jtis straight into the
   SQLite file, in one transaction while the server runs, up to 100,000 clients and 1,000,000
   revoked jtis, then measures the token and introspection endpoints again (target: ≥ 0.90× of
   the figures from step 3, which had 10 clients and no revoked jtis);
6. times RS256 signing with ``cryptography`` on one core (2048-bit key, PKCS#1 v1.5, SHA-256);
7. prints the tables and the ratios, and writes them to ``docs/performance.md``, keeping the
   hand-written part of that file (from the ``HAND_WRITTEN_MARKER`` line to the end).

Environment: ``BENCH_DURATION`` (seconds, default 10), ``BENCH_CONNECTIONS`` (default 16),
``BENCH_SOAK`` (seconds of the memory run, default 60);
``BENCH_PEER=oidc-provider`` also installs (npm), starts and measures the peer in
``deploy/bench/peers/oidc-provider`` in the same run, once like our endpoints and then head to
head: both servers and the floor app (``floor.py``: granian and a signature, nothing else) up,
7 alternating 5 s rounds of each, with the median per-round ratios of throughput and of server
CPU per token;
``BENCH_CHART=1`` also draws the connections sweep as ``docs/performance.png`` (needs
matplotlib).
The server and the peer are always stopped, and every wait is bounded.
"""

from __future__ import annotations

import base64
import multiprocessing
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import median

import pytest
import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from joserfc.jwk import RSAKey

from deploy.bench import assertions, floor, verification
from tests.support.cli import AUTHSERVER, ok, ok_json, run_authserver, sqlite_env
from tests.support.postgres import free_port
from tests.support.server import Server

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / "docs" / "performance.md"
CHART = ROOT / "docs" / "performance.png"
BENCH_DIR = Path(__file__).resolve().parent
#: The peers' set-up and the wrk script both servers' token runs share (peers/README.md).
PEERS_DIR = BENCH_DIR / "peers"
TOKEN_LUA = PEERS_DIR / "common" / "token.lua"
INTROSPECT_LUA = BENCH_DIR / "introspect.lua"
PRIVATE_KEY_JWT_LUA = BENCH_DIR / "private_key_jwt.lua"

DURATION = int(os.environ.get("BENCH_DURATION", "10"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "16"))
PEER = os.environ.get("BENCH_PEER", "")
DRAW_CHART = os.environ.get("BENCH_CHART", "") not in ("", "0")
SOAK_SECONDS = int(os.environ.get("BENCH_SOAK", "60"))
RSS_SAMPLE_SECONDS = 5
RSS_TARGET = "±5 %"
#: Clients in the database for the baseline figures, and for the figures at scale.
BASELINE_CLIENTS = 10
SCALE_CLIENTS = 100_000
SCALE_REVOKED = 1_000_000
#: Revoked entries expire this far ahead, so the server's housekeeping never purges them.
REVOKED_LIFETIME = timedelta(days=1)
SQLITE_BUSY_SECONDS = 60
HAND_WRITTEN_MARKER = "<!-- hand-written below: make bench keeps this part -->"
HEAD_TO_HEAD_ROUNDS = 7
HEAD_TO_HEAD_SECONDS = 5
KEY_ROUNDS = 5
BALANCE_ROUNDS = 5
CHART_CONNECTIONS = (1, 4, 16, 64)
CHART_DURATION = 5
WARMUP_SECONDS = 1
SIGN_SECONDS = 2.0
WRK_TIMEOUT = "10s"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
APT_TIMEOUT_SECONDS = 300
PEER_INSTALL_TIMEOUT_SECONDS = 300
PEER_SCRIPT_TIMEOUT_SECONDS = 60
#: The client the bench has the peer register (start.sh's CLIENT_ID and CLIENT_SECRET).
PEER_CLIENT = ("bench-client", "bench-secret-3f9a1c7e5b2d4086")
TOKEN_BODY = {"grant_type": "client_credentials", "scope": "api"}
LATENCY_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
#: Fixed statements (no table name is ever formatted into SQL).
COUNT_SQL = {
    "clients": "SELECT count(*) FROM clients",
    "revoked_tokens": "SELECT count(*) FROM revoked_tokens",
}
INSERT_CLIENT_SQL = (
    "INSERT INTO clients (client_id, name, scope, audiences, token_ttl, enabled, created_at,"
    " last_used_at) VALUES (?, ?, 'api', '[]', NULL, 1, ?, NULL)"
)
INSERT_SECRET_SQL = (
    "INSERT INTO client_secrets (client_id, secret_hash, created_at, expires_at)"
    " VALUES (?, ?, ?, NULL)"
)
INSERT_REVOKED_SQL = (
    "INSERT INTO revoked_tokens (jti, client_id, expires_at, revoked_at) VALUES (?, ?, ?, ?)"
)


class BenchError(Exception):
    """A step of the benchmark failed; the message is one line for the user."""


@dataclass(frozen=True)
class Result:
    label: str
    rps: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    socket_errors: str


@dataclass(frozen=True)
class WorkerMemory:
    """One granian worker's VmRSS samples (kB) over the memory run, first to last."""

    pid: int
    rss_kb: tuple[int, ...]

    @property
    def start(self) -> int:
        return self.rss_kb[0]

    @property
    def end(self) -> int:
        return self.rss_kb[-1]

    @property
    def peak(self) -> int:
        return max(self.rss_kb)

    @property
    def change(self) -> float:
        return self.end / self.start - 1 if self.start else 0.0


@dataclass(frozen=True)
class Soak:
    result: Result
    workers: tuple[WorkerMemory, ...]


@dataclass(frozen=True)
class Scale:
    clients: int
    revoked: int
    inserted_clients: int
    inserted_revoked: int
    insert_seconds: float
    results: tuple[Result, ...]


@dataclass(frozen=True)
class Metered:
    """A head-to-head run and the server CPU (all its processes) it took per request."""

    result: Result
    cpu_us_per_request: float


@dataclass(frozen=True)
class KeyRound:
    """One alternating pair: the secret path, then a key client, same wrk settings."""

    secret: Metered
    key: Metered

    @property
    def cpu_ratio(self) -> float:
        return self.key.cpu_us_per_request / self.secret.cpu_us_per_request


@dataclass(frozen=True)
class KeyAuth:
    """The token endpoint with ``private_key_jwt`` and with a secret in alternating rounds,
    and how the assertions went: ``signed`` per round (``capped`` when
    ``assertions.MAX_ASSERTIONS`` cut it), ``taken`` by wrk from the rounds' files and
    ``missing``, the requests it sent without one (both summed over the rounds)."""

    rounds: tuple[KeyRound, ...]
    signed: int
    capped: bool
    sign_seconds: float
    taken: int
    missing: int


@dataclass(frozen=True)
class Registered:
    """The bench's two clients: ``client_id`` with ``secret`` (Basic), ``key_client_id`` with
    the public half of the bench's RSA key (``private_key_jwt``)."""

    client_id: str
    secret: str
    key_client_id: str


@dataclass(frozen=True)
class Round:
    ours: Metered
    theirs: Metered
    #: The floor app (``floor.py``): the server and the signature, nothing else.
    floor: Metered


@dataclass(frozen=True)
class Signing:
    per_core: float
    cpus: int

    @property
    def all_cores(self) -> float:
        return self.per_core * self.cpus


def ensure_wrk() -> None:
    if shutil.which("wrk"):
        return
    print("wrk not found; installing Debian's wrk with apt-get", flush=True)
    try:
        installed = subprocess.run(
            ["apt-get", "install", "-y", "wrk"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=APT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise BenchError(f"`apt-get install -y wrk` failed: {error}") from error
    if installed.returncode != 0 or not shutil.which("wrk"):
        raise BenchError(
            f"`apt-get install -y wrk` failed (exit {installed.returncode}); install wrk and rerun"
        )


def basic(client_id: str, secret: str) -> str:
    return base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def latency_ms(output: str, percentile: str) -> float:
    match = re.search(rf"^\s*{percentile}%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.MULTILINE)
    if not match:
        raise BenchError(f"no {percentile}% latency in wrk output:\n{output}")
    return float(match.group(1)) * LATENCY_UNITS_MS[match.group(2)]


def parse_wrk(label: str, output: str) -> Result:
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    if not rps:
        raise BenchError(f"no Requests/sec in wrk output for {label}:\n{output}")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors:\s+(.+)$", output, re.MULTILINE)
    result = Result(
        label=label,
        rps=float(rps.group(1)),
        p50_ms=latency_ms(output, "50"),
        p99_ms=latency_ms(output, "99"),
        non2xx=int(non2xx.group(1)) if non2xx else 0,
        socket_errors=errors.group(1).strip() if errors else "",
    )
    requests_sent = re.search(r"^\s*(\d+) requests in", output, re.MULTILINE)
    if requests_sent and 0 < int(requests_sent.group(1)) <= result.non2xx:
        # A few errors under load are a finding for the tables; nothing but errors is a
        # broken set-up (a wrong script, client or URL), whose ratios would mean nothing.
        raise BenchError(
            f"{label}: every response was non-2xx ({result.non2xx}); see the server's log"
        )
    return result


def wrk_command(url: str, script: Path | None, connections: int, seconds: int) -> list[str]:
    if script is not None and not script.is_file():
        raise BenchError(f"no wrk script {script}")
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    command += ["--timeout", WRK_TIMEOUT]
    command += ["-s", str(script)] if script else []
    return [*command, url]


def run_wrk(
    label: str,
    url: str,
    script: Path | None,
    env: dict[str, str] | None,
    connections: int,
    seconds: int,
) -> str:
    """One wrk run to completion (bounded to its duration plus a minute); returns its stdout."""
    completed = subprocess.run(
        wrk_command(url, script, connections, seconds),
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
    )
    if completed.returncode != 0:
        raise BenchError(f"wrk failed for {label}: {completed.stderr.strip()}")
    return completed.stdout


def wrk(
    label: str,
    url: str,
    *,
    script: Path | None = None,
    env: dict[str, str] | None = None,
    connections: int = CONNECTIONS,
    duration: int = DURATION,
    warmup: bool = True,
) -> Result:
    """One bounded wrk run (after a short discarded warm-up) against ``url``."""
    if warmup:
        run_wrk(label, url, script, env, connections, WARMUP_SECONDS)
    print(f"  {label}: wrk -c{connections} -d{duration}s {url}", flush=True)
    return parse_wrk(label, run_wrk(label, url, script, env, connections, duration))


def measure_oauth(
    url: str, credentials: dict[str, str], token: str, suffix: str, server_pid: int
) -> tuple[Metered, Result]:
    """Token (with the server's CPU per token) and introspection, the two endpoints that read
    the database: one function, so the figures at scale come from exactly the same runs as the
    baseline."""
    token_url = f"{url}/oauth2/token"
    return (
        metered(f"POST /oauth2/token{suffix}", token_url, credentials, server_pid, DURATION),
        wrk(
            f"POST /oauth2/introspect{suffix}",
            f"{url}/oauth2/introspect",
            script=INTROSPECT_LUA,
            env={**credentials, "TOKEN": token},
        ),
    )


def signing_rate() -> Signing:
    """RS256 signatures per second on one core (this thread), 2048-bit key, ~SIGN_SECONDS."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    message = b"eyJhbGciOiJSUzI1NiJ9." + b"x" * 300
    count, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < SIGN_SECONDS:
        for _ in range(20):
            key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        count += 20
    return Signing(per_core=count / elapsed, cpus=os.cpu_count() or 1)


def request_token(url: str, form: dict[str, str], auth: tuple[str, str] | None = None) -> str:
    """One token request with ``form`` added to the body: a failure stops the bench with the
    server's answer, where a wrk run would only count non-2xx."""
    response = requests.post(url, data={**TOKEN_BODY, **form}, auth=auth, timeout=30)
    if response.status_code != 200:
        raise BenchError(f"token request to {url} got {response.status_code}: {response.text}")
    return str(response.json()["access_token"])


def first_token(url: str, client_id: str, secret: str) -> str:
    return request_token(url, {}, (client_id, secret))


def sqlite_path(env: dict[str, str]) -> Path:
    url = env["AUTHSERVER_DATABASE_URL"]
    if not url.startswith("sqlite:///"):
        raise BenchError(f"the bench needs a SQLite database, not {url}")
    return Path(url.removeprefix("sqlite:///"))


def db_time(moment: datetime) -> str:
    """A UTC datetime as SQLAlchemy's DateTime stores it in SQLite (naive, space, microseconds),
    so the server reads the rows inserted here exactly like its own."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def count_rows(connection: sqlite3.Connection, table: str) -> int:
    return int(connection.execute(COUNT_SQL[table]).fetchone()[0])


def insert_clients(connection: sqlite3.Connection, count: int, now: datetime) -> list[str]:
    """``count`` enabled clients with scope ``api`` and one (unusable) secret hash each, shaped
    like the CLI's: the server's lookups then walk the same indexes as with real clients."""
    created = db_time(now)
    ids = [f"cli_{secrets.token_urlsafe(16)}" for _ in range(count)]
    connection.executemany(
        INSERT_CLIENT_SQL, ((client_id, f"bench-{i}", created) for i, client_id in enumerate(ids))
    )
    connection.executemany(
        INSERT_SECRET_SQL,
        ((client_id, f"$sha256${secrets.token_urlsafe(32)}", created) for client_id in ids),
    )
    return ids


def revoked_rows(
    count: int, client_ids: list[str], now: datetime
) -> Iterable[tuple[str, str, str, str]]:
    revoked, expires = db_time(now), db_time(now + REVOKED_LIFETIME)
    for i in range(count):
        yield secrets.token_urlsafe(16), client_ids[i % len(client_ids)], expires, revoked


def populate(path: Path, clients: int, revoked: int) -> tuple[int, int, float]:
    """Top the database up to ``clients`` clients and ``revoked`` revoked jtis with plain
    ``executemany`` in ONE transaction (seconds, where the CLI or the API would take hours);
    WAL mode lets a running server keep reading meanwhile. Returns the rows inserted and the
    seconds taken, checkpoint included, so the server then reads the tables, not a huge WAL."""
    started, now = time.perf_counter(), datetime.now(UTC)
    with closing(sqlite3.connect(path, timeout=SQLITE_BUSY_SECONDS)) as connection:
        with connection:
            new_clients = max(0, clients - count_rows(connection, "clients"))
            new_revoked = max(0, revoked - count_rows(connection, "revoked_tokens"))
            ids = insert_clients(connection, new_clients, now)
            if new_revoked:
                owners = ids or [
                    str(connection.execute("SELECT client_id FROM clients").fetchone()[0])
                ]
                connection.executemany(INSERT_REVOKED_SQL, revoked_rows(new_revoked, owners, now))
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return new_clients, new_revoked, time.perf_counter() - started


@contextmanager
def serving(directory: Path, jwks: Path) -> Iterator[tuple[Server, Registered]]:
    """A fresh database, keys folder, a secret client and a key client with the JWK Set in
    ``jwks`` (plus clients inserted up to ``BASELINE_CLIENTS``), and ``authserver serve --port
    N`` (defaults for everything else); yields the server and the clients, then stops it."""
    env = sqlite_env(directory)
    ok(run_authserver(env, "db", "upgrade"))
    client = ok_json(
        run_authserver(env, "clients", "create", "--name", "bench", "--scope", "api", "--json")
    )
    key_client = ok_json(
        run_authserver(
            env,
            "clients",
            "create",
            "--name",
            "bench-key",
            "--scope",
            "api",
            "--auth-method",
            "private_key_jwt",
            "--jwks-file",
            str(jwks),
            "--json",
        )
    )
    populate(sqlite_path(env), BASELINE_CLIENTS, 0)
    port = free_port()
    env["AUTHSERVER_ISSUER"] = f"http://127.0.0.1:{port}"
    log_path = directory / "serve.log"
    handle = log_path.open("wb")
    process = subprocess.Popen(
        [str(AUTHSERVER), "serve", "--port", str(port)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=handle,
        stderr=handle,
        start_new_session=True,
    )
    server = Server(process, port, env, log_path, handle)
    try:
        server.wait_until_healthy()
        yield (
            server,
            Registered(client["client_id"], client["client_secret"], key_client["client_id"]),
        )
    finally:
        server.kill()


def process_stats() -> Iterator[tuple[int, list[str]]]:
    """Every process's pid and the ``/proc/PID/stat`` fields after its name (field 3 onwards)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            yield int(stat.parent.name), stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while scanning


def worker_pids(server_pid: int) -> list[int]:
    """granian's workers: the server's direct children (field 4 is the parent's pid), found by
    scanning so it works without ``/proc/PID/task/*/children`` support."""
    children = sorted(pid for pid, fields in process_stats() if int(fields[1]) == server_pid)
    if not children:
        raise BenchError(f"no worker processes under the server (pid {server_pid})")
    return children


def cpu_seconds(server_pid: int) -> float:
    """User and system CPU a server has used so far: its process and its direct children (our
    granian workers, or node's cluster workers); fields 14 and 15 count clock ticks."""
    ticks = sum(
        int(fields[11]) + int(fields[12])
        for pid, fields in process_stats()
        if pid == server_pid or int(fields[1]) == server_pid
    )
    return ticks / CLOCK_TICKS


def rss_kb(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError as error:
        raise BenchError(f"worker {pid} is gone (crashed or respawned?): {error}") from error
    match = re.search(r"^VmRSS:\s+(\d+)\s+kB", status, re.MULTILINE)
    if not match:
        raise BenchError(f"no VmRSS in /proc/{pid}/status (worker exiting?)")
    return int(match.group(1))


def run_sampled(
    command: list[str], env: dict[str, str], seconds: int, sample: Callable[[], None]
) -> str:
    """Run ``command`` (bounded to ``seconds`` plus a minute), calling ``sample`` when it starts,
    every ``RSS_SAMPLE_SECONDS`` and once it has exited; returns its stdout."""
    deadline = time.monotonic() + seconds + 60
    process = subprocess.Popen(
        command,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        sample()
        while True:
            try:
                process.wait(timeout=RSS_SAMPLE_SECONDS)
                break
            except subprocess.TimeoutExpired:
                if time.monotonic() > deadline:
                    raise BenchError(f"{command[0]} still running after {seconds + 60} s") from None
                sample()
        sample()
        stdout, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    if process.returncode != 0:
        raise BenchError(f"{command[0]} failed: {stderr.strip()}")
    return stdout


def soak(server: Server, url: str, credentials: dict[str, str]) -> Soak:
    """The token endpoint under load for ``SOAK_SECONDS`` while each worker's RSS is sampled: a
    leak per request shows as growth, where the short runs would hide it. The first sample is
    taken after the earlier runs and a warm-up, once start-up allocations are done."""
    pids = worker_pids(server.process.pid)
    samples: dict[int, list[int]] = {pid: [] for pid in pids}

    def sample() -> None:
        for pid in pids:
            samples[pid].append(rss_kb(pid))

    label = "POST /oauth2/token soak"
    run_wrk(label, url, TOKEN_LUA, credentials, CONNECTIONS, WARMUP_SECONDS)
    print(
        f"  {label}: wrk -c{CONNECTIONS} -d{SOAK_SECONDS}s {url},"
        f" VmRSS of workers {', '.join(map(str, pids))} every {RSS_SAMPLE_SECONDS} s",
        flush=True,
    )
    command = wrk_command(url, TOKEN_LUA, CONNECTIONS, SOAK_SECONDS)
    output = run_sampled(command, credentials, SOAK_SECONDS, sample)
    workers = tuple(WorkerMemory(pid, tuple(samples[pid])) for pid in pids)
    return Soak(parse_wrk(label, output), workers)


def at_scale(server: Server, credentials: dict[str, str], token: str) -> Scale:
    """Fill the live server's database up to ``SCALE_CLIENTS`` clients and ``SCALE_REVOKED``
    revoked jtis, then measure token and introspection again: both must stay flat, since
    every request looks its client (and introspection the jti) up in those tables."""
    path = sqlite_path(server.env)
    print(
        f"  inserting up to {SCALE_CLIENTS:,} clients and {SCALE_REVOKED:,} revoked jtis"
        f" into {path.name}",
        flush=True,
    )
    new_clients, new_revoked, seconds = populate(path, SCALE_CLIENTS, SCALE_REVOKED)
    print(f"  inserted {new_clients:,} clients and {new_revoked:,} jtis in {seconds:.1f} s")
    with closing(sqlite3.connect(path, timeout=SQLITE_BUSY_SECONDS)) as connection:
        clients, revoked = (
            count_rows(connection, "clients"),
            count_rows(connection, "revoked_tokens"),
        )
    token_run, introspect = measure_oauth(
        server.url, credentials, token, " at scale", server.process.pid
    )
    return Scale(
        clients, revoked, new_clients, new_revoked, seconds, (token_run.result, introspect)
    )


def run_peer_script(name: str, env: dict[str, str] | None = None, timeout: int = 60) -> None:
    script = PEERS_DIR / PEER / name
    completed = subprocess.run(
        [str(script)],
        cwd=script.parent,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if completed.returncode != 0:
        detail = (completed.stderr or completed.stdout).strip().splitlines()
        raise BenchError(f"{name} exit {completed.returncode}: {detail[-1] if detail else ''}")


@contextmanager
def peer_running() -> Iterator[str | None]:
    """Install and start the peer; yields its token URL, or None (after one line saying why)
    when it cannot be run. It is stopped on exit."""
    print(f"peer {PEER}: installing and starting", flush=True)
    try:
        run_peer_script("install.sh", timeout=PEER_INSTALL_TIMEOUT_SECONDS)
        port = free_port()
        client_id, secret = PEER_CLIENT
        start_env = {"PORT": str(port), "CLIENT_ID": client_id, "CLIENT_SECRET": secret}
        run_peer_script("start.sh", start_env, PEER_SCRIPT_TIMEOUT_SECONDS)
    except (BenchError, OSError, subprocess.TimeoutExpired) as error:
        print(f"peer {PEER} skipped: {error}", flush=True)
        yield None
        return
    try:
        url = f"http://127.0.0.1:{port}/token"
        first_token(url, *PEER_CLIENT)
        yield url
    except (BenchError, requests.RequestException) as error:
        print(f"peer {PEER} skipped: {error}", flush=True)
        yield None
    finally:
        run_peer_script("stop.sh", timeout=PEER_SCRIPT_TIMEOUT_SECONDS)


def measure_peer(url: str) -> Result:
    return wrk(f"{PEER} token", url, script=TOKEN_LUA, env={"BASIC": basic(*PEER_CLIENT)})


def peer_pid() -> int:
    """The peer's server process, from the pid file its start.sh writes."""
    try:
        return int((PEERS_DIR / PEER / "server.pid").read_text())
    except (OSError, ValueError) as error:
        raise BenchError(f"no pid for {PEER}: {error}") from error


def metered(
    label: str,
    url: str,
    env: dict[str, str],
    server_pid: int,
    duration: int = HEAD_TO_HEAD_SECONDS,
    *,
    script: Path = TOKEN_LUA,
    warmup_env: dict[str, str] | None = None,
) -> Metered:
    """A token run whose server CPU is counted too, warm-up excluded. CPU per request is the
    steadier figure on a shared box: it does not depend on how much CPU the run was given.
    ``warmup_env`` (default ``env``) lets the warm-up send other requests than the run, for
    credentials that are good only once."""
    run_wrk(label, url, script, warmup_env or env, CONNECTIONS, WARMUP_SECONDS)
    before = cpu_seconds(server_pid)
    result = wrk(label, url, script=script, env=env, duration=duration, warmup=False)
    served = result.rps * duration
    used = cpu_seconds(server_pid) - before
    return Metered(result, used / served * 1e6 if served else float("nan"))


def read_tally(path: Path) -> tuple[int, int]:
    """What ``private_key_jwt.lua`` wrote at its end: assertions taken, requests without one."""
    try:
        taken, missing = path.read_text().split()
        return int(taken), int(missing)
    except (OSError, ValueError) as error:
        raise BenchError(f"no tally from private_key_jwt.lua in {path}: {error}") from error


def measure_private_key_jwt(
    server: Server, key: RSAKey, clients: Registered, secret_rate: float, directory: Path
) -> KeyAuth:
    """A key client's token requests against the secret client's, in ``KEY_ROUNDS``
    alternating pairs of ``HEAD_TO_HEAD_SECONDS`` runs with the same wrk settings: one pair
    moves with this machine's load (1.06× to 1.35× in four pairs of one half hour), so the
    target is judged on the median per-pair ratio, as the head-to-head rounds are.
    ``secret_rate`` (the secret path's measured rate) sizes the assertions, pre-signed for
    every warm-up and run in files of their own, so that no assertion is sent twice."""
    url, audience = f"{server.url}/oauth2/token", server.env["AUTHSERVER_ISSUER"]
    probe = assertions.sign(key, assertions.claims_for(clients.key_client_id, audience), "probe")
    request_token(url, assertions.form(probe))
    per_round = assertions.needed(secret_rate, HEAD_TO_HEAD_SECONDS)
    files = [
        (directory / f"assertions-warmup-{n}.txt", directory / f"assertions-{n}.txt")
        for n in range(1, KEY_ROUNDS + 1)
    ]
    per_warmup = assertions.needed(secret_rate, WARMUP_SECONDS)
    batches: dict[Path, int] = {}
    for warmup, run in files:
        batches[warmup], batches[run] = per_warmup, per_round
    print(
        f"  signing {sum(batches.values()):,} RS256 assertions on {os.cpu_count()} processes"
        f" ({KEY_ROUNDS} rounds; secret path {secret_rate:,.0f} req/s × {assertions.HEADROOM}"
        f" + {assertions.MARGIN:,} each)",
        flush=True,
    )
    started = time.perf_counter()
    try:
        assertions.sign_batches(key, clients.key_client_id, audience, batches)
    except multiprocessing.TimeoutError:
        raise BenchError("signing the private_key_jwt assertions took too long") from None
    sign_seconds = time.perf_counter() - started
    credentials = {"BASIC": basic(clients.client_id, clients.secret)}
    pid = server.process.pid
    rounds, taken, missing = [], 0, 0
    for number, (warmup, run) in enumerate(files, 1):
        tally = directory / f"assertions-tally-{number}.txt"
        secret = metered(f"token (client_secret_basic) round {number}", url, credentials, pid)
        key_run = metered(
            f"token (private_key_jwt) round {number}",
            url,
            {"ASSERTIONS": str(run), "TALLY": str(tally)},
            pid,
            script=PRIVATE_KEY_JWT_LUA,
            warmup_env={"ASSERTIONS": str(warmup), "TALLY": str(directory / "warmup-tally.txt")},
        )
        rounds.append(KeyRound(secret, key_run))
        round_taken, round_missing = read_tally(tally)
        taken, missing = taken + round_taken, missing + round_missing
    capped = per_round == assertions.MAX_ASSERTIONS
    return KeyAuth(tuple(rounds), per_round, capped, sign_seconds, taken, missing)


def head_to_head(
    token_url: str, credentials: dict[str, str], server_pid: int, peer_url: str, directory: Path
) -> list[Round]:
    """Ours, the peer's and the floor app's token endpoint in alternating short runs, all
    three servers up.

    Runs minutes apart on this shared machine differ by ±15 % on their own; alternating
    rounds expose the servers to the same drift, so their per-round ratio is the fair one.
    """
    peer = peer_pid()
    peer_credentials = {"BASIC": basic(*PEER_CLIENT)}
    with floor.floor_running(directory) as (floor_url, floor_pid):
        return [
            Round(
                metered(f"token round {number}", token_url, credentials, server_pid),
                metered(f"{PEER} round {number}", peer_url, peer_credentials, peer),
                metered(f"floor round {number}", floor_url, peer_credentials, floor_pid),
            )
            for number in range(1, HEAD_TO_HEAD_ROUNDS + 1)
        ]


def head_to_head_lines(rounds: list[Round]) -> list[str]:
    lines = [
        f"Head to head: our token endpoint, {PEER}'s and the floor app's (`deploy/bench/floor.py`:"
        " granian and an RS256 signature, nothing else), all running, in"
        f" {len(rounds)} alternating rounds of {HEAD_TO_HEAD_SECONDS} s (each after a"
        f" {WARMUP_SECONDS} s warm-up). CPU is what each server's processes used per token during"
        " its run (user + system, from /proc); ratio: ours / the peer's:",
        "",
        f"| round | ours req/s | ours p99 (ms) | ours CPU (µs/token) | {PEER} req/s"
        f" | {PEER} p99 (ms) | {PEER} CPU (µs/token) | floor req/s | floor p99 (ms)"
        " | floor CPU (µs/token) | ratio req/s | ratio CPU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for number, r in enumerate(rounds, 1):
        ours, theirs = r.ours.result, r.theirs.result
        lines.append(
            f"| {number} | {ours.rps:,.0f} | {ours.p99_ms:.2f} | {r.ours.cpu_us_per_request:,.0f}"
            f" | {theirs.rps:,.0f} | {theirs.p99_ms:.2f} | {r.theirs.cpu_us_per_request:,.0f}"
            f" | {r.floor.result.rps:,.0f} | {r.floor.result.p99_ms:.2f}"
            f" | {r.floor.cpu_us_per_request:,.0f}"
            f" | {ratio(ours.rps, theirs.rps)}"
            f" | {ratio(r.ours.cpu_us_per_request, r.theirs.cpu_us_per_request)} |"
        )
    measured = [r for r in rounds if r.theirs.result.rps and r.theirs.cpu_us_per_request]
    if measured:
        throughput = median(r.ours.result.rps / r.theirs.result.rps for r in measured)
        cpu = median(r.ours.cpu_us_per_request / r.theirs.cpu_us_per_request for r in measured)
        floor_cpu = median(
            r.floor.cpu_us_per_request / r.theirs.cpu_us_per_request for r in measured
        )
        above_floor = median(
            r.ours.cpu_us_per_request - r.floor.cpu_us_per_request for r in measured
        )
        p99 = median(r.ours.result.p99_ms for r in rounds)
        floor_p99 = median(r.floor.result.p99_ms for r in rounds)
        failed = sum(r.ours.result.non2xx for r in rounds)
        lines += [
            "",
            f"- token / {PEER} token, median of the rounds: {throughput:.2f}× (target ≥ 1.20×)",
            f"- server CPU per token, ours / {PEER}, median of the rounds: {cpu:.2f}×"
            " (target ≤ 0.85×; below 1: we spend less CPU per token)",
            f"- the floor app / {PEER}, CPU per token, median of the rounds: {floor_cpu:.2f}×"
            f"; ours above the floor: {above_floor:,.0f} µs per token (median)",
            f"- our p99 at c={CONNECTIONS}, median of the rounds: {p99:.2f} ms (target ≤ 15 ms;"
            f" the floor app's: {floor_p99:.2f} ms); non-2xx: {failed} (target 0)",
        ]
    return lines


def sweep(url: str, env: dict[str, str]) -> list[Result]:
    return [
        wrk(f"token c={c}", url, script=TOKEN_LUA, env=env, connections=c, duration=CHART_DURATION)
        for c in CHART_CONNECTIONS
    ]


def balance_rounds(url: str, env: dict[str, str]) -> list[tuple[Result, Result]]:
    """c=1 and c=4 in ``BALANCE_ROUNDS`` alternating rounds: the target is judged on the median
    per-round ratio, as the issue judges every target; one sweep's pair moved from 1.67× to
    2.20× between runs of the same code."""
    pairs = []
    for number in range(1, BALANCE_ROUNDS + 1):
        one, four = (
            wrk(
                f"token c={c} round {number}",
                url,
                script=TOKEN_LUA,
                env=env,
                connections=c,
                duration=CHART_DURATION,
            )
            for c in (1, 4)
        )
        pairs.append((one, four))
    return pairs


def scaling_lines(points: list[Result], balance: list[tuple[Result, Result]]) -> list[str]:
    """Whether connections spread over the workers (c=4 against c=1) and the tail at c=64."""
    many = dict(zip(CHART_CONNECTIONS, points, strict=True))[64]
    ratios = [four.rps / one.rps for one, four in balance if one.rps]
    rounds = ", ".join(
        f"{one.rps:,.0f} → {four.rps:,.0f} ({four.rps / one.rps:.2f}×)"
        for one, four in balance
        if one.rps
    )
    spread = f"{median(ratios):.2f}×" if ratios else "n/a"
    return [
        f"- token c=4 / c=1, median of {len(balance)} alternating rounds of {CHART_DURATION} s:"
        f" {spread} (target ≥ 1.70×: connections spread over the workers); req/s c=1 → c=4:"
        f" {rounds}",
        f"- token p99 at c=64: {many.p99_ms:.2f} ms (target ≤ 50 ms)",
    ]


def draw_chart(points: list[Result]) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("chart skipped: matplotlib is not installed (pip install matplotlib)")
        return False
    figure, throughput = plt.subplots(figsize=(7, 4))
    throughput.plot(CHART_CONNECTIONS, [p.rps for p in points], "o-", color="tab:blue")
    throughput.set_xscale("log", base=2)
    throughput.set_xticks(CHART_CONNECTIONS, [str(c) for c in CHART_CONNECTIONS])
    throughput.set_xlabel("connections (wrk -t1)")
    throughput.set_ylabel("token req/s", color="tab:blue")
    throughput.set_ylim(bottom=0)
    p99 = throughput.twinx()
    p99.plot(CHART_CONNECTIONS, [p.p99_ms for p in points], "s--", color="tab:red")
    p99.set_ylabel("p99 latency (ms)", color="tab:red")
    p99.set_ylim(bottom=0)
    throughput.set_title("POST /oauth2/token: throughput and p99 against connections")
    figure.tight_layout()
    figure.savefig(CHART, dpi=100)
    plt.close(figure)
    return True


def ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:.2f}×" if denominator else "n/a"


def table(results: list[Result]) -> list[str]:
    lines = ["| endpoint | req/s | p50 (ms) | p99 (ms) | non-2xx |", "|---|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r.label} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.non2xx} |")
    return lines


def ratios(by_label: dict[str, Result], signing: Signing, peer: Result | None) -> list[str]:
    token, health = by_label["POST /oauth2/token"].rps, by_label["GET /healthz"].rps
    lines = [
        f"- token / healthz: {ratio(token, health)} (the issue-6 target of 0.50× is withdrawn:"
        " no server signing RS256 reaches it on this machine)",
        f"- jwks / healthz: {ratio(by_label['GET /.well-known/jwks.json'].rps, health)}"
        " (target ≥ 0.90×)",
        f"- introspect / token: {ratio(by_label['POST /oauth2/introspect'].rps, token)}"
        " (target ≥ 1.50×)",
        f"- token / RS256 signing rate: {ratio(token, signing.per_core)} of one core,"
        f" {ratio(token, signing.all_cores)} of all {signing.cpus} cores",
    ]
    if peer:
        lines.append(f"- token / {PEER} token: {ratio(token, peer.rps)} (target ≥ 1.20×)")
    elif PEER:
        lines.append(f"- token / {PEER} token: not measured (the peer could not be run)")
    return lines


def client_auth_lines(auth: KeyAuth) -> list[str]:
    ran_out = (
        f"{auth.missing:,} requests found none left (401, counted as non-2xx)"
        if auth.missing
        else "none ran out"
    )
    lines = [
        "Client authentication on the token endpoint: the secret client (client_secret_basic)"
        f" and a key client (private_key_jwt, RS256, {assertions.KEY_BITS}-bit RSA) in"
        f" {len(auth.rounds)} alternating pairs of {HEAD_TO_HEAD_SECONDS} s runs (each after a"
        f" {WARMUP_SECONDS} s warm-up), same wrk settings. CPU is what the server's processes"
        " used per token during the run (user + system, from /proc); ratio: key / secret:",
        "",
        "| round | secret req/s | secret p99 (ms) | secret CPU (µs/token) | key req/s"
        " | key p99 (ms) | key CPU (µs/token) | key non-2xx | ratio req/s | ratio CPU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for number, r in enumerate(auth.rounds, 1):
        secret, key = r.secret.result, r.key.result
        lines.append(
            f"| {number} | {secret.rps:,.0f} | {secret.p99_ms:.2f}"
            f" | {r.secret.cpu_us_per_request:,.0f} | {key.rps:,.0f} | {key.p99_ms:.2f}"
            f" | {r.key.cpu_us_per_request:,.0f} | {key.non2xx} | {ratio(key.rps, secret.rps)}"
            f" | {r.cpu_ratio:.2f}× |"
        )
    throughput = median(r.key.result.rps / r.secret.result.rps for r in auth.rounds)
    return [
        *lines,
        "",
        f"- token private_key_jwt / client_secret_basic, median of the rounds: {throughput:.2f}×",
        "- server CPU per token, private_key_jwt / client_secret_basic, median of the rounds:"
        f" {median(r.cpu_ratio for r in auth.rounds):.2f}× (target ≤ 1.30×)",
        f"- assertions: {auth.signed:,} pre-signed for each round (secret path's rate ×"
        f" {HEAD_TO_HEAD_SECONDS} s × {assertions.HEADROOM} + {assertions.MARGIN:,}"
        + (f", capped at {assertions.MAX_ASSERTIONS:,}" if auth.capped else "")
        + f"; with the warm-ups', {auth.sign_seconds:.1f} s on {os.cpu_count()} processes),"
        f" each sent at most once; wrk took {auth.taken:,} (one a round for its check of the"
        f" script, never sent); {ran_out}",
    ]


def memory_lines(memory: Soak) -> list[str]:
    r = memory.result
    lines = [
        f"Memory over a {SOAK_SECONDS} s run of POST /oauth2/token"
        f" (wrk -c{CONNECTIONS}, each worker's VmRSS every {RSS_SAMPLE_SECONDS} s;"
        f" target: change within {RSS_TARGET}):",
        "",
        "| worker | RSS start (MiB) | RSS end (MiB) | RSS max (MiB) | change (end vs start) |",
        "|---|---:|---:|---:|---:|",
    ]
    for number, w in enumerate(memory.workers, 1):
        lines.append(
            f"| {number} (pid {w.pid}) | {w.start / 1024:.1f} | {w.end / 1024:.1f}"
            f" | {w.peak / 1024:.1f} | {w.change * 100:+.1f} % |"
        )
    lines += [
        "",
        f"Soak throughput: {r.rps:,.0f} req/s, p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms,"
        f" non-2xx {r.non2xx}.",
    ]
    return lines


def scale_lines(scale: Scale, by_label: dict[str, Result]) -> list[str]:
    token, introspect = scale.results
    return [
        f"Flat with scale: {scale.clients:,} registered clients and {scale.revoked:,} revoked"
        f" jtis, against the baseline",
        f"above ({BASELINE_CLIENTS} clients, none revoked). After the runs above,"
        f" {scale.inserted_clients:,} clients (one secret each)",
        f"and {scale.inserted_revoked:,} revoked jtis were inserted straight into the SQLite file"
        " in one transaction",
        f"while the server ran ({scale.insert_seconds:.1f} s, checkpoint included); then the same"
        " two wrk runs:",
        "",
        *table(list(scale.results)),
        "",
        f"- token at scale / token baseline:"
        f" {ratio(token.rps, by_label['POST /oauth2/token'].rps)} (target ≥ 0.90×)",
        f"- introspect at scale / introspect baseline:"
        f" {ratio(introspect.rps, by_label['POST /oauth2/introspect'].rps)} (target ≥ 0.90×)",
    ]


def signing_line(signing: Signing) -> str:
    return (
        f"RS256 signing (cryptography, 2048-bit, PKCS#1 v1.5 + SHA-256, one core):"
        f" {signing.per_core:,.0f}/s per core, ×{signing.cpus} CPUs ="
        f" {signing.all_cores:,.0f}/s ({1000 / signing.per_core:.3f} ms per signature)"
    )


def command_line() -> str:
    settings = [f"BENCH_DURATION={DURATION}", f"BENCH_CONNECTIONS={CONNECTIONS}"]
    settings += [f"BENCH_SOAK={SOAK_SECONDS}"]
    settings += [f"BENCH_PEER={PEER}"] if PEER else []
    settings += ["BENCH_CHART=1"] if DRAW_CHART else []
    return f"{' '.join(settings)} make bench"


def hand_written_part() -> str:
    """Everything from the ``HAND_WRITTEN_MARKER`` line of the current report to its end ("" when
    there is none): design notes written by people live there and must survive ``make bench``."""
    if not REPORT.exists():
        return ""
    text = REPORT.read_text()
    match = re.search(rf"^{re.escape(HAND_WRITTEN_MARKER)}[ \t]*$", text, re.MULTILINE)
    return text[match.start() :] if match else ""


def write_report(
    results: list[Result],
    ratio_lines: list[str],
    signing: Signing,
    chart_points: list[Result] | None,
    charted: bool,
    sections: list[str],
) -> None:
    """The generated report (``sections``: the scale and memory parts), then the hand-written
    part kept from the current file."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Performance",
        "",
        "Written by `make bench` (`python -m deploy.bench`). The figures come from ONE run on a",
        "shared, noisy machine with the load generator on the same box: compare them only as",
        "ratios within the run, never with figures from another run or another machine.",
        "",
        f"Run {now} on {signing.cpus} CPUs: a fresh SQLite database and key, default",
        f"`authserver serve` (default workers), {BASELINE_CLIENTS} clients with scope `api`",
        "(two used: one with a secret, one with a public key); each endpoint after a"
        f" {WARMUP_SECONDS} s",
        "warm-up with:",
        "",
        "```sh",
        command_line(),
        f"wrk -t1 -c{CONNECTIONS} -d{DURATION}s --latency --timeout {WRK_TIMEOUT} [-s SCRIPT] URL",
        "```",
        "",
        "POST /oauth2/token uses `deploy/bench/peers/common/token.lua`"
        " (`grant_type=client_credentials&scope=api`, Basic);",
        "POST /oauth2/introspect uses `deploy/bench/introspect.lua` (one real token, Basic);",
        "token (private_key_jwt) uses `deploy/bench/private_key_jwt.lua` (the same body, a",
        "pre-signed client assertion instead of Basic, a fresh one per request).",
        "",
        *table(results),
        "",
        signing_line(signing),
        "",
        "Ratios:",
        "",
        *ratio_lines,
    ]
    if chart_points:
        lines += [
            "",
            f"Token endpoint against connections ({CHART_DURATION} s each):",
            "",
            *table(chart_points),
        ]
        if charted:
            lines += ["", f"![token throughput and p99 against connections]({CHART.name})"]
    lines += ["", *sections]
    kept = hand_written_part()
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text("\n".join(lines) + "\n" + (f"\n{kept}" if kept else ""))


def known_peer() -> None:
    """``BENCH_PEER`` names a folder of peers/: a typo is a usage error, not a skipped peer."""
    if PEER and not (PEERS_DIR / PEER / "start.sh").is_file():
        known = sorted(p.name for p in PEERS_DIR.iterdir() if (p / "start.sh").is_file())
        raise BenchError(f"BENCH_PEER={PEER}: no such peer (known: {', '.join(known)})")


def bench() -> None:
    known_peer()
    ensure_wrk()
    with tempfile.TemporaryDirectory(prefix="authserver-bench-") as tmp:
        print("starting authserver serve (fresh SQLite database and keys)", flush=True)
        directory, key = Path(tmp), assertions.generate_key()
        jwks = assertions.write_jwks(key, directory / "jwks.json")
        with serving(directory, jwks) as (server, clients):
            token_url = f"{server.url}/oauth2/token"
            access_token = first_token(token_url, clients.client_id, clients.secret)
            credentials = {"BASIC": basic(clients.client_id, clients.secret)}
            token_run, introspect = measure_oauth(
                server.url, credentials, access_token, "", server.process.pid
            )
            print("private_key_jwt: pre-signed assertions, then the token endpoint", flush=True)
            key_auth = measure_private_key_jwt(
                server, key, clients, token_run.result.rps, directory
            )
            results = [
                token_run.result,
                introspect,
                wrk("GET /.well-known/jwks.json", f"{server.url}/.well-known/jwks.json"),
                wrk("GET /healthz", f"{server.url}/healthz"),
            ]
            peer, rounds = None, []
            if PEER:
                with peer_running() as peer_url:
                    if peer_url:
                        peer = measure_peer(peer_url)
                        rounds = head_to_head(
                            token_url, credentials, server.process.pid, peer_url, directory
                        )
            print("connections: c=1, 4, 16, 64", flush=True)
            chart_points = sweep(token_url, credentials)
            print("connections: c=1 against c=4, alternating rounds", flush=True)
            balance = balance_rounds(token_url, credentials)
            print("verification: JWTVerifier against bare joserfc", flush=True)
            verify_cost = verification.measure(server.env["AUTHSERVER_ISSUER"], access_token)
            print("memory: soak run", flush=True)
            memory = soak(server, token_url, credentials)
            print("scale: bulk insert, then token and introspection again", flush=True)
            scale = at_scale(server, credentials, access_token)
    print("measuring RS256 signing rate", flush=True)
    signing = signing_rate()
    by_label = {r.label: r for r in results}
    shown = [*results, peer] if peer else results
    ratio_lines = [*ratios(by_label, signing, peer), *scaling_lines(chart_points, balance)]
    sections = [*scale_lines(scale, by_label), "", *memory_lines(memory)]
    if rounds:
        sections = [*head_to_head_lines(rounds), "", *sections]
    sections = [*client_auth_lines(key_auth), "", *verification.lines(verify_cost), "", *sections]
    charted = draw_chart(chart_points) if DRAW_CHART else False
    print()
    print("\n".join(table(shown)))
    key_results = [r.key.result for r in key_auth.rounds]
    for r in [*shown, *key_results, *scale.results, memory.result]:
        if r.socket_errors:
            print(f"  {r.label}: socket errors {r.socket_errors}")
    print()
    print(signing_line(signing))
    print("\n".join(ratio_lines))
    if chart_points:
        print()
        print("\n".join(table(chart_points)))
    print()
    print("\n".join(sections))
    write_report(shown, ratio_lines, signing, chart_points, charted, sections)
    print(f"\nwrote {REPORT.relative_to(ROOT)}" + (f" and {CHART.name}" if charted else ""))


def main() -> int:
    try:
        bench()
    except BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 1
    except (AssertionError, pytest.fail.Exception) as error:
        print(f"bench: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
