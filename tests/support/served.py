"""A real ``authserver serve`` whose issuer is its own URL, with clients registered by the CLI:
what the client helpers and the examples are tested against."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.cli import ok, ok_json, sqlite_env
from tests.support.cli_in_process import run_in_process
from tests.support.server import Server, Servers


@dataclass(frozen=True)
class ServedAuthServer:
    server: Server

    @property
    def issuer(self) -> str:
        return self.server.url

    @property
    def token_url(self) -> str:
        return f"{self.server.url}/oauth2/token"

    def create_client(self, *args: str) -> dict[str, Any]:
        """``authserver clients create --json ARGS`` (default ``--name test --scope api``),
        run in process; the client object with its one-time ``client_secret``."""
        arguments = args or ("--name", "test", "--scope", "api")
        created: dict[str, Any] = ok_json(
            run_in_process(self.server.env, "clients", "create", "--json", *arguments)
        )
        return created


@contextmanager
def served_auth_server(
    directory: Path, *, workers: int = 1, **settings: str
) -> Iterator[ServedAuthServer]:
    """``settings``: more ``AUTHSERVER_*`` variables for the server and its CLI."""
    env = sqlite_env(directory, **settings)
    ok(run_in_process(env, "db", "upgrade"))
    with Servers(directory) as servers:
        yield ServedAuthServer(servers.start(env, workers=workers))
