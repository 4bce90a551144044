"""Where a token request's CPU goes: one process serving token requests for py-spy to sample.

Why one process: under ``make bench`` the CPU is split between two workers, wrk and the peer,
and a sampling profiler attached to one worker sees a fraction of it. Here the app is built
exactly as a ``serve`` worker builds it (``load_worker_app``: the RSGI gateway, the
multiprocess metrics folder, the shared failure counters, the JSON logs, to a file), and
requests are handed to the gateway as granian hands them over (an RSGI scope and protocol),
one after the other on an event loop. Only granian's own HTTP parsing is missing.

Usage (docs/performance.md, issue 18)::

    py-spy record --native -r 97 -f raw -o after.txt -- python -m deploy.bench.profile 2500
    python -m deploy.bench.profile --parts before.txt after.txt

The second form prints the table of the doc: each sample is given to the first part of a
token request (``PARTS``) found on its stack.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from tests.support.rsgi import Scope

#: The parts of a token request, in the order a sample is matched against them: the first
#: whose markers appear on the sample's stack (function or file names) gets it.
PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("RS256 signature (OpenSSL, through joserfc)", ("_RSAAlgModel.sign",)),
    ("the two log lines (audit + access)", ("audit_event", "log_request")),
    ("client authentication", ("client_auth.py",)),
    ("JWS/JWT encoding around the signature (joserfc)", ("joserfc",)),
    ("metrics (prometheus_client)", ("metrics.py", "prometheus_client")),
    ("failed-authentication limit (per address)", ("address_retry_after",)),
    (
        "request parsing (environ, body, form, Basic)",
        ("_environ", "_read_body", "parse_form", "_basic_credentials", "werkzeug", "deadlines.py"),
    ),
    ("grant checks, token claims (ours)", ("grants.py", "tokens.py")),
    ("Authlib request and dispatch", ("authlib",)),
    (
        "Flask, WSGI layers, envelope, answer",
        ("flask", "envelope.py", "router.py", "responses.py", "oauth.py", "server.py", "_call ("),
    ),
)
REST = "the rest (event loop, gateway)"
#: The frame every sampled request runs under.
ROOT_FRAME = "serve_tokens ("
WARMUP_REQUESTS = 300
JSON_LOGGERS = ("authserver.access", "authserver.audit")


class _Protocol:
    def __init__(self, body: bytes) -> None:
        self._body = body
        self.status = 0

    async def __call__(self) -> bytes:
        return self._body

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status


def _prepared(directory: Path) -> tuple[Any, Scope, bytes]:
    """A migrated database with one secret client, a signing key, and serve's environment."""
    os.environ.update(
        AUTHSERVER_DATABASE_URL=f"sqlite:///{directory / 'authserver.db'}",
        AUTHSERVER_KEYS_DIR=str(directory / "keys"),
        PROMETHEUS_MULTIPROC_DIR=str(directory / "metrics"),
    )
    (directory / "metrics").mkdir()
    from click.testing import CliRunner

    from authserver.cli import main
    from authserver.config import SHARED_COUNTERS_ENV, Settings
    from authserver.security import shared_counters
    from authserver.services.keys import ensure_signing_key

    shared_counters.create_file(str(directory / "failures"))
    os.environ[SHARED_COUNTERS_ENV] = str(directory / "failures")
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade"]).exit_code == 0
    created = runner.invoke(main, ["clients", "create", "--name", "p", "--scope", "api", "--json"])
    client = json.loads(created.output[created.output.index("{") :])
    ensure_signing_key(Settings.from_env())

    from authserver.cli.granian_app import load_worker_app
    from authserver.json_logs import configure_json_logs

    configure_json_logs(*JSON_LOGGERS)
    gateway = load_worker_app()
    body = b"grant_type=client_credentials&scope=api"
    basic = base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode())
    headers = [
        ("host", "127.0.0.1:8080"),
        ("authorization", f"Basic {basic.decode()}"),
        ("content-type", "application/x-www-form-urlencoded"),
        ("content-length", str(len(body))),
    ]
    return gateway, Scope("/oauth2/token", headers), body


async def serve_tokens(gateway: Any, scope: Scope, body: bytes, count: int) -> None:
    for _ in range(count):
        protocol = _Protocol(body)
        await gateway(scope, protocol)
        if protocol.status != 200:
            raise RuntimeError(f"a token request got {protocol.status}")


def run(count: int) -> None:
    with tempfile.TemporaryDirectory(prefix="authserver-profile-") as tmp:
        directory = Path(tmp)
        gateway, scope, body = _prepared(directory)
        with (directory / "stderr.log").open("w") as log:
            # The JSON lines go to a file, as under a service manager (the CLI runs above
            # left the handlers on streams of their own).
            for name in JSON_LOGGERS:
                for handler in logging.getLogger(name).handlers:
                    if isinstance(handler, logging.StreamHandler):
                        handler.setStream(log)
            loop = asyncio.new_event_loop()
            loop.run_until_complete(serve_tokens(gateway, scope, body, WARMUP_REQUESTS))
            loop.run_until_complete(serve_tokens(gateway, scope, body, count))


def parts(path: Path) -> tuple[Counter[str], int]:
    """py-spy's raw output (one ``stack count`` line per distinct stack) by part."""
    counts: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        frames = stack.split(";")
        root = next((i for i, frame in enumerate(frames) if ROOT_FRAME in frame), None)
        if root is None:
            continue
        below = ";".join(frames[root + 1 :])
        total += int(number)
        part = next((name for name, marks in PARTS if any(m in below for m in marks)), REST)
        counts[part] += int(number)
    return counts, total


def parts_table(before: Path, after: Path) -> list[str]:
    (old, old_total), (new, new_total) = parts(before), parts(after)
    signature = PARTS[0][0]
    lines = [
        "| part of a token request | before: % of CPU | after: % of CPU"
        " | before: × the signature | after: × the signature |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in [*(name for name, _ in PARTS), REST]:
        lines.append(
            f"| {name} | {100 * old[name] / old_total:.1f} | {100 * new[name] / new_total:.1f}"
            f" | {old[name] / old[signature]:.2f} | {new[name] / new[signature]:.2f} |"
        )
    old_rest, new_rest = old_total - old[signature], new_total - new[signature]
    lines.append(
        f"| **all but the signature** | {100 * old_rest / old_total:.1f}"
        f" | {100 * new_rest / new_total:.1f} | {old_rest / old[signature]:.2f}"
        f" | {new_rest / new[signature]:.2f} |"
    )
    return lines


def main(arguments: list[str]) -> int:
    if arguments[:1] == ["--parts"] and len(arguments) == 3:
        print("\n".join(parts_table(Path(arguments[1]), Path(arguments[2]))))
        return 0
    if len(arguments) == 1 and arguments[0].isdigit():
        run(int(arguments[0]))
        return 0
    print("usage: python -m deploy.bench.profile COUNT | --parts BEFORE AFTER", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
