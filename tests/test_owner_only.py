"""Secrets at rest stay the server user's own: the SQLite file (client secret hashes), its side
files, the keys folder and the key files, created owner-only or tightened at start-up.

Through the real console script and a real ``authserver serve``; permissions read with
``os.stat``. The side files are checked on a real SQLite connection held open in-process,
since a command's connections (and with them ``-wal`` and ``-shm``) are gone when it exits.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text

from authserver.app import create_app
from authserver.config import Settings
from authserver.database import SQLITE_SIDE_FILES
from authserver.extensions import db
from authserver.security.keys import KeyStore
from tests.support.cli import assert_one_line_error, ok, ok_json, sqlite_env
from tests.support.cli_in_process import run_in_process
from tests.support.server import Servers


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def instance_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The database in a folder that does not exist yet, as ``instance/`` on a fresh clone."""
    env = sqlite_env(tmp_path, AUTHSERVER_SIGNING_ALG="ES256", **extra)
    env["AUTHSERVER_DATABASE_URL"] = f"sqlite:///{tmp_path / 'instance' / 'authserver.db'}"
    return env


def test_db_upgrade_creates_the_database_0600_in_a_folder_created_0700(tmp_path: Path) -> None:
    ok(run_in_process(instance_env(tmp_path), "db", "upgrade"))
    assert mode(tmp_path / "instance") == 0o700
    assert mode(tmp_path / "instance" / "authserver.db") == 0o600


def test_db_upgrade_leaves_an_existing_database_folder_as_it_is(tmp_path: Path) -> None:
    """Only a folder the server creates is its own; an existing one may be shared on purpose."""
    (tmp_path / "instance").mkdir(mode=0o755)
    (tmp_path / "instance").chmod(0o755)
    ok(run_in_process(instance_env(tmp_path), "db", "upgrade"))
    assert mode(tmp_path / "instance") == 0o755
    assert mode(tmp_path / "instance" / "authserver.db") == 0o600


def migrated_env(tmp_path: Path, migrated_sqlite_url: str, **extra: str) -> dict[str, str]:
    """A migrated database (``tmp_path/authserver.db``) and an ES256 key, made in-process."""
    KeyStore(tmp_path / "keys").generate("ES256")
    return sqlite_env(tmp_path, AUTHSERVER_DATABASE_URL=migrated_sqlite_url, **extra)


def test_db_upgrade_tightens_a_world_readable_database(
    tmp_path: Path, migrated_sqlite_url: str
) -> None:
    database = tmp_path / "authserver.db"
    database.chmod(0o644)  # as every earlier version left it
    ok(run_in_process(migrated_env(tmp_path, migrated_sqlite_url), "db", "upgrade"))
    assert mode(database) == 0o600


def start_up(database: Path, tmp_path: Path) -> None:
    """What every command and every server worker does first: build the app."""
    app = create_app(
        Settings(database_url=f"sqlite:///{database}", keys_dir=tmp_path / "keys"),
        with_http=False,
    )
    with app.app_context():
        db.engine.dispose()


def test_tightening_keeps_the_owners_own_bits(tmp_path: Path) -> None:
    """A read-only database stays read-only for its owner: nothing is ever widened."""
    database = tmp_path / "authserver.db"
    database.touch()
    database.chmod(0o444)
    start_up(database, tmp_path)
    assert mode(database) == 0o400


def side_files(database: Path) -> list[Path]:
    found = [database.with_name(database.name + s) for s in SQLITE_SIDE_FILES]
    return [path for path in found if path.exists()]


@contextmanager
def open_database(database: Path, tmp_path: Path) -> Iterator[list[Path]]:
    """A connection holding the database open after a write, as a running server does; yields
    the database file and the side files that exist meanwhile (``-wal`` and ``-shm``)."""
    app = create_app(
        Settings(database_url=f"sqlite:///{database}", keys_dir=tmp_path / "keys"),
        with_http=False,
    )
    with app.app_context():
        try:
            db.session.execute(text("CREATE TABLE scratch (x INTEGER)"))
            db.session.commit()
            opened = [database, *side_files(database)]
            assert [path.name for path in opened[1:]] == [
                f"{database.name}-wal",
                f"{database.name}-shm",
            ]
            yield opened
        finally:
            db.session.remove()
            db.engine.dispose()


def test_sqlite_side_files_of_a_new_database_are_created_0600(tmp_path: Path) -> None:
    with open_database(tmp_path / "new" / "authserver.db", tmp_path) as opened:
        assert {path.name: mode(path) for path in opened} == {p.name: 0o600 for p in opened}


def test_world_readable_sqlite_side_files_are_tightened_at_start_up(tmp_path: Path) -> None:
    """Side files an earlier version left 0644 while its server still runs are tightened by
    the next start-up, with the database file."""
    database = tmp_path / "authserver.db"
    with open_database(database, tmp_path) as opened:
        for path in opened:
            path.chmod(0o644)
        start_up(database, tmp_path)
        assert {path.name: mode(path) for path in opened} == {p.name: 0o600 for p in opened}


def test_keys_command_tightens_the_keys_folder_and_key_files(
    tmp_path: Path, migrated_sqlite_url: str
) -> None:
    """The checked-out ``keys/`` is 0755; a key file copied in by hand may be 0644."""
    env = migrated_env(tmp_path, migrated_sqlite_url)
    keys = tmp_path / "keys"
    (key_file,) = keys.glob("*.key.json")
    keys.chmod(0o755)
    key_file.chmod(0o644)
    ok_json(run_in_process(env, "keys", "list", "--json"))
    assert mode(keys) == 0o700
    assert mode(key_file) == 0o600


def test_serve_tightens_the_database_and_the_keys_folder(
    tmp_path: Path, migrated_sqlite_url: str
) -> None:
    env = migrated_env(tmp_path, migrated_sqlite_url)
    database = tmp_path / "authserver.db"
    keys = tmp_path / "keys"
    database.chmod(0o644)
    keys.chmod(0o755)
    with Servers(tmp_path) as servers:
        servers.start(env, workers=1)
        assert mode(database) == 0o600
        assert mode(keys) == 0o700
        assert [mode(path) for path in keys.glob("*.key.json")] == [0o600]


#: ``chmod`` is refused there for every user, root included: it stands for a keys folder
#: owned by another user or on a read-only mount, which a test cannot make portably.
UNCHANGEABLE_FOLDER = "/proc/self/task"


def test_keys_folder_that_cannot_be_tightened_is_a_warning_line_not_a_crash(
    tmp_path: Path, migrated_sqlite_url: str
) -> None:
    assert mode(Path(UNCHANGEABLE_FOLDER)) & 0o077, "the stand-in must be open to others"
    env = sqlite_env(
        tmp_path,
        AUTHSERVER_DATABASE_URL=migrated_sqlite_url,
        AUTHSERVER_KEYS_DIR=UNCHANGEABLE_FOLDER,
    )
    result = run_in_process(env, "keys", "list", "--json")
    assert json.loads(ok(result).stdout) == []
    warning = json.loads(assert_one_line_error(result, status=0))
    assert warning["event"] == "permissions.not_tightened"
    assert warning["path"] == UNCHANGEABLE_FOLDER
    assert "keys folder" in warning["message"]
