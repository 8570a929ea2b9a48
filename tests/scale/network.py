"""Hosts made of network namespaces on one private subnet, joined by a bridge.

Each host is a namespace with one veth link to a bridge in the root namespace, which
has an address of its own on the subnet: the test process reaches every host through
it, as an operator's machine on the same network would. Cutting a host pulls both
ends of its link down; nothing it sends or is sent arrives any more, and nothing
tells either side (no reset, no ICMP), as when a cable or a switch port dies.

Names carry the test's pid, so two runs side by side do not meet; ``close()`` removes
every namespace and link it made, also after a failure.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
from dataclasses import dataclass


def _ip(*args: str, netns: str | None = None) -> None:
    command = ["ip", *args] if netns is None else ["ip", "-n", netns, *args]
    subprocess.run(command, check=True, capture_output=True, text=True)


def _used_subnets() -> set[ipaddress.IPv4Network]:
    out = subprocess.run(
        ["ip", "-4", "-o", "addr", "show"], check=True, capture_output=True, text=True
    ).stdout
    return {
        ipaddress.ip_interface(word).network
        for line in out.splitlines()
        for word in line.split()[3:4]
    }


def free_subnet() -> ipaddress.IPv4Network:
    """Return a /24 of 10.77.0.0/16 that no interface on this machine uses."""
    used = _used_subnets()
    start = os.getpid() % 250
    for n in range(250):
        subnet = ipaddress.ip_network(f"10.77.{(start + n) % 250}.0/24")
        if not any(subnet.overlaps(other) for other in used):
            return subnet
    raise RuntimeError("no free /24 in 10.77.0.0/16")


@dataclass
class Host:
    name: str  # the host's own name: db, sink, host-1 ...
    netns: str
    address: str
    outer: str  # its link's end on the bridge, in the root namespace

    def command(self, *args: str) -> list[str]:
        """Return args as a command line that runs inside this host."""
        return ["ip", "netns", "exec", self.netns, *args]


class Network:
    """A bridge with hosts on it; the root namespace is one more host (.1)."""

    def __init__(self, prefix: str = "qs") -> None:
        self.tag = f"{prefix}{os.getpid()}"
        self.subnet = free_subnet()
        addresses = self.subnet.hosts()
        self.gateway = str(next(addresses))
        self._addresses = addresses
        self.bridge = f"{self.tag}br"
        self.hosts: dict[str, Host] = {}
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")

    def add_host(self, name: str) -> Host:
        n = len(self.hosts)
        netns = f"{self.tag}-{name}"
        host = Host(name, netns, str(next(self._addresses)), f"{self.tag}v{n}")
        inner = f"{self.tag}i{n}"
        _ip("netns", "add", netns)
        self.hosts[name] = host
        _ip("link", "add", host.outer, "type", "veth", "peer", "name", inner)
        _ip("link", "set", inner, "netns", netns)
        _ip("link", "set", host.outer, "master", self.bridge)
        _ip("link", "set", host.outer, "up")
        _ip("link", "set", "lo", "up", netns=netns)
        _ip("link", "set", inner, "name", "eth0", netns=netns)
        _ip("addr", "add", f"{host.address}/24", "dev", "eth0", netns=netns)
        _ip("link", "set", "eth0", "up", netns=netns)
        return host

    def cut(self, host: Host) -> None:
        """Pull both ends of the host's link down."""
        _ip("link", "set", host.outer, "down")
        _ip("link", "set", "eth0", "down", netns=host.netns)

    def close(self) -> None:
        """Remove every namespace and link this network made; errors are ignored."""
        for host in self.hosts.values():
            # Deleting the namespace deletes its veth end, and so the pair.
            subprocess.run(["ip", "netns", "del", host.netns], capture_output=True)
            subprocess.run(["ip", "link", "del", host.outer], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
        self.hosts.clear()
