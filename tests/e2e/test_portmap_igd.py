"""`[network] port_mapping` against a real UPnP-IGD: miniupnpd on a router in a namespace.

```
       WAN switch (bridge, 198.20.0.0/24)
        ┌──────────────┐
      pub .10        r .11   MASQUERADE out, no NEW connection in - except what
                       │ 192.168.9.1          miniupnpd forwards (ctstate DNAT)
                     home .2
```

The router runs `miniupnpd` (the nftables build, Debian's `miniupnpd-nftables`)
as home routers run it, and forwards only what a client on its LAN asked for.
The WAN is 198.20.0.0/24, not the NAT testbed's 203.0.113.0/24: miniupnpd
refuses to forward on a reserved WAN address (documentation and benchmarking
blocks included, as it would behind a carrier's NAT), and these namespaces
route nowhere outside this test. Asserted, with real daemons:

- before the home member runs, its router drops a dial to 198.20.0.11:7400;
- the home member, with `port_mapping` and `reachability_checks` on, gets the
  router to forward 198.20.0.11:7400 to it, and the public member's dial-back
  reaches it there: its status is "reachable at 198.20.0.11:7400" - a verdict
  only a dial-back through the mapping can give (the probe checks the
  member's identity proof);
- when it stops, the mapping is deleted from the router.

Needs root, iproute2, iptables, nft, miniupnpd and miniupnpc; skipped with the
reason otherwise (`.ci/run` installs them).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.nat_testbed import PORT, NatBed, nat_unavailable, wait

pytestmark = pytest.mark.slow

PUBLIC = "198.20.0.10"
ROUTER = "198.20.0.11"
HOME = "192.168.9.2"
UUID = "8c2a5f0e-6b1d-4c7e-9a3f-2d5b7e1c9f04"


def _unavailable() -> str | None:
    if (reason := nat_unavailable()) is not None:
        return reason
    for tool, package in (("miniupnpd", "miniupnpd-nftables"), ("nft", "nftables")):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install -y {package})"
    if importlib.util.find_spec("miniupnpc") is None:
        return "miniupnpc is not installed (pip install 'trustnode[portmap]')"
    return None


SKIP = _unavailable()

# The tables miniupnpd fills (its nft_init.sh's, in one table of our own).
_NFT = """
table inet miniupnpd {
  chain forward { type filter hook forward priority 0; policy accept; jump miniupnpd; }
  chain miniupnpd { }
  chain prerouting { type nat hook prerouting priority -100; policy accept;
                     jump prerouting_miniupnpd; }
  chain postrouting { type nat hook postrouting priority 100; policy accept;
                      jump postrouting_miniupnpd; }
  chain prerouting_miniupnpd { }
  chain postrouting_miniupnpd { }
}
"""

_CONF = f"""
ext_ifname=wan0
listening_ip=lan0
http_port=0
enable_upnp=yes
enable_natpmp=no
secure_mode=yes
uuid={UUID}
upnp_table_name=miniupnpd
upnp_nat_table_name=miniupnpd
upnp_forward_chain=miniupnpd
upnp_nat_chain=prerouting_miniupnpd
upnp_nat_postrouting_chain=postrouting_miniupnpd
allow 1024-65535 192.168.9.0/24 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
"""

_DIAL = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
except OSError as error:
    print(type(error).__name__)
else:
    print("connected")
"""


def _run(*argv: str, stdin: str | None = None) -> str:
    done = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, timeout=30,
                          check=True)  # fmt: skip
    return done.stdout


@contextmanager
def _igd_topology(folder: Path) -> Iterator[dict[str, str]]:
    """The namespaces, with miniupnpd running on the router; yields name -> namespace."""
    tag = f"{os.getpid() % 10000}"
    switch, names = f"tu{tag}wan", {m: f"tu{tag}{m}" for m in ("pub", "r", "home")}
    igd: subprocess.Popen[str] | None = None
    try:
        _run("ip", "netns", "add", switch)
        _run("ip", "-n", switch, "link", "add", "br0", "type", "bridge")
        _run("ip", "-n", switch, "link", "set", "br0", "up")
        for ns in names.values():
            _run("ip", "netns", "add", ns)
            _run("ip", "-n", ns, "link", "set", "lo", "up")

        def wire(ns: str, inside: str, bridge_ns: str, outside: str, bridge: str) -> None:
            _run("ip", "link", "add", f"i{outside}", "type", "veth", "peer", "name", outside)
            _run("ip", "link", "set", f"i{outside}", "netns", ns)
            _run("ip", "-n", ns, "link", "set", f"i{outside}", "name", inside)
            _run("ip", "link", "set", outside, "netns", bridge_ns)
            _run("ip", "-n", bridge_ns, "link", "set", outside, "master", bridge, "up")
            _run("ip", "-n", ns, "link", "set", inside, "up")

        router = names["r"]
        wire(names["pub"], "wan0", switch, f"u{tag}p", "br0")
        _run("ip", "-n", names["pub"], "addr", "add", f"{PUBLIC}/24", "dev", "wan0")
        wire(router, "wan0", switch, f"u{tag}r", "br0")
        _run("ip", "-n", router, "addr", "add", f"{ROUTER}/24", "dev", "wan0")
        _run("ip", "-n", router, "link", "add", "lan0", "type", "bridge", "mcast_snooping", "0")
        _run("ip", "-n", router, "addr", "add", "192.168.9.1/24", "dev", "lan0")
        _run("ip", "-n", router, "link", "set", "lan0", "up")
        wire(names["home"], "eth0", router, f"u{tag}h", "lan0")
        _run("ip", "-n", names["home"], "addr", "add", f"{HOME}/24", "dev", "eth0")
        _run("ip", "-n", names["home"], "route", "add", "default", "via", "192.168.9.1")
        in_router = ("ip", "netns", "exec", router)
        _run(*in_router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        _run(*in_router, "iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "wan0",
             "-j", "MASQUERADE")  # fmt: skip
        # A forwarded port lets in what it forwards; anything else unsolicited is dropped.
        _run(*in_router, "iptables", "-A", "FORWARD", "-i", "wan0", "-m", "conntrack",
             "--ctstate", "DNAT", "-j", "ACCEPT")  # fmt: skip
        for chain in ("FORWARD", "INPUT"):
            _run(*in_router, "iptables", "-A", chain, "-i", "wan0", "-m", "conntrack",
                 "--ctstate", "NEW", "-j", "DROP")  # fmt: skip
        _run(*in_router, "nft", "-f", "-", stdin=_NFT)
        (folder / "miniupnpd.conf").write_text(_CONF)
        igd = subprocess.Popen(
            [*in_router, "miniupnpd", "-f", str(folder / "miniupnpd.conf"), "-d",
             "-P", str(folder / "miniupnpd.pid")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        assert igd.stdout is not None
        said: list[str] = []
        while not said or "HTTP listening" not in said[-1]:  # ready for SSDP and SOAP
            line = igd.stdout.readline()
            assert line, said
            said.append(line)
        yield names
    finally:
        if igd is not None:
            igd.terminate()
            igd.communicate(timeout=10)
        for ns in [*names.values(), switch]:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


def _forwarded(names: dict[str, str]) -> str:
    """The router's forwardings miniupnpd made (its nat chain's rules)."""
    return _run("ip", "netns", "exec", names["r"], "nft", "list", "chain", "inet", "miniupnpd",
                "prerouting_miniupnpd")  # fmt: skip


def _dial_from_public(names: dict[str, str]) -> str:
    return _run("ip", "netns", "exec", names["pub"], sys.executable, "-c", _DIAL, ROUTER,
                str(PORT)).strip()  # fmt: skip


@pytest.mark.skipif(SKIP is not None, reason=SKIP or "")
def test_a_home_member_maps_its_port_on_a_real_igd_and_is_then_reachable_there(
    tmp_path: Path,
) -> None:
    with _igd_topology(tmp_path) as names:
        assert _dial_from_public(names) == "TimeoutError"  # nothing forwarded yet
        bed = NatBed(names=names, folders={m: tmp_path / m for m in ("pub", "home")},
                     community=(os.urandom(32).hex(), os.urandom(32).hex()))  # fmt: skip
        inits = [bed.init("pub"), bed.init("home", bootstrap=f"{PUBLIC}:{PORT}")]
        for process in inits:
            _, err = process.communicate(timeout=120)
            assert process.returncode == 0, err
        checks = {"TRUSTNODE_NETWORK_REACHABILITY_CHECKS": "true",
                  "TRUSTNODE_LOG_FORMAT": "json"}  # fmt: skip
        try:
            bed.start("pub", features=checks)
            bed.start("home", features={**checks, "TRUSTNODE_NETWORK_PORT_MAPPING": "true"})
            words: list[str] = []

            def reachable() -> bool:
                words.append(bed.status("home")["reachability"])
                return words[-1] == f"reachable at {ROUTER}:{PORT}"

            assert wait(reachable, 60, poll_s=1.0), words[-3:]
            assert f"dnat ip to {HOME}:{PORT}" in _forwarded(names)
            assert bed.metric("home", "reachability_flaps") == 0.0
            bed.stop("home")
            assert f"dnat ip to {HOME}" not in _forwarded(names), bed.logs["home"][-2000:]
        finally:
            for member in list(bed.daemons):
                bed.stop(member)
    assert "port mapping" in bed.logs["home"], bed.logs["home"][-2000:]
