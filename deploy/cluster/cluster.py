"""The whole cluster up and down: hosts, PostgreSQL, Redis, HAProxy and one instance per
host, each torn down in reverse order whatever happened (an error, Ctrl-C, SIGTERM)."""

from __future__ import annotations

import json
import secrets
import shutil
import ssl
import subprocess
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import requests

from authserver.resource import JWTVerifier
from authserver.wellknown import JWKS_PATH
from deploy.cluster import network
from deploy.cluster.balancer import Balancer
from deploy.cluster.instances import HostFiles, Instance, Unit, cluster_settings
from deploy.cluster.services import ClusterPostgres, ClusterRedis

HOSTS = 3
DATABASE = "authserver"
#: The resource server's unknown-kid refetch is pushed out of the test's reach, so only the
#: JWKS's Cache-Control keeps its keys fresh across a rotation.
NO_UNKNOWN_KID_REFETCH_SECONDS = 3600.0
HTTP_TIMEOUT_SECONDS = 10
#: Log lines left out when a failed run shows what the instances said.
ROUTINE_LOG_EVENTS = ('"event":"http.request"', '"event":"token.issued"')
LOG_LINES_SHOWN = 15


@dataclass
class Client:
    client_id: str
    secret: str

    @property
    def auth(self) -> tuple[str, str]:
        return (self.client_id, self.secret)


class Cluster:
    def __init__(self) -> None:
        self._stack = ExitStack()
        self.notes: list[str] = []

    def __enter__(self) -> Cluster:
        stack = self._stack
        try:
            self.workdir = Path(tempfile.mkdtemp(prefix="authserver-cluster-"))
            stack.callback(shutil.rmtree, self.workdir, ignore_errors=True)
            self.network = network.build(HOSTS)
            stack.callback(self.network.close)
            self.notes.append(f"hosts: {self.network.description}")
            self.postgres = ClusterPostgres.start()
            stack.callback(self.postgres.stop)
            self.postgres.create_database(DATABASE)
            self.redis = ClusterRedis.start(self.network.gateway)
            stack.callback(self.redis.stop)
            self.balancer = Balancer.start(self.network.gateway, self.network.hosts, self.workdir)
            stack.callback(self.balancer.stop)
            self.notes.extend(self.balancer.notes)
            settings = cluster_settings(
                issuer=self.balancer.url,
                database_url=self.postgres.url_at(self.network.gateway, DATABASE),
                redis_url=self.redis.url,
                proxy=self.network.gateway,
            )
            unit = Unit.read()
            passphrase = secrets.token_urlsafe(24)
            self.instances = []
            for host in self.network.hosts:
                files = HostFiles(self.workdir / host.name)
                files.make(passphrase, unit)
                instance = Instance(host, files, unit, settings)
                stack.callback(instance.stop)
                self.instances.append(instance)
            self.session = requests.Session()
            self.session.verify = str(self.balancer.certificate)
            # No REQUESTS_CA_BUNDLE (which would override ``verify``) nor proxy from the
            # environment: the test trusts its own certificate and talks to its own hosts.
            self.session.trust_env = False
            stack.callback(self.session.close)
            context = ssl.create_default_context(cafile=str(self.balancer.certificate))
            self.verifier = JWTVerifier(
                self.balancer.url,
                audience=self.balancer.url,
                refetch_interval=NO_UNKNOWN_KID_REFETCH_SECONDS,
                http_client=httpx.Client(verify=context, timeout=HTTP_TIMEOUT_SECONDS),
            )
            stack.callback(self.verifier.close)
        except BaseException:
            stack.close()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self._stack.close()

    @property
    def url(self) -> str:
        return self.balancer.url

    def register(self, name: str) -> Client:
        result = self.instances[0].run(
            "clients", "create", "--name", name, "--scope", "api", "--json"
        )
        if result.returncode != 0:
            raise RuntimeError(f"clients create: {result.stderr.strip()}")
        created = json.loads(result.stdout)
        return Client(created["client_id"], created["client_secret"])

    def token(self, client: Client, url: str | None = None) -> requests.Response:
        """A token request through the balancer (or straight to one instance's ``url``)."""
        return self.session.post(
            f"{url or self.url}/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=client.auth,
            timeout=HTTP_TIMEOUT_SECONDS,
        )

    def post(self, url: str, path: str, client: Client, **form: str) -> requests.Response:
        return self.session.post(
            f"{url}{path}", data=form, auth=client.auth, timeout=HTTP_TIMEOUT_SECONDS
        )

    def kids(self, instance: Instance) -> list[str]:
        """The key ids one instance publishes, asked directly (not through the balancer)."""
        response = self.session.get(f"{instance.host.url}{JWKS_PATH}", timeout=HTTP_TIMEOUT_SECONDS)
        response.raise_for_status()
        return sorted(key["kid"] for key in response.json()["keys"])

    def log_sizes(self) -> list[int]:
        """Where each instance's log ends now (see :meth:`longest_token_request`)."""
        return [_size(instance.files.root / "serve.log") for instance in self.instances]

    def longest_token_request(self, since: list[int]) -> float:
        """The longest any instance spent on one token request (its access log's
        ``duration_ms``, so without the time a request queued for a busy worker) in what the
        instances logged after ``since``."""
        longest = 0.0
        for instance, offset in zip(self.instances, since, strict=True):
            with (instance.files.root / "serve.log").open("rb") as log:
                log.seek(offset)
                for line in log:
                    if b'"event":"http.request"' in line and b'"/oauth2/token"' in line:
                        duration = json.loads(line).get("duration_ms", 0.0)
                        longest = max(longest, float(duration) / 1000)
        return longest

    def logs(self) -> str:
        """What the instances logged besides requests and issued tokens (the last lines)."""
        parts = []
        for instance in self.instances:
            log = instance.files.root / "serve.log"
            if log.exists():
                lines = [
                    line
                    for line in log.read_text(errors="replace").splitlines()
                    if not any(routine in line for routine in ROUTINE_LOG_EVENTS)
                ]
                parts += [f"--- {instance.host.name}", *lines[-LOG_LINES_SHOWN:]]
        return "\n".join(parts)


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def finished(processes: list[subprocess.Popen[str]]) -> list[subprocess.CompletedProcess[str]]:
    """Wait for processes started together; their results in the same order."""
    results = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=120)
        results.append(
            subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
        )
    return results
