"""The NAT testbed's fourth home, behind a symmetric-like NAT (issue 27, item 6).

`tests/e2e/nat_testbed.py` builds it with `topology(symmetric_home=True)`: router
r4 masquerades with `--random-fully`, a fresh random public port for every
connection out. Asserted here:

- the mappings are what the testbed's doc claims, seen from a probe server in
  the public namespace: from one source port, a cone home (2) shows the same
  public port - its own - to every destination, the symmetric home (4) a
  different port to each; and a cone home is *port-restricted*: while it holds
  a connection to the public host, a dial from that same host's other port to
  the mapped address and port does not get in;
- a simultaneous open (`node.net.punch`) between a cone home and the
  symmetric one fails, while one between two cone homes, run alongside,
  succeeds: each side aims at the port the other's NAT does not map. Hole
  punching is expected to fail through such a NAT; that member stays relayed;
- with real daemons, the symmetric home's member converges through circuits
  (relayed by the public member), its verdict is "behind NAT; reached through
  N relays", and no member's verdict flaps.

Needs root, iproute2 and iptables; skipped with the reason otherwise.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.nat_testbed import (
    PORT,
    PUBLIC,
    SYMMETRIC_MEMBER,
    nat_unavailable,
    open_testbed,
    topology,
    wait,
)

pytestmark = pytest.mark.slow
SKIP = nat_unavailable()
PROBE_PORTS = (7501, 7502, 7503)  # three destinations on the public host
ROUTERS = {"h1a": "203.0.113.11", "h2": "203.0.113.12", "h3": "203.0.113.13", "h4": "203.0.113.14"}

# In the public namespace: answer each connection with the address it came from.
_PROBE_SERVER = """
import socket, sys, threading, time
def serve(server):
    while True:
        conn, (host, port) = server.accept()
        conn.sendall(f"{host}:{port}\\n".encode())
        held.append(conn)
held = []
for port in map(int, sys.argv[1:]):
    threading.Thread(target=serve, args=(socket.create_server(("0.0.0.0", port)),),
                     daemon=True).start()
print("ready", flush=True)
time.sleep(120)
"""

# In a home member's namespace: listen on PORT (as a daemon does) and connect from
# it to each probe port; print what each destination observed, then hold the
# connections (and so the NAT's conntrack entries) until stdin closes.
_OBSERVED = """
import json, socket, sys
def reusable():
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("0.0.0.0", int(sys.argv[1])))
    return sock
listener = reusable()
listener.listen()
held, seen = [], []
for port in map(int, sys.argv[3:]):
    sock = reusable()
    sock.settimeout(5)
    sock.connect((sys.argv[2], port))
    seen.append(sock.makefile().readline().strip())
    held.append(sock)
print(json.dumps(seen), flush=True)
sys.stdin.readline()
"""

# In the public namespace: dial `host:port` from a port of our choosing.
_DIAL = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
except OSError as error:
    print(type(error).__name__)
else:
    print("connected")
"""

# `node.net.punch` in a home member's namespace, as in test_nat_testbed.py, but
# saying "failed" when no attempt connected.
_PUNCH = """
import sys, time, trio
from node.net.punch import PunchFailedError, open_punchable_listener, simultaneous_open
async def main(host, start):
    listener = await open_punchable_listener("0.0.0.0", 7400)
    at = trio.current_time() + max(0.0, start - time.time())
    try:
        stream = await simultaneous_open(7400, (host, 7400), start_at=at)
    except PunchFailedError as error:
        print("failed", error)
    else:
        await stream.send_all(b"ping")
        assert await stream.receive_some(4) == b"ping"
        print("direct", stream.socket.getpeername()[0])
    await listener.aclose()
trio.run(main, sys.argv[1], float(sys.argv[2]))
"""


def _python(namespace: str, script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["ip", "netns", "exec", namespace, sys.executable, "-c", script, *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _observed_ports(names: dict[str, str], member: str) -> tuple[list[int], str]:
    """The public ports the probe server saw `member`'s connections from (all from
    PORT), and what a dial from the public host's other port to the mapped address
    met meanwhile."""
    client = _python(names[member], _OBSERVED, str(PORT), PUBLIC, *map(str, PROBE_PORTS))
    try:
        assert client.stdout is not None
        line = client.stdout.readline()
        assert line, client.communicate(timeout=10)
        seen = [address.rsplit(":", 1) for address in json.loads(line)]
        assert {host for host, _ in seen} == {ROUTERS[member]}, seen  # masqueraded
        ports = [int(port) for _, port in seen]
        # The first connection's mapping is ROUTERS[member]:ports[0], held open to
        # PUBLIC:7501. A SYN to it from PUBLIC's ephemeral port is not that connection's.
        dial = subprocess.run(
            ["ip", "netns", "exec", names["pub"], sys.executable, "-c", _DIAL,
             ROUTERS[member], str(ports[0])],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        return ports, dial.stdout.strip()
    finally:
        client.communicate(input="\n", timeout=10)


@pytest.mark.skipif(SKIP is not None, reason=SKIP or "")
def test_cone_home_keeps_one_port_for_every_destination_symmetric_home_does_not() -> None:
    with topology(symmetric_home=True) as names:
        server = _python(names["pub"], _PROBE_SERVER, *map(str, PROBE_PORTS))
        try:
            assert server.stdout is not None
            assert server.stdout.readline().strip() == "ready"
            cone, cone_dial = _observed_ports(names, "h2")
            symmetric, symmetric_dial = _observed_ports(names, SYMMETRIC_MEMBER)
        finally:
            server.kill()
            server.communicate(timeout=10)
    # Endpoint-independent mapping, the source port kept: every destination sees PORT.
    assert cone == [PORT] * len(PROBE_PORTS), cone
    # Endpoint-dependent: each destination sees its own random port (three equal
    # by chance: about 1 in 4e9).
    assert len(set(symmetric)) > 1, symmetric
    # Port-restricted filtering: the mapping exists, but only its remote's own
    # address and port get in; the other port of that same host is dropped.
    assert cone_dial == "TimeoutError", cone_dial
    assert symmetric_dial == "TimeoutError", symmetric_dial


@pytest.mark.skipif(SKIP is not None, reason=SKIP or "")
def test_a_simultaneous_open_with_the_symmetric_home_fails_between_cones_it_succeeds() -> None:
    """h2 aims at h4's router port PORT, which r4 never maps (h4's SYN left from a
    random port); h4's SYN reaches r2 from a port r2's conntrack does not expect.
    Both drop. h1a and h3 punch at the same moment, as a control."""
    with topology(symmetric_home=True) as names:
        start = str(time.time() + 2.0)
        pairs = (("h2", "h4"), ("h4", "h2"), ("h1a", "h3"), ("h3", "h1a"))
        runs = {m: _python(names[m], _PUNCH, ROUTERS[other], start) for m, other in pairs}
        said = {m: p.communicate(timeout=60) for m, p in runs.items()}
    assert said["h2"][0].startswith("failed"), said
    assert said["h4"][0].startswith("failed"), said
    assert said["h1a"][0].strip() == f"direct {ROUTERS['h3']}", said
    assert said["h3"][0].strip() == f"direct {ROUTERS['h1a']}", said


@pytest.mark.skipif(SKIP is not None, reason=SKIP or "")
def test_the_symmetric_home_converges_through_circuits_and_is_behind_nat(
    tmp_path: Path,
) -> None:
    with open_testbed(tmp_path, symmetric_home=True) as bed:
        members = bed.members
        for member in members:  # relay policy = trust: everyone vouches for everyone
            for other in members:
                if other != member:
                    bed.trust(member, other)
        total = len(members) * (len(members) - 1)
        assert wait(lambda: all(bed.count(m) == total for m in members), 40), "no first sync"

        # Nobody can dial h4 (nor h2, h3): a session between them is a circuit.
        homes = [m for m in members if m != "pub"]
        others = {bed.ids[m] for m in homes if m != SYMMETRIC_MEMBER}
        assert wait(lambda: others <= bed.peers(SYMMETRIC_MEMBER), 60), {
            m: len(bed.peers(m)) for m in homes
        }

        bed.trust(SYMMETRIC_MEMBER, "h3", context="probe")  # from home 4: all within 10 s
        took = wait(lambda: all(bed.count(m) == total + 1 for m in members), 10, poll_s=0.1)
        assert took is not None, {m: bed.count(m) for m in members}

        words: dict[str, str] = {}

        def verdicts() -> bool:
            words.update({m: bed.status(m)["reachability"] for m in members})
            return words["pub"] == f"reachable at {PUBLIC}:{PORT}" and all(
                words[m].startswith("behind NAT;") for m in homes
            )

        assert wait(verdicts, 45, poll_s=1.0), words
        assert words[SYMMETRIC_MEMBER].startswith("behind NAT; reached through "), words
        time.sleep(10)  # a further round of checks: the verdicts hold
        after = {m: bed.status(m)["reachability"] for m in members}
        flaps = {m: bed.metric(m, "reachability_flaps") for m in members}
    assert {m: after[m].split(";")[0] for m in members} == {
        m: words[m].split(";")[0] for m in members
    }, (words, after)
    assert set(flaps.values()) == {0.0}, flaps
