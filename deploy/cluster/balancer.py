"""HAProxy from ``deploy/haproxy.cfg``, with the test's addresses, certificate and socket put
in the places the file marks, and a self-signed certificate for the issuer's address."""

from __future__ import annotations

import csv
import datetime
import ipaddress
import os
import pwd
import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from deploy.cluster.network import Host, free_port
from tests.support.waiting import wait_until

CONFIG = Path(__file__).resolve().parents[1] / "haproxy.cfg"
#: The example values of deploy/haproxy.cfg that the test replaces, each found exactly once.
EXAMPLE_BIND = "10.0.0.10:443"
EXAMPLE_CERTIFICATE = "/etc/haproxy/certs/authserver.pem"
EXAMPLE_STATS_SOCKET = "/run/haproxy/admin.sock"
EXAMPLE_SERVERS = ("10.0.0.11:8080", "10.0.0.12:8080", "10.0.0.13:8080")
#: Lines kept only where the Debian package made the account and the chroot folder.
PRIVILEGE_LINES = ("chroot /var/lib/haproxy", "user haproxy", "group haproxy")
CHROOT = Path("/var/lib/haproxy")
START_SECONDS = 15
STOP_SECONDS = 10


class ConfigDrift(RuntimeError):  # noqa: N818 - the name says what happened
    """deploy/haproxy.cfg no longer has a value the test replaces: the file and the test must
    change together, or the test would run a configuration nobody ships."""


def render(text: str, replacements: dict[str, str], drop: tuple[str, ...]) -> str:
    for example, actual in replacements.items():
        if text.count(example) != 1:
            raise ConfigDrift(f"deploy/haproxy.cfg: expected {example!r} exactly once")
        text = text.replace(example, actual)
    lines = text.splitlines(keepends=True)
    return "".join(line for line in lines if line.strip() not in drop)


def self_signed(address: str, path: Path) -> None:
    """A certificate (and its key, one PEM file as HAProxy's ``crt`` takes) for ``address``;
    the clients of the test trust exactly this certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "authserver cluster test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM) + key_pem)
    path.chmod(0o600)


@dataclass
class Balancer:
    process: subprocess.Popen[bytes]
    url: str
    certificate: Path
    stats_socket: Path
    log: Path
    notes: list[str]

    @classmethod
    def start(cls, address: str, hosts: list[Host], directory: Path) -> Balancer:
        port = free_port(address)
        pem = directory / "haproxy.pem"
        self_signed(address, pem)
        replacements = {
            EXAMPLE_BIND: f"{address}:{port}",
            EXAMPLE_CERTIFICATE: str(pem),
            EXAMPLE_STATS_SOCKET: str(directory / "haproxy.sock"),
        }
        for example, host in zip(EXAMPLE_SERVERS, hosts, strict=True):
            replacements[example] = f"{host.address}:{host.port}"
        notes = []
        drop: tuple[str, ...] = ()
        if not _privilege_drop_possible():
            drop = PRIVILEGE_LINES
            notes.append(
                "HAProxy runs without its chroot and account (not root, or no `haproxy` user)"
            )
        config = directory / "haproxy.cfg"
        config.write_text(render(CONFIG.read_text(), replacements, drop))
        haproxy = shutil.which("haproxy")
        if haproxy is None:
            raise RuntimeError("no haproxy on PATH: apt-get install haproxy (.ci/run does)")
        check = subprocess.run(
            [haproxy, "-c", "-q", "-f", str(config)], capture_output=True, text=True, timeout=30
        )
        if check.returncode != 0:
            raise RuntimeError(f"haproxy -c rejects deploy/haproxy.cfg:\n{check.stderr}")
        log = directory / "haproxy.log"
        with log.open("wb") as handle:
            process = subprocess.Popen(
                [haproxy, "-db", "-f", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=handle,
                start_new_session=True,
            )
        balancer = cls(
            process, f"https://{address}:{port}", pem, directory / "haproxy.sock", log, notes
        )
        wait_until(
            lambda: process.poll() is not None or balancer.stats_socket.exists(),
            START_SECONDS,
            "haproxy up",
        )
        if process.poll() is not None:
            raise RuntimeError(f"haproxy exited:\n{log.read_text()}")
        return balancer

    def server_states(self) -> dict[str, str]:
        """Each backend server's status as HAProxy sees it (``UP``, ``DOWN``, ...)."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(str(self.stats_socket))
            sock.sendall(b"show stat\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        text = b"".join(chunks).decode().lstrip("# ")
        return {
            row["svname"]: row["status"]
            for row in csv.DictReader(text.splitlines())
            if row["pxname"] == "authserver" and row["svname"] not in ("FRONTEND", "BACKEND")
        }

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def _privilege_drop_possible() -> bool:
    """Only root can chroot and change user, and only to an account and folder that exist."""
    if os.geteuid() != 0:
        return False
    try:
        pwd.getpwnam("haproxy")
    except KeyError:
        return False
    return CHROOT.is_dir()
