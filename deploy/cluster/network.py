"""The hosts of the cluster: three network namespaces on a bridge, or loopback addresses.

Each authserver instance gets a host of its own: with root and ``ip``, a network namespace
joined to a bridge in the root namespace by a veth pair, so an instance reaches PostgreSQL,
Redis and HAProxy only over the bridge, like a machine on a LAN. Without that permission,
the hosts are separate loopback addresses (127.0.0.11, ...) with ports of their own, and the
run says so.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from dataclasses import dataclass, field

#: The private network of the namespaces; the root namespace holds the first address.
SUBNET = "10.213.0.0/24"
BRIDGE_ADDRESS = "10.213.0.1"
PREFIX_LENGTH = 24
#: The port every instance listens on inside its own namespace (authserver.service's).
UNIT_PORT = 8080
IP_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class Host:
    """Where one instance runs: its name, its address and port, and its namespace (if any)."""

    name: str
    address: str
    port: int
    namespace: str | None

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` run on this host (inside its namespace when it has one)."""
        if self.namespace is None:
            return argv
        return ["ip", "netns", "exec", self.namespace, *argv]


@dataclass
class Network:
    """The hosts, and the address in the root namespace where the shared services listen."""

    gateway: str
    hosts: list[Host]
    description: str
    _teardown: list[list[str]] = field(default_factory=list, repr=False)

    @property
    def isolated(self) -> bool:
        return all(host.namespace is not None for host in self.hosts)

    def close(self) -> None:
        """Delete the namespaces and the bridge (the veth pairs go with their namespace)."""
        for argv in reversed(self._teardown):
            subprocess.run(argv, capture_output=True, timeout=IP_TIMEOUT_SECONDS, check=False)
        self._teardown.clear()


def build(count: int) -> Network:
    """Namespaces when this process may make them, loopback addresses otherwise."""
    why_not = _why_no_namespaces()
    if why_not is None:
        network = Network(BRIDGE_ADDRESS, [], f"{count} network namespaces on a bridge ({SUBNET})")
        try:
            _make_namespaces(network, count)
        except subprocess.CalledProcessError as exc:
            network.close()
            why_not = f"`{' '.join(exc.cmd)}` failed: {exc.stderr.strip()}"
        else:
            return network
    hosts = [
        Host(f"host{i}", f"127.0.0.{10 + i}", free_port(f"127.0.0.{10 + i}"), None)
        for i in range(1, count + 1)
    ]
    return Network(
        "127.0.0.1",
        hosts,
        f"NO network namespaces ({why_not}): {count} loopback addresses with ports of their own",
    )


def _why_no_namespaces() -> str | None:
    if os.geteuid() != 0:
        return "not root"
    if shutil.which("ip") is None:
        return "no `ip` command"
    return None


class AddressTaken(RuntimeError):  # noqa: N818 - the name says what happened
    """The bridge address is already on an interface (a run killed before its clean-up?)."""


def _make_namespaces(network: Network, count: int) -> None:
    taken = subprocess.run(
        ["ip", "-o", "addr", "show", "to", f"{BRIDGE_ADDRESS}/32"],
        capture_output=True,
        text=True,
        timeout=IP_TIMEOUT_SECONDS,
        check=True,
    ).stdout.split()
    if taken:
        device = taken[1]
        raise AddressTaken(
            f"{BRIDGE_ADDRESS} is already on {device} (left by a killed run? "
            f"`ip link del {device}` and `ip netns list`)"
        )
    tag = f"asc{os.getpid() % 100_000}"
    bridge = f"{tag}br"
    _ip(network, ["link", "add", bridge, "type", "bridge"], ["link", "del", bridge])
    _ip(network, ["addr", "add", f"{BRIDGE_ADDRESS}/{PREFIX_LENGTH}", "dev", bridge])
    _ip(network, ["link", "set", bridge, "up"])
    for i in range(1, count + 1):
        namespace, outside, inside = f"{tag}-host{i}", f"{tag}v{i}", f"{tag}p{i}"
        address = f"10.213.0.{10 + i}"
        _ip(network, ["netns", "add", namespace], ["netns", "del", namespace])
        _ip(network, ["link", "add", outside, "type", "veth", "peer", "name", inside])
        _ip(network, ["link", "set", inside, "netns", namespace])
        _ip(network, ["link", "set", outside, "master", bridge])
        _ip(network, ["link", "set", outside, "up"])
        inside_ns = ["-n", namespace]
        _ip(network, [*inside_ns, "addr", "add", f"{address}/{PREFIX_LENGTH}", "dev", inside])
        _ip(network, [*inside_ns, "link", "set", inside, "up"])
        _ip(network, [*inside_ns, "link", "set", "lo", "up"])
        network.hosts.append(Host(f"host{i}", address, UNIT_PORT, namespace))


def _ip(network: Network, args: list[str], undo: list[str] | None = None) -> None:
    subprocess.run(
        ["ip", *args], capture_output=True, text=True, timeout=IP_TIMEOUT_SECONDS, check=True
    )
    if undo is not None:
        network._teardown.append(["ip", *undo])


def free_port(address: str) -> int:
    """A port nothing listens on at ``address`` now (the kernel's pick)."""
    with socket.socket() as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])
