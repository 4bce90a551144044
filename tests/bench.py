"""Benchmark: throughput and latency of the real server, as ratios measured in one run.

Why: issue 6 sets its performance targets as ratios (token vs ``/healthz``, JWKS vs ``/healthz``,
introspection vs token, token vs the machine's RS256 signing rate, token vs node-oidc-provider),
because these machines are shared and noisy and only figures from the same run compare.

How: ``make bench`` (``python -m tests.bench``)

1. installs Debian's ``wrk`` with ``apt-get`` when it is missing;
2. makes a fresh SQLite database (``authserver db upgrade``) and keys folder in a temp dir,
   registers one client with scope ``api`` and starts ``authserver serve`` exactly like a user
   would (default worker count; only ``--port`` chosen), then waits for ``/healthz``;
3. runs ``wrk -t1 -c16 -d10s --latency`` against ``POST /oauth2/token``,
   ``POST /oauth2/introspect``, ``GET /.well-known/jwks.json`` and ``GET /healthz``;
4. times RS256 signing with ``cryptography`` on one core (2048-bit key, PKCS#1 v1.5, SHA-256);
5. prints one table and the ratios, and writes them to ``docs/performance.md``.

Environment: ``BENCH_DURATION`` (seconds, default 10), ``BENCH_CONNECTIONS`` (default 16);
``BENCH_PEER=oidc-provider`` also installs, starts and measures the peer in
``../shared/peers/oidc-provider`` in the same run; ``BENCH_CHART=1`` also measures the token
endpoint at 1, 4, 16 and 64 connections and draws ``docs/performance.png`` (needs matplotlib).
The server and the peer are always stopped, and every wait is bounded.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.support.cli import AUTHSERVER, ok, ok_json, run_authserver, sqlite_env
from tests.support.postgres import free_port
from tests.support.server import Server

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "docs" / "performance.md"
CHART = ROOT / "docs" / "performance.png"
LUA_DIR = Path(__file__).resolve().parent / "bench_lua"
PEERS_DIR = ROOT.parent / "shared" / "peers"
TOKEN_LUA = PEERS_DIR / "common" / "token.lua"
INTROSPECT_LUA = LUA_DIR / "introspect.lua"

DURATION = int(os.environ.get("BENCH_DURATION", "10"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "16"))
PEER = os.environ.get("BENCH_PEER", "")
DRAW_CHART = os.environ.get("BENCH_CHART", "") not in ("", "0")
CHART_CONNECTIONS = (1, 4, 16, 64)
CHART_DURATION = 5
WARMUP_SECONDS = 1
SIGN_SECONDS = 2.0
WRK_TIMEOUT = "10s"
APT_TIMEOUT_SECONDS = 300
PEER_INSTALL_TIMEOUT_SECONDS = 300
PEER_SCRIPT_TIMEOUT_SECONDS = 60
#: The client that ../shared/peers/oidc-provider/start.sh registers (common/lib.sh defaults).
PEER_CLIENT = ("bench-client", "bench-secret-3f9a1c7e5b2d4086")
TOKEN_BODY = {"grant_type": "client_credentials", "scope": "api"}
LATENCY_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


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
    return Result(
        label=label,
        rps=float(rps.group(1)),
        p50_ms=latency_ms(output, "50"),
        p99_ms=latency_ms(output, "99"),
        non2xx=int(non2xx.group(1)) if non2xx else 0,
        socket_errors=errors.group(1).strip() if errors else "",
    )


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

    def run(seconds: int) -> str:
        command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
        command += ["--timeout", WRK_TIMEOUT]
        command += ["-s", str(script)] if script else []
        completed = subprocess.run(
            [*command, url],
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

    if warmup:
        run(WARMUP_SECONDS)
    print(f"  {label}: wrk -c{connections} -d{duration}s {url}", flush=True)
    return parse_wrk(label, run(duration))


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


def first_token(url: str, client_id: str, secret: str) -> str:
    response = requests.post(url, data=TOKEN_BODY, auth=(client_id, secret), timeout=30)
    if response.status_code != 200:
        raise BenchError(f"token request to {url} got {response.status_code}: {response.text}")
    return str(response.json()["access_token"])


@contextmanager
def serving(directory: Path) -> Iterator[tuple[Server, str, str]]:
    """A fresh database, keys folder and client, and ``authserver serve --port N`` (defaults
    for everything else); yields the server and the client's id and secret, then stops it."""
    env = sqlite_env(directory)
    ok(run_authserver(env, "db", "upgrade"))
    client = ok_json(
        run_authserver(env, "clients", "create", "--name", "bench", "--scope", "api", "--json")
    )
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
        yield server, client["client_id"], client["client_secret"]
    finally:
        server.kill()


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


def measure_peer() -> Result | None:
    """Install, start, measure and stop the peer; None (after one line saying why) if it fails."""
    print(f"peer {PEER}: installing and starting", flush=True)
    try:
        run_peer_script("install.sh", timeout=PEER_INSTALL_TIMEOUT_SECONDS)
        port = free_port()
        try:
            run_peer_script("start.sh", {"PORT": str(port)}, PEER_SCRIPT_TIMEOUT_SECONDS)
            url = f"http://127.0.0.1:{port}/token"
            first_token(url, *PEER_CLIENT)
            return wrk(
                f"{PEER} token",
                url,
                script=TOKEN_LUA,
                env={"BASIC": basic(*PEER_CLIENT)},
            )
        finally:
            run_peer_script("stop.sh", timeout=PEER_SCRIPT_TIMEOUT_SECONDS)
    except (BenchError, OSError, subprocess.TimeoutExpired, requests.RequestException) as error:
        print(f"peer {PEER} skipped: {error}", flush=True)
        return None


def sweep(url: str, env: dict[str, str]) -> list[Result]:
    return [
        wrk(f"token c={c}", url, script=TOKEN_LUA, env=env, connections=c, duration=CHART_DURATION)
        for c in CHART_CONNECTIONS
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
        f"- token / healthz: {ratio(token, health)} (target ≥ 0.50×)",
        f"- jwks / healthz: {ratio(by_label['GET /.well-known/jwks.json'].rps, health)}"
        " (target ≥ 0.90×)",
        f"- introspect / token: {ratio(by_label['POST /oauth2/introspect'].rps, token)}"
        " (target ≥ 0.80×)",
        f"- token / RS256 signing rate: {ratio(token, signing.per_core)} of one core,"
        f" {ratio(token, signing.all_cores)} of all {signing.cpus} cores",
    ]
    if peer:
        lines.append(f"- token / {PEER} token: {ratio(token, peer.rps)} (target ≥ 1.00×)")
    elif PEER:
        lines.append(f"- token / {PEER} token: not measured (the peer could not be run)")
    return lines


def signing_line(signing: Signing) -> str:
    return (
        f"RS256 signing (cryptography, 2048-bit, PKCS#1 v1.5 + SHA-256, one core):"
        f" {signing.per_core:,.0f}/s per core, ×{signing.cpus} CPUs ="
        f" {signing.all_cores:,.0f}/s ({1000 / signing.per_core:.3f} ms per signature)"
    )


def command_line() -> str:
    settings = [f"BENCH_DURATION={DURATION}", f"BENCH_CONNECTIONS={CONNECTIONS}"]
    settings += [f"BENCH_PEER={PEER}"] if PEER else []
    settings += ["BENCH_CHART=1"] if DRAW_CHART else []
    return f"{' '.join(settings)} make bench"


def write_report(
    results: list[Result],
    ratio_lines: list[str],
    signing: Signing,
    chart_points: list[Result] | None,
    charted: bool,
) -> None:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Performance",
        "",
        "Written by `make bench` (`python -m tests.bench`). The figures come from ONE run on a",
        "shared, noisy machine with the load generator on the same box: compare them only as",
        "ratios within the run, never with figures from another run or another machine.",
        "",
        f"Run {now} on {signing.cpus} CPUs: a fresh SQLite database and key, default",
        "`authserver serve` (default workers), one client with scope `api`; each endpoint after a",
        f"{WARMUP_SECONDS} s warm-up with:",
        "",
        "```sh",
        command_line(),
        f"wrk -t1 -c{CONNECTIONS} -d{DURATION}s --latency --timeout {WRK_TIMEOUT} [-s SCRIPT] URL",
        "```",
        "",
        "POST /oauth2/token uses `../shared/peers/common/token.lua`"
        " (`grant_type=client_credentials&scope=api`, Basic);",
        "POST /oauth2/introspect uses `tests/bench_lua/introspect.lua` (one real token, Basic).",
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
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text("\n".join(lines) + "\n")


def bench() -> None:
    ensure_wrk()
    with tempfile.TemporaryDirectory(prefix="authserver-bench-") as tmp:
        print("starting authserver serve (fresh SQLite database and keys)", flush=True)
        with serving(Path(tmp)) as (server, client_id, secret):
            token_url = f"{server.url}/oauth2/token"
            access_token = first_token(token_url, client_id, secret)
            credentials = {"BASIC": basic(client_id, secret)}
            results = [
                wrk("POST /oauth2/token", token_url, script=TOKEN_LUA, env=credentials),
                wrk(
                    "POST /oauth2/introspect",
                    f"{server.url}/oauth2/introspect",
                    script=INTROSPECT_LUA,
                    env={**credentials, "TOKEN": access_token},
                ),
                wrk("GET /.well-known/jwks.json", f"{server.url}/.well-known/jwks.json"),
                wrk("GET /healthz", f"{server.url}/healthz"),
            ]
            chart_points = sweep(token_url, credentials) if DRAW_CHART else None
        peer = measure_peer() if PEER else None
    print("measuring RS256 signing rate", flush=True)
    signing = signing_rate()
    by_label = {r.label: r for r in results}
    shown = [*results, peer] if peer else results
    ratio_lines = ratios(by_label, signing, peer)
    charted = draw_chart(chart_points) if chart_points else False
    print()
    print("\n".join(table(shown)))
    for r in shown:
        if r.socket_errors:
            print(f"  {r.label}: socket errors {r.socket_errors}")
    print()
    print(signing_line(signing))
    print("\n".join(ratio_lines))
    if chart_points:
        print()
        print("\n".join(table(chart_points)))
    write_report(shown, ratio_lines, signing, chart_points, charted)
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
