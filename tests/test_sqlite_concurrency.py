"""SQLite under concurrent writers: WAL and a busy timeout, so nothing is lost or corrupted."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.support.cli import sqlite_env
from tests.support.racing import run_together

WRITERS = 8


def test_concurrent_cli_writers_lose_no_client_and_corrupt_nothing(
    tmp_path: Path, migrated_sqlite_url: str
) -> None:
    env = sqlite_env(tmp_path)
    create = ["clients", "create", "--scope", "api", "--json", "--name"]
    results = run_together([(env, [*create, f"w{i}"]) for i in range(WRITERS)], tmp_path)
    created = []
    for result in results:
        assert result.returncode == 0, result.stderr
        created.append(json.loads(result.stdout)["client_id"])

    database = tmp_path / "authserver.db"
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {row[0] for row in connection.execute("SELECT client_id FROM clients")}
        secrets = connection.execute("SELECT count(*) FROM client_secrets").fetchone()[0]
    assert stored == set(created)
    assert secrets == WRITERS
