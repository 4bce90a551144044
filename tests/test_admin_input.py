"""Admin input that must not break the server (issue 12, finding 7), and chosen-secret length.

Bounded lifetimes, validated names and audiences, escaped human-readable output, the minimum
length of admin-chosen secrets, and secret rotation serialised across processes. Everything
runs against real databases: the commands in process (the concurrent rotations in real
subprocesses), the service layer on SQLite and PostgreSQL, the JWKS and introspection over
real HTTP.
"""

from __future__ import annotations

import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import flask_migrate
import pytest
import requests
from flask import Flask
from sqlalchemy import create_engine, make_url, or_, select, text, update
from sqlalchemy.orm import Session

from authserver.app import create_app
from authserver.config import MAX_ACCESS_TOKEN_TTL, Settings
from authserver.errors import InvalidClientData
from authserver.extensions import db
from authserver.models import Client, ClientSecret, utcnow
from authserver.schema import MIGRATIONS_DIR, upgrade_schema
from authserver.services import keys as key_service
from authserver.services import registrations, registry
from authserver.services.formatting import client_view
from tests.conftest import RegisteredClient
from tests.support.cli import (
    RunCli,
    assert_one_line_error,
    base_env,
    ok,
    ok_json,
)
from tests.support.cli_in_process import make_in_process_runner
from tests.support.racing import Racer, start_together
from tests.support.waiting import wait_until
from tests.support.wsgi import serving

CreateClient = Callable[..., RegisteredClient]
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
#: What versions before the bound accepted: far beyond anything a ``timedelta`` can hold.
HUGE_TTL = 999_999_999_999
#: The largest lifetime an older version could store on both backends (PostgreSQL's integer).
HUGE_TTL_BOTH_BACKENDS = 2_000_000_000
#: A terminal escape sequence (OSC 52: write to the clipboard) that Click does not strip.
OSC_CLIPBOARD = "\x1b]52;c;cm0gLXJmIH4=\x07"
FORGED_NAME = f"legacy\ncli_FORGED  enabled   admin  [everything]{OSC_CLIPBOARD}"
CONCURRENT_ROTATIONS = 6


def in_app(app: Flask, work: Callable[[Session], Any]) -> Any:
    """Run ``work`` in one committed transaction, as a CLI command or a request would."""
    with app.app_context():
        result = work(db.session())
        db.session.commit()
        return result


def write_as_an_older_version(app: Flask, client_id: str, **values: Any) -> None:
    """Store values straight into the row, past today's validation, as older versions could."""
    in_app(
        app,
        lambda s: s.execute(update(Client).where(Client.client_id == client_id).values(**values)),
    )


@pytest.fixture
def cli(database_url: str, keys_dir: Path, app: Flask) -> RunCli:
    """``authserver`` against the same database and keys as ``app`` (already migrated)."""
    return make_in_process_runner(base_env(database_url, keys_dir))


def views(app: Flask) -> list[dict[str, Any]]:
    return in_app(app, lambda s: [client_view(c) for c in registry.list_clients(s)])


def assert_usage_error(result: subprocess.CompletedProcess[str], option: str) -> None:
    """Click's usage error: exit 2, its message naming the option, nothing on stdout."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert f"Invalid value for '{option}'" in result.stderr
    assert result.stdout == ""


# --- bounded lifetimes -------------------------------------------------------------------------


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("command", "option"),
    [
        (["create", "--name", "x", "--scope", "api", "--token-ttl", "86401"], "--token-ttl"),
        (["update", "{id}", "--token-ttl", str(HUGE_TTL)], "--token-ttl"),
        (["create", "--name", "x", "--scope", "api", "--expires-in", "315360001"], "--expires-in"),
        (["rotate-secret", "{id}", "--expires-in", "100000000000000000000"], "--expires-in"),
        (["rotate-secret", "{id}", "--grace", "604801"], "--grace"),
    ],
    ids=["create-ttl", "update-ttl", "create-expires-in", "rotate-expires-in", "rotate-grace"],
)
def test_cli_refuses_lifetimes_beyond_their_bounds_as_usage_errors(
    cli: RunCli, app: Flask, create_client: CreateClient, command: list[str], option: str
) -> None:
    existing = create_client()

    result = cli("clients", *(arg.format(id=existing.client_id) for arg in command), "--json")

    assert_usage_error(result, option)
    assert views(app) == [existing.view]
    assert in_app(
        app,
        lambda s: registrations.authenticate(
            s, existing.client_id, existing.client_secret, utcnow()
        ),
    )


@SQLITE_ONLY
def test_cli_accepts_each_lifetime_at_its_bound(cli: RunCli) -> None:
    created = ok_json(
        cli(
            "clients",
            "create",
            "--name",
            "x",
            "--scope",
            "api",
            "--json",
            "--token-ttl",
            "86400",
            "--expires-in",
            "315360000",
        )  # fmt: skip
    )
    rotated = ok_json(
        cli(
            "clients",
            "rotate-secret",
            created["client_id"],
            "--json",
            "--grace",
            "604800",
            "--expires-in",
            "315360000",
        )  # fmt: skip
    )
    assert created["token_ttl"] == rotated["token_ttl"] == MAX_ACCESS_TOKEN_TTL


@pytest.mark.parametrize(
    "change",
    [
        lambda s, _: registry.create_client(s, name="x", scope="api", token_ttl=0),
        lambda s, _: registry.create_client(s, name="x", scope="api", token_ttl=86_401),
        lambda s, _: registry.create_client(s, name="x", scope="api", secret_expires_in=10**20),
        lambda s, cid: registry.update_client(s, cid, token_ttl=HUGE_TTL),
        lambda s, cid: registry.rotate_secret(s, cid, grace=-1),
        lambda s, cid: registry.rotate_secret(s, cid, grace=604_801),
        lambda s, cid: registry.rotate_secret(s, cid, expires_in=0),
        lambda s, cid: registry.rotate_secret(s, cid, expires_in=315_360_001),
    ],
    ids=[
        "create-ttl-0",
        "create-ttl-86401",
        "create-expires-in-1e20",
        "update-ttl-huge",
        "rotate-grace-negative",
        "rotate-grace-604801",
        "rotate-expires-in-0",
        "rotate-expires-in-315360001",
    ],
)
def test_services_refuse_lifetimes_beyond_their_bounds(
    app: Flask, create_client: CreateClient, change: Callable[[Session, str], Any]
) -> None:
    """The admin API and ``apply`` will call the services directly, without Click's checks."""
    existing = create_client()

    with pytest.raises(InvalidClientData, match="seconds"):
        in_app(app, lambda s: change(s, existing.client_id))

    assert views(app) == [existing.view]
    assert in_app(
        app,
        lambda s: registrations.authenticate(
            s, existing.client_id, existing.client_secret, utcnow()
        ),
    )


@SQLITE_ONLY
def test_keys_commands_work_with_a_token_ttl_stored_by_an_older_version(
    cli: RunCli, app: Flask, create_client: CreateClient
) -> None:
    """Before: ``keys rotate`` and ``keys list`` ended in ``OverflowError: date value out of
    range`` once a key was retired; retention now counts at most ``MAX_ACCESS_TOKEN_TTL``."""
    write_as_an_older_version(app, create_client().client_id, token_ttl=HUGE_TTL)

    rotated = ok_json(cli("keys", "rotate", "--now", "--json"))
    listed = ok_json(cli("keys", "list", "--json"))

    assert {k["state"] for k in listed} == {"active", "retired"}
    assert rotated["kid"] in {k["kid"] for k in listed}


@SQLITE_ONLY
def test_jwks_introspection_and_tokens_work_with_a_token_ttl_stored_by_an_older_version(
    app: Flask, settings: Settings, create_client: CreateClient
) -> None:
    """Before: the JWKS and introspection answered 500 and tokens lived 31,000 years."""
    client = create_client()
    write_as_an_older_version(app, client.client_id, token_ttl=HUGE_TTL)
    key_service.rotate_key(settings, timedelta(days=1), immediate=True)

    with serving(app) as url, requests.Session() as http:
        jwks = http.get(f"{url}/.well-known/jwks.json", timeout=10)
        issued = http.post(
            f"{url}/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=(client.client_id, client.client_secret),
            timeout=10,
        )
        introspected = http.post(
            f"{url}/oauth2/introspect",
            data={"token": issued.json().get("access_token", "")},
            auth=(client.client_id, client.client_secret),
            timeout=10,
        )

    assert jwks.status_code == 200, jwks.text
    assert len(jwks.json()["keys"]) == 2
    assert issued.status_code == 200, issued.text
    assert issued.json()["expires_in"] == MAX_ACCESS_TOKEN_TTL
    assert introspected.status_code == 200, introspected.text
    claims = introspected.json()
    assert claims["active"] is True
    assert claims["exp"] - claims["iat"] == MAX_ACCESS_TOKEN_TTL


@pytest.fixture
def app_at_0002(settings: Settings) -> Iterator[Flask]:
    """An app whose database stops at revision 0002, before token lifetimes were bounded."""
    app = create_app(settings, with_http=False)
    flask_migrate.Migrate(app, db, directory=str(MIGRATIONS_DIR))
    with app.app_context():
        flask_migrate.upgrade(directory=str(MIGRATIONS_DIR), revision="0002")
    yield app
    with app.app_context():
        db.engine.dispose()


def test_migration_0003_clamps_stored_token_lifetimes_to_a_day(app_at_0002: Flask) -> None:
    def old_client(session: Session, client_id: str, token_ttl: int | None) -> None:
        # Plain SQL: the model has columns that revision 0002 does not.
        session.execute(
            text(
                "INSERT INTO clients (client_id, name, scope, audiences, token_ttl, enabled, "
                "created_at) VALUES (:id, :id, 'api', '[]', :ttl, true, :now)"
            ),
            {"id": client_id, "ttl": token_ttl, "now": datetime.now(UTC)},
        )

    in_app(app_at_0002, lambda s: old_client(s, "cli_huge", HUGE_TTL_BOTH_BACKENDS))
    in_app(app_at_0002, lambda s: old_client(s, "cli_short", 600))
    in_app(app_at_0002, lambda s: old_client(s, "cli_default", None))

    upgrade_schema(app_at_0002)

    stored = in_app(
        app_at_0002, lambda s: dict(s.execute(select(Client.client_id, Client.token_ttl)).all())
    )
    assert stored == {"cli_huge": MAX_ACCESS_TOKEN_TTL, "cli_short": 600, "cli_default": None}


# --- names and audiences -----------------------------------------------------------------------

REFUSED_NAMES = [
    "",
    "   ",
    "x" * 201,
    "two\nlines",
    "carriage\rreturn",
    "tab\tinside",
    "nul\x00byte",
    f"escape{OSC_CLIPBOARD}",
    "colour\x1b[31mred",
    "del\x7fete",
    "c1\x85control",
    "bidi\u202eoverride",
    "zero\u200bwidth",
    "line\u2028separator",
]


@pytest.mark.parametrize("name", REFUSED_NAMES, ids=repr)
def test_create_and_update_refuse_names_that_are_empty_long_or_not_printable(
    app: Flask, create_client: CreateClient, name: str
) -> None:
    existing = create_client()

    with pytest.raises(InvalidClientData, match="printable"):
        in_app(app, lambda s: registry.create_client(s, name=name, scope="api"))
    with pytest.raises(InvalidClientData, match="printable"):
        in_app(app, lambda s: registry.update_client(s, existing.client_id, name=name))

    assert views(app) == [existing.view]


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("Billing – Café 日本 (prod)", "Billing – Café 日本 (prod)"),
        ("  padded  ", "padded"),
        ("y" * 200, "y" * 200),
    ],
    ids=["unicode", "padded", "200-characters"],
)
def test_printable_names_up_to_200_characters_are_accepted(
    app: Flask, name: str, stored: str
) -> None:
    created = in_app(
        app,
        lambda s: client_view(registry.create_client(s, name=name, scope="api").client),
    )
    assert created["name"] == stored


REFUSED_AUDIENCES = [
    "https://x\n",
    "https://api.example.test\t",
    "https://api.example.test/\x1b[31m",
    " https://api.example.test",
    "https://api.example.test/a b",
    "https://api.example.test#fragment",
    "https://caf\u00e9.example.test",
    "javascript:alert(1)",
    "data:text/html,<script>",
    "ftp://files.example.test",
    "file:///etc/passwd",
    "https://",
    "https:///path-only",
    "https:api.example.test",
    "https://api.example.test:99999",
    "https://api.example.test:port",
    "https://[::1",
    "//api.example.test",
    "api.example.test",
    "urn:",
    "urn:x:one-letter-namespace",
    "urn:example",
    "urn:example:",
    "urn:-bad:nss",
]


@pytest.mark.parametrize("audience", REFUSED_AUDIENCES, ids=repr)
def test_audiences_must_be_absolute_https_http_or_urn_uris_without_whitespace(
    app: Flask, create_client: CreateClient, audience: str
) -> None:
    existing = create_client(audiences=["https://a.example.test"])

    with pytest.raises(InvalidClientData, match="https, http or urn"):
        in_app(
            app, lambda s: registry.create_client(s, name="x", scope="api", audiences=[audience])
        )
    with pytest.raises(InvalidClientData, match="https, http or urn"):
        in_app(app, lambda s: registry.update_client(s, existing.client_id, audiences=[audience]))

    assert views(app) == [existing.view]


def test_usual_resource_indicators_are_accepted(app: Flask) -> None:
    audiences = [
        "https://api.example.test",
        "https://api.example.test/v1/orders?tenant=a%20b",
        "http://localhost:8080",
        "HTTPS://API.EXAMPLE.TEST/",
        "https://[::1]:8443/",
        "https://user@api.example.test/~team",
        "urn:example:reports",
        "URN:ietf:params:oauth:token-type:jwt",
    ]
    created = in_app(
        app,
        lambda s: client_view(
            registry.create_client(s, name="x", scope="api", audiences=audiences).client
        ),
    )
    assert created["audiences"] == audiences


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("option", "value", "mentions"),
    [
        ("--name", "two\nlines", "printable"),
        ("--audience", "javascript:alert(1)", "https, http or urn"),
    ],
    ids=["name", "audience"],
)
def test_cli_refuses_a_bad_name_or_audience_with_one_line(
    cli: RunCli, app: Flask, option: str, value: str, mentions: str
) -> None:
    result = cli("clients", "create", "--name", "x", "--scope", "api", option, value, "--json")

    assert mentions in assert_one_line_error(result)
    assert result.stdout == ""
    assert views(app) == []


@SQLITE_ONLY
def test_human_output_escapes_names_stored_by_an_older_version(
    cli: RunCli, app: Flask, create_client: CreateClient
) -> None:
    """Before: the newline forged a ``cli_FORGED`` row and the escape reached the terminal."""
    legacy = create_client()
    create_client(name="honest")
    write_as_an_older_version(app, legacy.client_id, name=FORGED_NAME, audiences=["https://x\n"])

    listed = ok(cli("clients", "list")).stdout
    shown = ok(cli("clients", "show", legacy.client_id)).stdout

    rows = listed.splitlines()
    assert len(rows) == 2
    assert not any(row.startswith("cli_FORGED") for row in rows)
    assert "legacy\\ncli_FORGED" in listed
    assert "\\x1b]52;c;" in shown
    assert "audiences: https://x\\n" in shown
    for output in (listed, shown):
        assert "\x1b" not in output
        assert "\x07" not in output
    assert [line.split(":")[0] for line in shown.splitlines()] == list(legacy.view)


# --- admin-chosen secrets ----------------------------------------------------------------------


@SQLITE_ONLY
def test_secret_stdin_shorter_than_16_characters_exits_1_with_one_line(
    cli: RunCli, app: Flask
) -> None:
    """Before: ``a`` was accepted, and the per-client lock's bypass made it guessable."""
    result = cli(
        "clients",
        "create",
        "--name",
        "x",
        "--scope",
        "api",
        "--secret-stdin",
        input="a" * 15 + "\n",
    )

    line = assert_one_line_error(result)
    assert "at least 16 characters" in line
    assert result.stdout == ""
    assert views(app) == []


@SQLITE_ONLY
def test_secret_stdin_of_exactly_16_characters_is_accepted_and_works(
    cli: RunCli, app: Flask
) -> None:
    chosen = "Exactly-16-chars"

    created = ok_json(
        cli(
            "clients",
            "create",
            "--name",
            "x",
            "--scope",
            "api",
            "--secret-stdin",
            "--json",
            input=chosen + "\n",
        )
    )

    assert created["client_secret"] == chosen
    assert in_app(
        app, lambda s: registrations.authenticate(s, created["client_id"], chosen, utcnow())
    )


@pytest.mark.parametrize("chosen", ["", "a", "x" * 15], ids=["empty", "one", "fifteen"])
def test_create_client_refuses_a_chosen_secret_shorter_than_16(app: Flask, chosen: str) -> None:
    with pytest.raises(InvalidClientData, match="at least 16 characters"):
        in_app(
            app, lambda s: registry.create_client(s, name="x", scope="api", chosen_secret=chosen)
        )


# --- concurrent rotation -----------------------------------------------------------------------


#: SQLite gives up on a lock after its busy timeout (5 s), so the test lets go as soon as
#: two rotations wait (enough for the race) or the first has waited this long.
SQLITE_PATIENCE_SECONDS = 2.5


@contextmanager
def holding_the_client_lock(
    database_url: str, client_id: str
) -> Iterator[Callable[[list[int]], int]]:
    """Hold what a rotation must wait for; yield a count of the given processes waiting.

    This makes the race certain instead of a matter of timing: without serialisation each
    rotation reads the client's secrets and only then waits (at its first write), so all the
    waiting ones act on the same stale state once the lock goes. SQLite: the database's
    write lock, a waiter sleeping in SQLite's busy handler (``/proc/PID/wchan``).
    PostgreSQL: the client's row, locked ``FOR UPDATE``; waiters show in ``pg_stat_activity``.
    """
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        lock = sqlite3.connect(str(url.database), isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        try:
            yield lambda pids: sum(_sleeping(pid) for pid in pids)
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        return
    engine = create_engine(database_url)
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    try:
        with (
            engine.connect() as holder,
            engine.connect().execution_options(isolation_level="AUTOCOMMIT") as observer,
        ):
            holder.execute(
                select(Client.client_id).where(Client.client_id == client_id).with_for_update()
            )
            yield lambda _: int(observer.execute(query).scalar_one())
            holder.rollback()
    finally:
        engine.dispose()


def _sleeping(pid: int) -> bool:
    """Whether the process sleeps in a timer: in the CLI, only SQLite's busy handler does."""
    try:
        return "nanosleep" in Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        return False


def wait_for_waiters(
    processes: list[Racer],
    waiting: Callable[[list[int]], int],
    enough: int,
    patience: float | None,
) -> None:
    """Poll until ``enough`` rotations wait for the lock, one has exited, or the first has
    waited ``patience`` seconds (``None``: no limit)."""
    first_wait: list[float] = []

    def ready() -> bool:
        count = waiting([p.pid for p in processes])
        if count and not first_wait:
            first_wait.append(time.monotonic())
        if count >= enough or any(p.poll() is not None for p in processes):
            return True
        return bool(
            first_wait and patience is not None and time.monotonic() - first_wait[0] > patience
        )

    wait_until(ready, 90, f"{enough} rotations waiting for the lock", interval=0.02)


def start_rotations(env: dict[str, str], client_id: str, folder: Path) -> list[Racer]:
    command = ("clients", "rotate-secret", client_id, "--grace", "300", "--json")
    return start_together([(env, command)] * CONCURRENT_ROTATIONS, folder)


def printed_secrets(processes: list[Racer]) -> list[str]:
    """Each rotation's new secret, once every process has exited 0."""
    return [ok_json(process.result())["client_secret"] for process in processes]


def test_concurrent_rotations_leave_at_most_two_live_secrets_and_the_newest_works(
    database_url: str, keys_dir: Path, app: Flask, create_client: CreateClient, tmp_path: Path
) -> None:
    """Before: six concurrent ``rotate-secret --grace 300`` left 3-4 live secrets, the extras
    with no expiry (each read the same secrets, each kept "the previous one")."""
    client = create_client()
    # PostgreSQL waits for a row lock without a timeout, so all six can be made to wait.
    on_sqlite = database_url.startswith("sqlite")
    enough = 2 if on_sqlite else CONCURRENT_ROTATIONS
    patience = SQLITE_PATIENCE_SECONDS if on_sqlite else None

    with holding_the_client_lock(database_url, client.client_id) as waiting:
        processes = start_rotations(
            base_env(database_url, keys_dir), client.client_id, tmp_path / "rotations"
        )
        wait_for_waiters(processes, waiting, enough, patience)
    printed = printed_secrets(processes)

    def check(session: Session) -> tuple[int, list[str], list[str]]:
        now = utcnow()
        live = session.scalars(
            select(ClientSecret).where(
                ClientSecret.client_id == client.client_id,
                or_(ClientSecret.expires_at.is_(None), ClientSecret.expires_at > now),
            )
        ).all()
        candidates = [client.client_secret, *printed]
        working = [
            s for s in candidates if registrations.authenticate(session, client.client_id, s, now)
        ]
        after_grace = now + timedelta(seconds=301)
        lasting = [
            s
            for s in candidates
            if registrations.authenticate(session, client.client_id, s, after_grace)
        ]
        return len(live), working, lasting

    live, working, lasting = in_app(app, check)
    assert live <= 2
    assert 1 <= len(working) <= 2
    assert len(lasting) == 1, "exactly one secret, the newest, outlives the grace period"
    assert lasting[0] in working
    assert lasting[0] in printed
