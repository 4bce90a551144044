"""Safe start-up on several hosts: ``db upgrade`` run by all of them at once migrates once and
succeeds everywhere, and ``serve`` refuses a database that was never migrated (or is behind)."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, text

from tests.support.cli import AUTHSERVER, CLI_TIMEOUT_SECONDS, assert_one_line_error, base_env
from tests.support.postgres import free_port
from tests.support.waiting import wait_until

HOSTS = 3


def upgrade_all_at_once(envs: list[dict[str, str]]) -> list[subprocess.CompletedProcess[str]]:
    """Start every ``db upgrade`` before any can finish, as hosts booting together do."""
    processes = [
        subprocess.Popen(
            [str(AUTHSERVER), "db", "upgrade"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for env in envs
    ]
    results = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=CLI_TIMEOUT_SECONDS)
        results.append(
            subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
        )
    return results


def migrated_revisions(database_url: str) -> list[str]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return list(connection.scalars(text("SELECT version_num FROM alembic_version")))
    finally:
        engine.dispose()


@pytest.mark.parametrize("round_", range(2))
def test_db_upgrade_on_several_hosts_at_once_succeeds_everywhere_and_migrates_once(
    database_url: str, tmp_path: Path, round_: int
) -> None:
    envs = [base_env(database_url, tmp_path / f"keys-{host}") for host in range(HOSTS)]

    results = upgrade_all_at_once(envs)

    for result in results:
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
    assert len(migrated_revisions(database_url)) == 1


def test_the_upgrade_lock_is_released_for_the_next_run(database_url: str, tmp_path: Path) -> None:
    env = base_env(database_url, tmp_path / "keys")
    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(lambda _: upgrade_all_at_once([env])[0], range(2))
    again = upgrade_all_at_once([env])[0]
    assert [first.returncode, second.returncode, again.returncode] == [0, 0, 0]


def serve(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(AUTHSERVER), "serve", "--port", str(free_port()), "--workers", "1"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        check=False,
    )


def test_serve_refuses_a_database_never_migrated_with_one_line(
    database_url: str, tmp_path: Path
) -> None:
    line = assert_one_line_error(serve(base_env(database_url, tmp_path / "keys")))
    assert "no schema yet" in line
    assert "authserver db upgrade" in line


def test_serve_refuses_a_database_behind_this_version(database_url: str, tmp_path: Path) -> None:
    env = base_env(database_url, tmp_path / "keys")
    assert upgrade_all_at_once([env])[0].returncode == 0
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0002'"))
    engine.dispose()

    line = assert_one_line_error(serve(env))
    assert "revision 0002" in line
    assert "authserver db upgrade" in line


def test_advisory_lock_is_what_serialises_postgres_upgrades(
    postgres: object, tmp_path: Path
) -> None:
    """While another session holds the lock, ``db upgrade`` waits for it rather than racing:
    seen blocked on the advisory lock in ``pg_stat_activity``, then done once it is let go."""
    from authserver.schema import UPGRADE_LOCK_KEY
    from tests.support.postgres import PostgresServer

    assert isinstance(postgres, PostgresServer)
    url = postgres.create_database("t_lock_" + tmp_path.name[-8:].replace("-", "_"))
    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (UPGRADE_LOCK_KEY,))
        waiting = subprocess.Popen(
            [str(AUTHSERVER), "db", "upgrade"],
            env=base_env(url, tmp_path / "keys"),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

        def blocked_on_the_lock() -> bool:
            if waiting.poll() is not None:
                pytest.fail("db upgrade went ahead while the lock was held")
            row = holder.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND wait_event = 'advisory'"
            ).fetchone()
            return row == (1,)

        wait_until(
            blocked_on_the_lock,
            CLI_TIMEOUT_SECONDS,
            "db upgrade waiting for the advisory lock",
            interval=0.1,
        )
        assert waiting.poll() is None, "db upgrade went ahead while the lock was held"
        holder.execute("SELECT pg_advisory_unlock(%s)", (UPGRADE_LOCK_KEY,))
        _, stderr = waiting.communicate(timeout=CLI_TIMEOUT_SECONDS)
    assert waiting.returncode == 0, stderr
    assert len(migrated_revisions(url)) == 1
