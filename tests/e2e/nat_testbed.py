"""A NAT testbed in network namespaces: one public member, three homes behind NAT routers.

```
                 WAN switch (bridge, 203.0.113.0/24)
      ┌──────────────┬───────────────┬───────────────┐
     pub .10       r1 .11          r2 .12          r3 .13     routers: MASQUERADE out of
                    │ 192.168.1.1    │ 192.168.2.1    │ 192.168.3.1   the WAN side, no NEW
              ┌─────┴─────┐          │                │               connection in
            h1a .2      h1b .3      h2 .2           h3 .2
```

Each member is a real daemon in its own namespace, its API on that namespace's
loopback. A router is a namespace with IP forwarding, `iptables -t nat -A
POSTROUTING -o <wan> -j MASQUERADE` and a FORWARD rule dropping connections
that start on the WAN side: a home member can dial out, nobody can dial in (no
port forwarding), as behind a home router. Home 1 is a LAN (a bridge in its
router) with two members. Linux MASQUERADE keeps the source port when it is
free and keeps a mapping per connection (conntrack): an endpoint-independent,
cone-like mapping for TCP in practice.

In RFC 4787's terms homes 1-3 are *port-restricted cones*: the mapping is
endpoint-independent (one public port for every destination, the source port
kept) and the filtering address-and-port-dependent (conntrack lets in only
packets of a connection we started, from that exact remote address and port).

`topology(symmetric_home=True)` adds home 4 (router r4 .14, member h4
192.168.4.2) whose router masquerades with `--random-fully`: every connection
out gets a fresh random public port, whatever its source port - an
endpoint-dependent, *symmetric-like* mapping. The port a peer observes h4 at
says nothing about the port the next peer will see, so a hole punch towards
h4 aims at a port that is not mapped: its member stays relayed.

Used by `tests/e2e/test_nat_testbed.py` and `benchmarks/nat.py`. Needs root,
iproute2 and iptables (`nat_unavailable` says why not).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from node.api.access import read_token
from tests.e2e.test_daemon import COMMAND
from tests.e2e.test_multihost import SKIP as NAMESPACE_SKIP

__all__ = [
    "HOMES",
    "MEMBERS",
    "PORT",
    "PUBLIC",
    "SYMMETRIC_HOME",
    "SYMMETRIC_MEMBER",
    "NatBed",
    "bed_members",
    "nat_unavailable",
    "open_testbed",
    "topology",
    "wait",
]

PORT = 7400
API = "127.0.0.1:7401"
PUBLIC = "203.0.113.10"
# member -> (home number or 0 for the public segment, address)
MEMBERS = {
    "pub": (0, PUBLIC),
    "h1a": (1, "192.168.1.2"),
    "h1b": (1, "192.168.1.3"),
    "h2": (2, "192.168.2.2"),
    "h3": (3, "192.168.3.2"),
}
HOMES = (1, 2, 3)
SYMMETRIC_HOME = 4  # optional: behind a symmetric-like NAT (`topology(symmetric_home=True)`)
SYMMETRIC_MEMBER = "h4"
FEATURES = {
    "TRUSTNODE_NETWORK_LAN_DISCOVERY": "true",
    "TRUSTNODE_NETWORK_REACHABILITY_CHECKS": "true",
    "TRUSTNODE_NETWORK_CIRCUITS": "true",
    "TRUSTNODE_LOG_FORMAT": "json",
}


def bed_members(symmetric_home: bool = False) -> dict[str, tuple[int, str]]:
    """`MEMBERS`, and home 4's member when the symmetric-like home is built."""
    if not symmetric_home:
        return dict(MEMBERS)
    return MEMBERS | {SYMMETRIC_MEMBER: (SYMMETRIC_HOME, f"192.168.{SYMMETRIC_HOME}.2")}


def _masquerade(home: int) -> tuple[str, ...]:
    """The router's source NAT: keep the source port when free (cone-like), or a
    random port per connection for the symmetric-like home."""
    return ("-j", "MASQUERADE", *(("--random-fully",) if home == SYMMETRIC_HOME else ()))


def nat_unavailable() -> str | None:
    """Why the testbed cannot be built here, or None."""
    if NAMESPACE_SKIP is not None:
        return NAMESPACE_SKIP
    if shutil.which("iptables") is None:
        return "iptables is not installed (apt-get install -y iptables)"
    return None


def _run(*argv: str) -> None:
    subprocess.run(list(argv), check=True, capture_output=True, timeout=30)


def _ip(*args: str) -> None:
    _run("ip", *args)


def _in_ns(ns: str, *argv: str) -> None:
    _run("ip", "netns", "exec", ns, *argv)


@contextmanager
def topology(*, symmetric_home: bool = False) -> Iterator[dict[str, str]]:
    """Build the namespaces; yields member (and router) name -> namespace name.

    `symmetric_home` adds home 4, behind a symmetric-like NAT (the module's doc)."""
    tag = f"{os.getpid() % 10000}"
    switch = f"tn{tag}wan"
    members = bed_members(symmetric_home)
    homes = (*HOMES, SYMMETRIC_HOME) if symmetric_home else HOMES
    names = {m: f"tn{tag}{m}" for m in members} | {f"r{h}": f"tn{tag}r{h}" for h in homes}
    try:
        _ip("netns", "add", switch)
        _ip("-n", switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", switch, "link", "set", "br0", "up")
        for name in names.values():
            _ip("netns", "add", name)
            _ip("-n", name, "link", "set", "lo", "up")

        def wire(ns: str, inside: str, bridge_ns: str, outside: str, bridge: str) -> None:
            made = f"i{outside}"  # made in our namespace, where `inside` may exist already
            _ip("link", "add", made, "type", "veth", "peer", "name", outside)
            _ip("link", "set", made, "netns", ns)
            _ip("-n", ns, "link", "set", made, "name", inside)
            _ip("link", "set", outside, "netns", bridge_ns)
            _ip("-n", bridge_ns, "link", "set", outside, "master", bridge, "up")
            _ip("-n", ns, "link", "set", inside, "up")

        wire(names["pub"], "wan0", switch, f"w{tag}pub", "br0")
        _ip("-n", names["pub"], "addr", "add", f"{PUBLIC}/24", "dev", "wan0")
        # A public host has a default route (LAN discovery's multicast needs one).
        _ip("-n", names["pub"], "route", "add", "default", "dev", "wan0")
        for home in homes:
            router = names[f"r{home}"]
            wire(router, "wan0", switch, f"w{tag}r{home}", "br0")
            _ip("-n", router, "addr", "add", f"203.0.113.{10 + home}/24", "dev", "wan0")
            _ip("-n", router, "link", "add", "lan0", "type", "bridge", "mcast_snooping", "0")
            _ip("-n", router, "addr", "add", f"192.168.{home}.1/24", "dev", "lan0")
            _ip("-n", router, "link", "set", "lan0", "up")
            _in_ns(router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
            _in_ns(router, "iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "wan0",
                   *_masquerade(home))  # fmt: skip
            for chain in ("FORWARD", "INPUT"):  # unsolicited: dropped, not answered (stealth)
                _in_ns(router, "iptables", "-A", chain, "-i", "wan0", "-m", "conntrack",
                       "--ctstate", "NEW", "-j", "DROP")  # fmt: skip
        for member, (home, address) in members.items():
            if home == 0:
                continue
            ns = names[member]
            wire(ns, "eth0", names[f"r{home}"], f"l{tag}{member}", "lan0")
            _ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
            _ip("-n", ns, "route", "add", "default", "via", f"192.168.{home}.1")
        yield names
    finally:
        for name in [*names.values(), switch]:
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


@dataclass
class NatBed:
    """The running members: their namespaces, data folders and daemons."""

    names: dict[str, str]
    folders: dict[str, Path]
    community: tuple[str, str]
    daemons: dict[str, subprocess.Popen[str]] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)

    @property
    def members(self) -> tuple[str, ...]:
        """The testbed's members, the public one first (h4 too in a symmetric testbed)."""
        return tuple(self.folders)

    def api(self, member: str, method: str, path: str, body: Any = None) -> Any:
        """One API call inside the member's namespace (curl: no interpreter start-up)."""
        token = read_token(self.folders[member])
        argv = ["ip", "netns", "exec", self.names[member], "curl", "-sS", "--fail-with-body",
                "--max-time", "20", "-X", method,
                "-H", f"Authorization: Bearer {token}"]  # fmt: skip
        if body is not None:
            argv += ["-H", "Content-Type: application/json", "--data", json.dumps(body)]
        done = subprocess.run([*argv, f"http://{API}{path}"], capture_output=True, text=True,
                              timeout=30, check=False)  # fmt: skip
        assert done.returncode == 0, (member, path, done.stdout, done.stderr)
        return done.stdout if path == "/metrics" else json.loads(done.stdout)

    def status(self, member: str) -> dict[str, Any]:
        result: dict[str, Any] = self.api(member, "GET", "/v1/status")
        return result

    def count(self, member: str) -> int:
        return int(self.status(member)["attestations"])

    def peers(self, member: str) -> set[str]:
        return {p["identity"] for p in self.api(member, "GET", "/v1/peers")}

    def metric(self, member: str, name: str) -> float:
        for line in self.api(member, "GET", "/metrics").splitlines():
            if line.startswith((f"trustnode_{name} ", f"trustnode_{name}_total ")):
                return float(line.split()[1])
        raise KeyError(name)

    def trust(self, member: str, subject: str, context: str = "general") -> None:
        self.api(member, "POST", "/v1/trust",
                 {"subject": self.ids[subject], "value": 70, "context": context})  # fmt: skip

    def init(self, member: str, *, bootstrap: str = f"{PUBLIC}:{PORT}") -> subprocess.Popen[str]:
        """`trustnode init` in the member's namespace; all but `pub` bootstrap from it."""
        community, key = self.community
        flags = [] if member == "pub" else [f"--bootstrap={bootstrap}"]
        return subprocess.Popen(
            ["ip", "netns", "exec", self.names[member], *COMMAND, "--data-dir",
             str(self.folders[member]), "init", "--community-id", community, "--community-key",
             key, "--listen", f"0.0.0.0:{PORT}", "--api-listen", API, *flags],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    def start(self, member: str, *, features: dict[str, str] = FEATURES) -> None:
        """Run the member's daemon with LAN discovery, dial-back and circuits on
        (or with the `TRUSTNODE_*` settings of `features`)."""
        process = subprocess.Popen(
            ["ip", "netns", "exec", self.names[member], *COMMAND, "--data-dir",
             str(self.folders[member]), "run"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **features},
        )  # fmt: skip
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("ready: "), (member, line, process.stderr and process.stderr.read())
        self.daemons[member] = process

    def cpu_s(self, member: str) -> float:
        """CPU seconds (user + system) the member's daemon used so far (`ip netns exec`
        execs the daemon: the Popen's pid is the daemon's)."""
        fields = Path(f"/proc/{self.daemons[member].pid}/stat").read_text().rsplit(")", 1)[1]
        utime, stime = fields.split()[11:13]
        return (int(utime) + int(stime)) / os.sysconf("SC_CLK_TCK")

    def stop(self, member: str) -> None:
        process = self.daemons.pop(member)
        process.send_signal(signal.SIGTERM)
        try:
            self.logs[member] = self.logs.get(member, "") + process.communicate(timeout=30)[1]
        except subprocess.TimeoutExpired:
            process.kill()
            self.logs[member] = self.logs.get(member, "") + process.communicate()[1]


@contextmanager
def open_testbed(root: Path, *, symmetric_home: bool = False) -> Iterator[NatBed]:
    """The topology with one initialised, running, identified daemon per member
    (`symmetric_home`: with home 4 and its member, `topology`'s)."""
    members = bed_members(symmetric_home)
    with topology(symmetric_home=symmetric_home) as names:
        bed = NatBed(names=names, folders={m: root / m for m in members},
                      community=(os.urandom(32).hex(), os.urandom(32).hex()))  # fmt: skip
        inits = {m: bed.init(m) for m in members}  # in parallel: the CLI starts slowly
        for member, process in inits.items():
            _, err = process.communicate(timeout=120)
            assert process.returncode == 0, (member, err)
        try:
            for member in members:
                bed.start(member)
            bed.ids = {m: bed.status(m)["identity"] for m in members}
            yield bed
        finally:
            for member in list(bed.daemons):
                bed.stop(member)


def wait(check: Callable[[], bool], timeout_s: float, poll_s: float = 0.25) -> float | None:
    """Seconds until `check()` held, or None if it did not within `timeout_s`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if check():
            return time.monotonic() - started
        time.sleep(poll_s)
    return None
