"""Safe start-up on several hosts: ``db upgrade`` run by all of them at once migrates once and
succeeds everywhere, and ``serve`` refuses a database that was never migrated (or is behind)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, text

from tests.support.cli import AUTHSERVER, CLI_TIMEOUT_SECONDS, assert_one_line_error, base_env
from tests.support.postgres import free_port
from tests.support.racing import run_together
from tests.support.waiting import wait_until

HOSTS = 3


def upgrade_all_at_once(
    envs: list[dict[str, str]], folder: Path
) -> list[subprocess.CompletedProcess[str]]:
    """``db upgrade`` in one process per environment, released at the same moment, as hosts
    booting together run it."""
    return run_together([(env, ["db", "upgrade"]) for env in envs], folder)


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

    results = upgrade_all_at_once(envs, tmp_path / "hosts")

    for result in results:
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
    assert len(migrated_revisions(database_url)) == 1


def test_the_upgrade_lock_is_released_for_the_next_run(database_url: str, tmp_path: Path) -> None:
    env = base_env(database_url, tmp_path / "keys")
    first, second = upgrade_all_at_once([env, env], tmp_path / "together")
    (again,) = upgrade_all_at_once([env], tmp_path / "again")
    assert [first.returncode, second.returncode, again.returncode] == [0, 0, 0]


def serve(env: dict[str, str], folder: Path) -> subprocess.CompletedProcess[str]:
    (result,) = run_together(
        [(env, ["serve", "--port", str(free_port()), "--workers", "1"])], folder
    )
    return result


def test_serve_refuses_a_database_never_migrated_with_one_line(
    database_url: str, tmp_path: Path
) -> None:
    line = assert_one_line_error(serve(base_env(database_url, tmp_path / "keys"), tmp_path))
    assert "no schema yet" in line
    assert "authserver db upgrade" in line


def test_serve_refuses_a_database_behind_this_version(database_url: str, tmp_path: Path) -> None:
    env = base_env(database_url, tmp_path / "keys")
    assert upgrade_all_at_once([env], tmp_path / "upgrade")[0].returncode == 0
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0002'"))
    engine.dispose()

    line = assert_one_line_error(serve(env, tmp_path / "serve"))
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
