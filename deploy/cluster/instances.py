"""authserver instances started the way ``deploy/authserver.service`` starts them.

The unit file is read, not imitated: its ``ExecStartPre=`` and ``ExecStart=`` commands, its
``Environment=`` lines, its ``EnvironmentFile=`` (``deploy/authserver.env``) and its
``LoadCredential=`` are what each host runs with. Only what cannot be the same in a test is
replaced: the installed binary becomes this checkout's, ``%S`` and ``%d`` become folders of
the host, and the env file's URLs point at the test's services.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from deploy.cluster.network import UNIT_PORT, Host
from tests.support.cli import AUTHSERVER, CLI_TIMEOUT_SECONDS
from tests.support.server import Server

DEPLOY = Path(__file__).resolve().parents[1]
UNIT = DEPLOY / "authserver.service"
ENV_FILE = DEPLOY / "authserver.env"
#: Where the unit expects authserver installed (the test runs this checkout's instead).
UNIT_BINARY = "/opt/authserver/bin/authserver"
#: The env file's settings the test must change: where its services are. Each must be in
#: the file, so the file cannot drop one without the test noticing.
LOCATION_SETTINGS = (
    "AUTHSERVER_ISSUER",
    "AUTHSERVER_DATABASE_URL",
    "AUTHSERVER_RATELIMIT_STORAGE_URL",
    "AUTHSERVER_TRUSTED_PROXIES",
)
#: Key timings short enough for a rotation to happen within the test, in the same relation
#: as the file's (the new key is published for longer than resource servers cache the JWKS,
#: plus the 2 s every instance takes to see it).
TEST_TIMINGS = {"AUTHSERVER_JWKS_MAX_AGE": "2", "AUTHSERVER_KEY_PROPAGATION_DELAY": "6"}
#: The unit starts one worker per CPU; the test's three hosts share this machine's CPUs.
WORKERS = "2"


@dataclass(frozen=True)
class Unit:
    """The ``[Service]`` lines of the unit that say how an instance starts."""

    exec_start_pre: tuple[str, ...]
    exec_start: str
    environment: tuple[str, ...]
    environment_file: str
    credentials: tuple[str, ...]
    working_directory: str

    @classmethod
    def read(cls, path: Path = UNIT) -> Unit:
        lines: dict[str, list[str]] = {}
        section = ""
        for raw in path.read_text().splitlines():
            line = raw.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("["):
                section = line
            elif section == "[Service]":
                key, _, value = line.partition("=")
                lines.setdefault(key, []).append(value)
        (exec_start,) = lines["ExecStart"]
        (environment_file,) = lines["EnvironmentFile"]
        (working_directory,) = lines["WorkingDirectory"]
        return cls(
            tuple(lines.get("ExecStartPre", [])),
            exec_start,
            tuple(lines.get("Environment", [])),
            environment_file,
            tuple(lines.get("LoadCredential", [])),
            working_directory,
        )


def read_env_file(path: Path = ENV_FILE) -> dict[str, str]:
    """``KEY=VALUE`` lines as systemd's ``EnvironmentFile=`` reads them (no quoting is used)."""
    values = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith(("#", ";")):
            key, _, value = line.partition("=")
            values[key] = value
    return values


@dataclass(frozen=True)
class HostFiles:
    """One host's own folders: what systemd would make for the unit there."""

    root: Path

    @property
    def state(self) -> Path:  # %S
        return self.root / "state"

    @property
    def credentials(self) -> Path:  # %d
        return self.root / "credentials"

    @property
    def keys(self) -> Path:
        """The default keys folder under the unit's working directory: made empty, and
        still empty at the end (the database key store writes no file)."""
        return self.root / "state" / "authserver" / "keys"

    def make(self, passphrase: str, unit: Unit) -> None:
        (self.state / "authserver").mkdir(parents=True)
        self.keys.mkdir(mode=0o700)
        self.credentials.mkdir(mode=0o700)
        for credential in unit.credentials:
            name, _, _source = credential.partition(":")
            target = self.credentials / name
            target.write_text(passphrase + "\n")
            target.chmod(0o400)


class Instance:
    """One host's authserver: the unit's commands and environment, on that host."""

    def __init__(
        self, host: Host, files: HostFiles, unit: Unit, settings: Mapping[str, str]
    ) -> None:
        self.host = host
        self.files = files
        self.unit = unit
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSERVER_")}
        self.env.update(settings)
        for assignment in unit.environment:
            key, _, value = self._expand(assignment).partition("=")
            self.env[key] = value
        self.server: Server | None = None

    def _expand(self, text: str) -> str:
        return (
            text.replace("%S", str(self.files.state))
            .replace("%d", str(self.files.credentials))
            .replace(UNIT_BINARY, str(AUTHSERVER))
        )

    def argv(self, command: str) -> list[str]:
        argv = shlex.split(self._expand(command))
        if argv[1] == "serve":
            if self.host.namespace is None:  # loopback hosts share one port space
                argv[argv.index("--host") + 1] = self.host.address
                argv[argv.index("--port") + 1] = str(self.host.port)
            else:
                assert argv[argv.index("--port") + 1] == str(UNIT_PORT)
            argv += ["--workers", WORKERS]
        return self.host.command(argv)

    @property
    def cwd(self) -> str:
        return self._expand(self.unit.working_directory)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``authserver *args`` on this host, as an admin would run it there."""
        return subprocess.run(
            self.host.command([str(AUTHSERVER), *args]),
            env=self.env,
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_SECONDS,
            check=False,
        )

    def start_pre(self) -> list[subprocess.Popen[str]]:
        return [
            subprocess.Popen(
                self.argv(command),
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for command in self.unit.exec_start_pre
        ]

    def start(self) -> Server:
        log = self.files.root / "serve.log"
        handle = log.open("wb")
        process = subprocess.Popen(
            self.argv(self.unit.exec_start),
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=handle,
            start_new_session=True,
        )
        self.server = Server(process, self.host.port, self.env, log, handle, self.host.address)
        return self.server

    def kill_hard(self) -> None:
        """SIGKILL the master and every worker at once: the host is gone."""
        assert self.server is not None
        os.killpg(self.server.process.pid, signal.SIGKILL)

    def stop(self) -> None:
        if self.server is not None:
            self.server.kill()
            self.server = None


def cluster_settings(issuer: str, database_url: str, redis_url: str, proxy: str) -> dict[str, str]:
    """The env file's settings with the test's locations and key timings."""
    settings = read_env_file()
    missing = [name for name in (*LOCATION_SETTINGS, *TEST_TIMINGS) if name not in settings]
    if missing:
        raise RuntimeError(f"deploy/authserver.env no longer sets {', '.join(missing)}")
    settings.update(
        AUTHSERVER_ISSUER=issuer,
        AUTHSERVER_DATABASE_URL=database_url,
        AUTHSERVER_RATELIMIT_STORAGE_URL=redis_url,
        AUTHSERVER_TRUSTED_PROXIES=proxy,
        **TEST_TIMINGS,
    )
    return settings
