"""Network namespaces for `mizzenctl up --capture iptables` (root only).

Each workload gets a namespace with a veth pair into one bridge, an address on the
bridge's subnet, its own /etc/hosts (mapping service names to their virtual IPs, as
cluster DNS would), and Istio's capture rules.  The control plane listens on the bridge's
address in the root namespace, reachable from every workload.
"""

from __future__ import annotations

import shutil
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path

from libs.capture import CaptureSettings, capture_rules

ETC_NETNS = Path("/etc/netns")


class NetnsError(RuntimeError):
    pass


def _run(*argv: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise NetnsError(f"{' '.join(argv)}: {result.stderr.strip() or result.stdout.strip()}")


def available() -> str | None:
    """None when namespaces can be used here, else why not."""
    import os

    if os.geteuid() != 0:
        return "needs root"
    for tool in ("ip", "iptables", "setpriv"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


@dataclass(frozen=True)
class Bridge:
    name: str
    address: str
    prefix: int = 16

    def create(self) -> None:
        self.delete()
        _run("ip", "link", "add", self.name, "type", "bridge")
        _run("ip", "addr", "add", f"{self.address}/{self.prefix}", "dev", self.name)
        _run("ip", "link", "set", self.name, "up")
        # With br_netfilter loaded (dockerd loads it, and sets FORWARD's policy to DROP),
        # traffic between two namespaces on this bridge passes the host's FORWARD chain:
        # let this bridge's own traffic through, and only its.
        for rule in self._forward_rules():
            _run("iptables", "-w", "-I", "FORWARD", *rule)

    def delete(self) -> None:
        for rule in self._forward_rules():
            # Until none is left: a mesh killed before it cleaned up may have left copies.
            while subprocess.run(["iptables", "-w", "-D", "FORWARD", *rule], capture_output=True,
                                 check=False).returncode == 0:
                pass
        subprocess.run(["ip", "link", "del", self.name], capture_output=True, check=False)

    def _forward_rules(self) -> list[list[str]]:
        return [["-i", self.name, "-j", "ACCEPT"], ["-o", self.name, "-j", "ACCEPT"]]


@dataclass(frozen=True)
class Namespace:
    name: str
    address: str
    bridge: Bridge

    @property
    def veth(self) -> str:
        # Interface names are at most 15 characters.
        return f"mz{zlib.crc32(self.name.encode()):08x}"

    def create(self, hosts: dict[str, str], capture: CaptureSettings | None) -> None:
        self.delete()
        _run("ip", "netns", "add", self.name)
        _run("ip", "link", "add", self.veth, "type", "veth", "peer", "name", "eth0", "netns", self.name)
        _run("ip", "link", "set", self.veth, "master", self.bridge.name)
        _run("ip", "link", "set", self.veth, "up")
        inside = ("ip", "netns", "exec", self.name)
        _run(*inside, "ip", "addr", "add", f"{self.address}/{self.bridge.prefix}", "dev", "eth0")
        _run(*inside, "ip", "link", "set", "eth0", "up")
        _run(*inside, "ip", "link", "set", "lo", "up")
        _run(*inside, "ip", "route", "add", "default", "via", self.bridge.address)
        etc = ETC_NETNS / self.name
        etc.mkdir(parents=True, exist_ok=True)
        lines = ["127.0.0.1 localhost", f"{self.address} {self.name}"]
        lines += [f"{address} {' '.join(sorted(set(names.split())))}" for names, address in hosts.items()]
        (etc / "hosts").write_text("\n".join(lines) + "\n")
        if capture is not None:
            for rule in capture_rules(capture):
                # `-w`: the xtables lock is shared by the host's namespaces; dockerd and
                # others take it, and a busy lock would fail the rule at once.
                _run(*inside, "iptables", "-w", *rule)

    def exec_prefix(self, *, as_uid: int | None = None) -> list[str]:
        prefix = ["ip", "netns", "exec", self.name]
        if as_uid is not None:
            prefix += ["setpriv", f"--reuid={as_uid}", f"--regid={as_uid}", "--clear-groups"]
        return prefix

    def delete(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, check=False)
        shutil.rmtree(ETC_NETNS / self.name, ignore_errors=True)


def existing(prefix: str) -> list[str]:
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    return [line.split()[0] for line in listing.splitlines() if line.startswith(prefix)]
