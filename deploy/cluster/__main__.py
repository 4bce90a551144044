"""Entry point of ``make cluster-test``: runs every scenario, prints and records the table."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from deploy.cluster import scenarios
from deploy.cluster.cluster import Cluster
from deploy.cluster.instances import UNIT, UNIT_BINARY
from deploy.cluster.scenarios import Row
from tests.support.cli import AUTHSERVER

REPORT = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"
TABLE_BEGINS = "<!-- make cluster-test: latest table begins -->"
TABLE_ENDS = "<!-- make cluster-test: latest table ends -->"


def main() -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    started_at = datetime.now(UTC)
    began = time.monotonic()
    notes = [verify_unit(), _load_average("before")]
    try:
        rows = run_scenarios(notes)
    except RuntimeError as exc:  # a part that cannot be set up or driven: said in one line
        print(f"cluster-test: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    except KeyboardInterrupt:
        print("cluster-test: interrupted; everything it started is stopped", file=sys.stderr)  # noqa: T201
        return 130
    notes.append(_load_average("after"))
    table = render(rows, notes, started_at, time.monotonic() - began)
    print("\n".join(table))  # noqa: T201
    record(table)
    return 0 if all(row.passed for row in rows) else 1


def run_scenarios(notes: list[str]) -> list[Row]:
    rows: list[Row] = []
    with Cluster() as cluster:
        notes.extend(cluster.notes)
        for note in notes:
            print(note, flush=True)  # noqa: T201
        try:
            rows.append(_report(scenarios.first_start(cluster)))
            clients = scenarios.register(cluster)
            for scenario in scenarios.SCENARIOS:
                try:
                    row = scenario(cluster, clients)
                except Exception as exc:  # noqa: BLE001 - one broken scenario, not the run
                    error = f"raised {type(exc).__name__}: {exc}"
                    row = Row(scenario.__name__, 0, 1, None, False, [error])
                rows.append(_report(row))
        except Exception:
            print(cluster.logs(), file=sys.stderr)  # noqa: T201
            raise
        if not all(row.passed for row in rows):
            print(cluster.logs(), file=sys.stderr)  # noqa: T201
    return rows


def verify_unit() -> str:
    """``systemd-analyze verify`` on the unit, with this checkout's binary in place of the
    installed one (verify insists that the programs exist)."""
    try:
        with tempfile.TemporaryDirectory() as directory:
            unit = Path(directory) / UNIT.name
            unit.write_text(UNIT.read_text().replace(UNIT_BINARY, str(AUTHSERVER)))
            result = subprocess.run(
                ["systemd-analyze", "verify", str(unit)],
                capture_output=True,
                text=True,
                timeout=60,
            )
    except FileNotFoundError:
        return "systemd-analyze not available: deploy/authserver.service NOT verified"
    problems = [line for line in result.stderr.splitlines() if str(unit) in line]
    if result.returncode != 0 or problems:
        raise SystemExit(
            f"systemd-analyze verify rejects deploy/authserver.service:\n{result.stderr}"
        )
    return "systemd-analyze verify: deploy/authserver.service has no complaint"


def _load_average(when: str) -> str:
    """Said before and after the run: the machine's other work shows in the latencies."""
    one, five, _ = os.getloadavg()
    return f"load average {when}: {one:.1f} (1 min), {five:.1f} (5 min)"


def _report(row: Row) -> Row:
    verdict = "ok" if row.passed else "FAILED"
    print(f"{row.scenario}: {verdict}", flush=True)  # noqa: T201
    for line in row.details:
        print(f"    {line}", flush=True)  # noqa: T201
    return row


def render(rows: list[Row], notes: list[str], started_at: datetime, seconds: float) -> list[str]:
    lines = [
        f"Run on {started_at:%Y-%m-%d %H:%M} UTC, {seconds:.0f} s in all; "
        + "; ".join(notes)
        + ".",
        "",
        "| scenario | requests | failures | max latency: client / instance | verdict |",
        "|---|---:|---:|---:|---|",
    ]
    for row in rows:
        latency = " / ".join(
            "-" if seconds is None else f"{seconds:.2f} s"
            for seconds in (row.max_latency, row.server_max_latency)
        )
        verdict = "pass" if row.passed else "**FAIL**"
        lines.append(
            f"| {row.scenario} | {row.requests} | {row.failures} | {latency} | {verdict} |"
        )
    lines.append("")
    for row in rows:
        lines.append(f"- {row.scenario}: " + "; ".join(row.details))
    return lines


def record(table: list[str]) -> None:
    """Replace the table between the markers of docs/deploy.md; the rest is hand-written."""
    text = REPORT.read_text()
    head, found, rest = text.partition(TABLE_BEGINS)
    _, found_end, tail = rest.partition(TABLE_ENDS)
    if not (found and found_end):
        raise SystemExit(f"{REPORT}: the table markers are missing")
    REPORT.write_text("\n".join([head + TABLE_BEGINS, *table, TABLE_ENDS + tail]))


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM (a CI timeout) unwinds like Ctrl-C, so every clean-up runs."""
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
