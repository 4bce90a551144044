"""``authserver serve``: the production server (granian), with first-run set-up."""

from __future__ import annotations

import ipaddress
import os
import shlex
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click

from authserver.cli.context import app_context, current_settings
from authserver.config import PROMETHEUS_MULTIPROC_ENV, SHARED_COUNTERS_ENV, WORKER_LOADS_ENV
from authserver.extensions import db
from authserver.http import worker_loads
from authserver.http.routes import TOKEN
from authserver.json_logs import configure_json_logs
from authserver.schema import schema_behind
from authserver.security import shared_counters
from authserver.services import registry
from authserver.services.keys import ensure_signing_key, key_store


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes (default: the number of CPUs).",
)
def command(host: str, port: int, workers: int | None) -> None:
    """Serve the HTTP API."""
    settings = current_settings()
    with app_context() as app:
        # Refused here with one line, rather than with a failed query on the first request.
        behind = schema_behind(app)
        if behind is not None:
            raise click.ClickException(f"{behind}: run `authserver db upgrade` first")
        client_count = registry.count_clients(db.session())
    configure_json_logs("authserver.access")
    created = ensure_signing_key(settings)
    if created:
        click.echo(f"created signing key {created.kid} in {key_store(settings).location}", err=True)
    _check_port_free(host, port)
    base_url = f"http://{_display_host(host)}:{port}"
    if client_count == 0:
        _print_first_run_hint(base_url)
    click.echo(
        f"authserver serving on http://{_url_host(host)}:{port} (issuer {settings.issuer})",
        err=True,
    )
    with (
        _metrics_directory(),
        # One table of failure counters: the contract's limits count every failure of this
        # instance whichever worker saw it (security/shared_counters.py).
        _shared_file(SHARED_COUNTERS_ENV, "failures", shared_counters.create_file),
        # One table of the workers' loads: a queued worker sees an idle one (worker_loads.py).
        _shared_file(WORKER_LOADS_ENV, "loads", worker_loads.create_file),
    ):
        from authserver.cli import granian_app  # the HTTP server: only when serving

        granian_app.serve(host, port, workers or os.cpu_count() or 1)


@contextmanager
def _metrics_directory() -> Iterator[None]:
    """Give the workers a fresh folder to share Prometheus samples through, removed on exit.

    It must be in the environment before prometheus_client is first imported. An operator's
    own ``PROMETHEUS_MULTIPROC_DIR`` is used as it is.
    """
    if os.environ.get(PROMETHEUS_MULTIPROC_ENV):
        yield
        return
    directory = tempfile.mkdtemp(prefix="authserver-metrics-")
    os.environ[PROMETHEUS_MULTIPROC_ENV] = directory
    try:
        yield
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def _shared_file(variable: str, name: str, create: Callable[[str], None]) -> Iterator[None]:
    """A file every worker of this instance maps, made by ``create`` in a private folder for
    this instance, named to the workers in the environment ``variable``, removed on exit."""
    directory = tempfile.mkdtemp(prefix=f"authserver-{name}-")
    path = os.path.join(directory, name)
    create(path)
    os.environ[variable] = path
    try:
        yield
    finally:
        del os.environ[variable]
        shutil.rmtree(directory, ignore_errors=True)


def _check_port_free(host: str, port: int) -> None:
    """Fail with one line now rather than with the HTTP server's log noise."""
    family = socket.AF_INET6 if _is_ipv6(host) else socket.AF_INET
    try:
        with socket.create_server((host, port), family=family, reuse_port=False):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise click.ClickException(f"cannot listen on {_url_host(host)}:{port}: {reason}") from None


def _is_ipv6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False


def _url_host(host: str) -> str:
    """``host`` as a URL names it: an IPv6 address in brackets (RFC 3986 §3.2.2)."""
    return f"[{host}]" if _is_ipv6(host) else host


def _display_host(host: str) -> str:
    """Where a local client reaches a server listening on ``host``: loopback for a wildcard."""
    return _url_host({"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host))  # noqa: S104


def _command_name() -> str:
    if sys.argv and sys.argv[0].endswith("__main__.py"):
        return f"{shlex.quote(sys.executable)} -m authserver"
    return shlex.quote(sys.argv[0]) if sys.argv and sys.argv[0] else "authserver"


def _print_first_run_hint(base_url: str) -> None:
    command = _command_name()
    click.echo(
        "No clients are registered yet. Create one (the secret is shown once):\n"
        f"  {command} clients create --name demo --scope api --json\n"
        "then get a token with it:\n"
        "  curl -u CLIENT_ID:CLIENT_SECRET -d grant_type=client_credentials -d scope=api "
        f"{TOKEN.url(base_url)}",
        err=True,
    )
