"""The built wheel, installed the way users install it: into fresh virtualenvs outside the
checkout, used from another folder.

- ``authserver[server,postgres]``: ``authserver --version`` reports setup.cfg's version,
  ``db upgrade`` finds the migrations inside the package (SQLite and PostgreSQL), and
  ``serve`` issues tokens over HTTP.
- bare ``authserver``: the client and resource-server helpers work (they get a token from a
  real server and verify it) with none of the server's stack installed, and the
  ``authserver`` command says in one line how to install the server.

The wheel is built once per run from a copy of the working tree: building in the checkout
would reuse setuptools' ``build/`` folder, which keeps files deleted from the source (an old
migration could ship) and is shared with whoever else builds there.
"""

from __future__ import annotations

import configparser
import email.parser
import importlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from filelock import FileLock
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from authserver.__main__ import SERVER_MODULES, missing_server_module
from tests.support.cli import assert_one_line_error, base_env, ok, ok_json
from tests.support.postgres import free_port
from tests.support.served import served_auth_server
from tests.support.server import Server
from tests.support.tokens import verify_access_token

CHECKOUT = Path(__file__).resolve().parent.parent
#: Building the wheel and installing a virtualenv's dependencies (through pip's cache).
PIP_TIMEOUT_SECONDS = 600
RUN_TIMEOUT_SECONDS = 120

#: What the bare install must not bring: the server's stack. (werkzeug stays: the resource
#: helpers read Cache-Control with it; cryptography stays: joserfc needs it.)
SERVER_ONLY_MODULES = (
    "flask",
    "sqlalchemy",
    "alembic",
    "granian",
    "authlib",
    "flask_sqlalchemy",
    "flask_migrate",
    "click",
    "limits",
    "prometheus_client",
)

#: The one line; which server module is named depends on what the CLI imports first.
HINT = re.compile(
    r"authserver: the server is not installed here \(no module named '(?P<module>\w+)'\); "
    r"install it with: pip install 'authserver\[server\]'"
)


def run(
    command: list[str | Path],
    *,
    cwd: Path,
    env: dict[str, str] | None = None,
    timeout: float = RUN_TIMEOUT_SECONDS,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env if env is not None else outside_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def outside_env(**extra: str) -> dict[str, str]:
    """The environment without anything that could make the checkout or the test virtualenv
    importable from an installed virtualenv, and without any AUTHSERVER_* setting."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}
        and not key.startswith("AUTHSERVER_")
    }
    env.update(extra)
    return env


def copy_working_tree(destination: Path) -> None:
    """The files git tracks or would track (committed or not, ignored ones left out), as they
    are in the working tree; links are copied as links."""
    ls_files = ["ls-files", "-z", "--cached", "--others", "--exclude-standard"]
    listed = subprocess.run(
        ["git", "-C", str(CHECKOUT), *ls_files],
        capture_output=True,
        check=True,
        timeout=RUN_TIMEOUT_SECONDS,
    ).stdout.decode()
    for relative in filter(None, listed.split("\0")):
        source, target = CHECKOUT / relative, destination / relative
        if not source.is_symlink() and not source.is_file():
            continue  # deleted in the working tree, not yet committed
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, target)


def setup_cfg_version() -> str:
    config = configparser.ConfigParser()
    config.read(CHECKOUT / "setup.cfg", encoding="utf-8")
    return config["metadata"]["version"]


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """A folder of this run that all its xdist workers share (pytest-xdist's recipe for
    making something once per run): the wheel and the virtualenvs are made there once,
    not once per worker, which on a two-core machine would double the slowest part."""
    base = tmp_path_factory.getbasetemp()
    return base if worker_id == "master" else base.parent


def made_once(run_dir: Path, name: str, make: Callable[[Path], None]) -> Path:
    """``run_dir / name``, made by ``make`` in whichever worker asks first while the others
    wait; a folder left half made by a failed attempt is made again."""
    target = run_dir / name
    with FileLock(run_dir / f"{name}.lock", timeout=2 * PIP_TIMEOUT_SECONDS):
        done = run_dir / f"{name}.done"
        if not done.exists():
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir()
            make(target)
            done.touch()
    return target


def build_wheel(out: Path) -> None:
    source = out.parent / f"{out.name}-source"
    shutil.rmtree(source, ignore_errors=True)
    source.mkdir()
    copy_working_tree(source)
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet"]
    built = run(
        [*pip_wheel, "--disable-pip-version-check", "-w", out, source],
        cwd=out,
        timeout=PIP_TIMEOUT_SECONDS,
    )
    assert built.returncode == 0, built.stderr


def installer(requirement: str) -> Callable[[Path], None]:
    """Makes a fresh virtualenv holding ``requirement`` and its dependencies only (not even
    pip: the test interpreter's pip installs into it)."""

    def install(directory: Path) -> None:
        created = run([sys.executable, "-m", "venv", "--without-pip", directory], cwd=directory)
        assert created.returncode == 0, created.stderr
        python = directory / "bin" / "python"
        # --no-compile: pip would compile every module of every dependency; the tests import
        # a fraction of them, compiled on first import.
        pip_install = [
            *(sys.executable, "-m", "pip", "--python", python, "install", "--quiet"),
            "--no-compile",
        ]
        installed = run(
            [*pip_install, "--disable-pip-version-check", requirement],
            cwd=directory,
            timeout=PIP_TIMEOUT_SECONDS,
        )
        assert installed.returncode == 0, installed.stderr

    return install


@pytest.fixture(scope="session")
def wheel(run_dir: Path) -> Path:
    (path,) = made_once(run_dir, "wheel", build_wheel).glob("authserver-*.whl")
    return path


@pytest.fixture(scope="session")
def server_bin(wheel: Path, run_dir: Path) -> Path:
    """The ``bin`` of a virtualenv with ``authserver[server,postgres]`` from the wheel."""
    return made_once(run_dir, "server-venv", installer(f"{wheel}[server,postgres]")) / "bin"


@pytest.fixture(scope="session")
def bare_bin(wheel: Path, run_dir: Path) -> Path:
    """The ``bin`` of a virtualenv with the bare wheel: the helpers only."""
    return made_once(run_dir, "bare-venv", installer(str(wheel))) / "bin"


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A working folder that is neither the checkout nor a virtualenv."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder


# --- the wheel itself ---


def test_the_wheel_carries_every_migration_file_and_the_typing_marker(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    migrations = CHECKOUT / "migrations"
    expected = {
        f"authserver/migrations/{path.relative_to(migrations).as_posix()}"
        for path in migrations.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert "authserver/migrations/versions/0001_clients_and_client_secrets.py" in expected
    assert expected <= names, f"missing from the wheel: {sorted(expected - names)}"
    shipped = {name for name in names if name.startswith("authserver/migrations/")}
    assert shipped == expected, f"not in migrations/: {sorted(shipped - expected)}"
    assert "authserver/py.typed" in names
    # Only the package and its metadata: no top-level migrations/ or tests/ beside it.
    dist_info = f"authserver-{setup_cfg_version()}.dist-info"
    assert {name.split("/")[0] for name in names} == {"authserver", dist_info}


def test_the_wheel_carries_the_published_schema_apply_validates_with(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        shipped = archive.read("authserver/config.schema.json")
    assert shipped == (CHECKOUT / "docs" / "config.schema.json").read_bytes()


def test_the_console_script_hint_covers_every_distribution_of_the_server_extra(
    wheel: Path,
) -> None:
    """SERVER_MODULES must name the top-level module of each ``server`` requirement in the
    wheel's metadata, or a helpers-only install would show a traceback after all."""
    with zipfile.ZipFile(wheel) as archive:
        (metadata_name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = email.parser.Parser().parsestr(archive.read(metadata_name).decode())
    server = {
        canonicalize_name(requirement.name)
        for requirement in map(Requirement, metadata.get_all("Requires-Dist") or [])
        if requirement.marker is not None and requirement.marker.evaluate({"extra": "server"})
    }
    assert {"flask", "granian", "alembic"} <= server
    modules_of: dict[str, set[str]] = {}
    for module, distributions in importlib.metadata.packages_distributions().items():
        for distribution in distributions:
            modules_of.setdefault(canonicalize_name(distribution), set()).add(module)
    server_modules = set().union(*(modules_of[name] for name in server))
    assert server_modules <= SERVER_MODULES
    # Beyond them, werkzeug only: Flask brings it, and it may be imported before flask.
    assert SERVER_MODULES - server_modules == {"werkzeug"}


def test_only_a_missing_server_module_is_turned_into_the_hint() -> None:
    with pytest.raises(ModuleNotFoundError) as server_side:
        importlib.import_module("flask.no_such_module")
    assert missing_server_module(server_side.value) == "flask"
    with pytest.raises(ModuleNotFoundError) as our_bug:
        importlib.import_module("authserver.no_such_module")
    assert missing_server_module(our_bug.value) is None


# --- authserver[server,postgres] ---


def test_installed_authserver_reports_the_version_from_setup_cfg(
    server_bin: Path, elsewhere: Path
) -> None:
    version = setup_cfg_version()
    assert ok(run([server_bin / "authserver", "--version"], cwd=elsewhere)).stdout.strip() == (
        f"authserver, version {version}"
    )
    by_module = ok(run([server_bin / "python", "-m", "authserver", "--version"], cwd=elsewhere))
    assert by_module.stdout.strip().endswith(f", version {version}")


def test_installed_server_migrates_from_another_folder_and_issues_tokens(
    server_bin: Path, elsewhere: Path, database_url: str, tmp_path: Path
) -> None:
    """``database_url`` runs this against a SQLite file and against PostgreSQL."""
    located = run(
        [server_bin / "python", "-c", "import authserver.schema as s; print(s.MIGRATIONS_DIR)"],
        cwd=elsewhere,
    )
    assert Path(ok(located).stdout.strip()).is_relative_to(server_bin.parent), (
        "the installed package, not the checkout, must be the one under test"
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = outside_env(**base_env(database_url, tmp_path / "keys", AUTHSERVER_ISSUER=url))
    authserver = server_bin / "authserver"

    ok(run([authserver, "db", "upgrade"], cwd=elsewhere, env=env))
    create = [authserver, "clients", "create", "--name", "t", "--scope", "api", "--json"]
    client: dict[str, Any] = ok_json(run(create, cwd=elsewhere, env=env))

    log_path = tmp_path / "serve.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [str(authserver), "serve", "--port", str(port), "--workers", "1"],
        cwd=elsewhere,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    server = Server(process, port, env, log_path, log)
    try:
        server.wait_until_healthy()
        response = requests.post(
            f"{url}/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=(client["client_id"], client["client_secret"]),
            timeout=30,
        )
        assert response.status_code == 200, response.text
        token = response.json()["access_token"]
        verify_access_token(
            f"{url}/.well-known/jwks.json",
            token,
            client_id=client["client_id"],
            audience=url,
            issuer=url,
        )
    finally:
        server.kill()


# --- the bare wheel: the helpers only ---


def test_helpers_only_install_has_none_of_the_server_stack(bare_bin: Path, elsewhere: Path) -> None:
    probe = (
        "import importlib.util, sys\n"
        "import authserver.client, authserver.resource\n"
        "print(' '.join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is not None))\n"
    )
    result = ok(run([bare_bin / "python", "-c", probe, *SERVER_ONLY_MODULES], cwd=elsewhere))
    assert result.stdout.strip() == "", f"installed without the server extra: {result.stdout}"


def test_helpers_only_install_gets_and_verifies_a_token_from_a_real_server(
    bare_bin: Path, elsewhere: Path, tmp_path: Path
) -> None:
    """What a service and a resource server do with the base install alone: discovery, a
    client_credentials token, the JWKS, and an RFC 9068 check."""
    script = (
        "import sys\n"
        "from authserver.client import ClientCredentials\n"
        "from authserver.resource import JWTVerifier\n"
        "issuer, client_id, secret = sys.argv[1:]\n"
        "with ClientCredentials(client_id, secret, issuer=issuer) as source:\n"
        "    token = source.token()\n"
        "verifier = JWTVerifier(issuer, audience=issuer)\n"
        "try:\n"
        "    claims = verifier.verify(token)\n"
        "finally:\n"
        "    verifier.close()\n"
        "print(claims['client_id'], claims['scope'])\n"
    )
    with served_auth_server(tmp_path) as served:
        client = served.create_client()
        arguments = [served.issuer, client["client_id"], client["client_secret"]]
        result = run([bare_bin / "python", "-c", script, *arguments], cwd=elsewhere)
    assert ok(result).stdout.split() == [client["client_id"], "api"]


@pytest.mark.parametrize("how", ["script", "module"])
def test_helpers_only_authserver_command_says_how_to_install_the_server(
    bare_bin: Path, elsewhere: Path, how: str
) -> None:
    command = {
        "script": [bare_bin / "authserver"],
        "module": [bare_bin / "python", "-m", "authserver"],
    }[how]
    line = assert_one_line_error(run([*command, "db", "upgrade"], cwd=elsewhere))
    hint = HINT.fullmatch(line)
    assert hint is not None, line
    assert hint["module"] in SERVER_ONLY_MODULES
