"""The NAT testbed's figures (issue 27): convergence, relay cost, verdict stability.

Builds `tests/e2e/nat_testbed.py`'s namespaces (a public member, three homes
behind MASQUERADE routers, two members on home 1's LAN), runs real daemons
with LAN discovery, dial-back and circuits on, and prints:

- `first_sync_s`: from the trust mesh written (every member vouches for every
  other) to every member holding all of it;
- `relayed_mesh_s`: until the single members of homes 2 and 3 are in session
  with every other home member (relayed circuits through the public member);
- `convergence_s`: per probe attestation written in a home, until every member
  holds it (median and max; the issue's bar: 10 s);
- `relayed_per_payload_byte`: circuit bytes the public member forwarded during
  a bulk phase (`--bulk` attestations written in home 2), over the attestation
  bytes it received in that phase (each attestation's bytes once, as far as
  its own counter shows). The circuits carry the home-to-home gossip sessions'
  whole traffic (sketches, heads, framing, Noise), not just payload;
- `cpu_s_per_relayed_mb`: the public member's CPU seconds in the bulk phase per
  relayed MiB: an upper bound, since it also runs its own sessions with each home;
- `flaps`: reachability verdict changes over the run (the daemons' counters),
  and whether any member's words changed while watched for `--flap-seconds`
  seconds (60 by default; the issue's bar is 0 flaps over 600);
- with `--symmetric-home`, home 4 (member h4) behind a symmetric-like NAT
  (`--random-fully`) joins the trust mesh and every figure above, and
  `symmetric_home` says whether h4 ended in session with every other home
  member (circuits only: nobody dials into a home, and a hole punch towards h4
  cannot work);
- with `--punch`, a run of its own with `[network] punch` on (SPEC §15.4):
  `punch_attempts` and `punch_successes` per home member (rounds dialled,
  punches that went direct), `time_to_direct_s` per home pair (from the relayed
  mesh to the first punched session between the two homes, as watched, and as
  the daemon counts it from the relayed session's hello), then, with the public
  member stopped, `alone_convergence_s` per attestation made in a home (until
  every home member holds it) and `back_sync_s` once it returns.

Needs root, iproute2, iptables and curl. The machine's load moves the times;
run it on a quiet one. `python -m benchmarks.nat [--probes N] [--bulk N]
[--flap-seconds S] [--symmetric-home] [--punch] [--json]`.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.e2e.nat_testbed import (
    MEMBERS,
    SYMMETRIC_MEMBER,
    NatBed,
    nat_unavailable,
    open_testbed,
    wait,
)

HOME_MEMBERS = [m for m in MEMBERS if m != "pub"]


def _everyone_holds(bed: NatBed, count: int) -> bool:
    return all(bed.count(m) >= count for m in bed.members)


def _relayed_mesh(bed: NatBed) -> bool:
    return all({bed.ids[o] for o in HOME_MEMBERS if o != m} <= bed.peers(m) for m in ("h2", "h3"))


def _symmetric_home_linked(bed: NatBed) -> bool:
    """h4 (if built) is in session with every other home member."""
    others = {bed.ids[m] for m in bed.members if m not in ("pub", SYMMETRIC_MEMBER)}
    return SYMMETRIC_MEMBER not in bed.members or others <= bed.peers(SYMMETRIC_MEMBER)


def measure(bed: NatBed, *, probes: int, bulk: int, observe_s: float) -> dict[str, Any]:
    """Run the phases on a fresh testbed; the figures as a dict."""
    figures: dict[str, Any] = {}
    members = bed.members  # MEMBERS, and h4 in a testbed with the symmetric home
    for member in members:
        for other in members:
            if other != member:
                bed.trust(member, other)
    total = len(members) * (len(members) - 1)
    figures["first_sync_s"] = wait(lambda: _everyone_holds(bed, total), 60)
    figures["relayed_mesh_s"] = wait(lambda: _relayed_mesh(bed), 60)
    if SYMMETRIC_MEMBER in members:
        figures["symmetric_home_linked_s"] = wait(lambda: _symmetric_home_linked(bed), 60)

    rng = random.Random(27)
    times: list[float] = []
    homes = [m for m in members if m != "pub"]
    for probe in range(probes):
        issuer = rng.choice(homes)
        subject = rng.choice([m for m in members if m != issuer])
        bed.trust(issuer, subject, context=f"probe-{probe}")
        total += 1
        took = wait(functools.partial(_everyone_holds, bed, total), 30, poll_s=0.1)
        times.append(float("inf") if took is None else took)
    figures["convergence_s"] = {
        "median": statistics.median(times) if times else None,
        "max": max(times) if times else None,
        "probes": len(times),
        "over_10_s": sum(t > 10 for t in times),
    }

    relayed_before = bed.metric("pub", "circuit_relayed_bytes")
    payload_before = bed.metric("pub", "payload_received_bytes")
    cpu_before = bed.cpu_s("pub")
    for index in range(bulk):
        bed.trust("h2", rng.choice(["h1a", "h1b", "h3", "pub"]), context=f"bulk-{index}")
    total += bulk
    figures["bulk_sync_s"] = wait(lambda: _everyone_holds(bed, total), 60)
    time.sleep(2)  # the last sessions' closing chatter
    relayed = bed.metric("pub", "circuit_relayed_bytes") - relayed_before
    payload = bed.metric("pub", "payload_received_bytes") - payload_before
    cpu = bed.cpu_s("pub") - cpu_before
    figures["bulk"] = {"attestations": bulk, "relayed_bytes": relayed, "payload_bytes": payload}
    figures["relayed_per_payload_byte"] = relayed / payload if payload else None
    figures["cpu_s_per_relayed_mb"] = cpu / (relayed / 2**20) if relayed else None

    words = {m: bed.status(m)["reachability"] for m in members}
    changed: set[str] = set()
    deadline = time.monotonic() + observe_s
    while time.monotonic() < deadline:
        now = {m: bed.status(m)["reachability"] for m in members}
        changed |= {m for m in members if now[m] != words[m]}
        time.sleep(1)
    figures["reachability"] = words
    figures["flaps"] = {m: bed.metric(m, "reachability_flaps") for m in members}
    figures["words_changed_while_observed"] = sorted(changed)
    figures["observed_s"] = observe_s
    figures["punch"] = "off in this run (--punch measures it)"
    return figures


HOME_PAIRS = ((1, 2), (1, 3), (2, 3))
_TIME_TO_DIRECT = "trustnode_punch_time_to_direct_seconds{"


def _punched(bed: NatBed, member: str) -> dict[str, float]:
    """The member's running punched sessions: peer -> the daemon's time to direct."""
    found: dict[str, float] = {}
    for line in bed.api(member, "GET", "/metrics").splitlines():
        if line.startswith(_TIME_TO_DIRECT):
            labels, value = line[len(_TIME_TO_DIRECT) :].rsplit("} ", 1)
            found[labels.removeprefix('peer="').removesuffix('"')] = float(value)
    return found


def _direct_pairs(bed: NatBed) -> dict[tuple[int, int], float]:
    """Home pairs with a punched session between them: the daemon's time to direct."""
    home_of = {bed.ids[m]: home for m, (home, _) in MEMBERS.items()}
    pairs: dict[tuple[int, int], float] = {}
    for member in HOME_MEMBERS:
        for peer, took in _punched(bed, member).items():
            low, high = sorted((MEMBERS[member][0], home_of.get(peer, 0)))
            if (low, high) in HOME_PAIRS:
                pairs[(low, high)] = min(took, pairs.get((low, high), took))
    return pairs


def _home_members_hold(bed: NatBed, count: int) -> bool:
    return all(bed.count(m) >= count for m in HOME_MEMBERS)


def measure_punch(bed: NatBed, *, probes: int, watch_s: float = 60.0) -> dict[str, Any]:
    """Hole punching on the testbed (the daemons run with `[network] punch`)."""
    figures: dict[str, Any] = {}
    for member in MEMBERS:
        for other in MEMBERS:
            if other != member:
                bed.trust(member, other)
    total = len(MEMBERS) * (len(MEMBERS) - 1)
    figures["first_sync_s"] = wait(lambda: _everyone_holds(bed, total), 60)
    figures["mesh_s"] = wait(lambda: _relayed_mesh(bed), 60)  # relayed or punched already
    discovered = time.monotonic()
    seen: dict[tuple[int, int], float] = {}
    reported: dict[tuple[int, int], float] = {}
    while time.monotonic() - discovered < watch_s and len(seen) < len(HOME_PAIRS):
        for pair, took in _direct_pairs(bed).items():
            seen.setdefault(pair, round(time.monotonic() - discovered, 2))
            reported.setdefault(pair, round(took, 2))
        time.sleep(0.25)
    figures["time_to_direct_s"] = {
        f"home{a}-home{b}": {"watched": seen.get((a, b)), "daemon": reported.get((a, b))}
        for a, b in HOME_PAIRS
    }
    figures["direct_pairs"] = f"{len(seen)} of {len(HOME_PAIRS)} within {watch_s:g} s"
    figures["punch_attempts"] = {m: bed.metric(m, "punch_attempts") for m in HOME_MEMBERS}
    figures["punch_successes"] = {m: bed.metric(m, "punch_successes") for m in HOME_MEMBERS}
    figures["punched_sessions"] = {m: bed.metric(m, "punched_sessions") for m in HOME_MEMBERS}

    bed.stop("pub")
    rng = random.Random(15)
    times: list[float] = []
    for probe in range(probes):
        issuer = rng.choice(HOME_MEMBERS)
        subject = rng.choice([m for m in HOME_MEMBERS if m != issuer])
        bed.trust(issuer, subject, context=f"alone-{probe}")
        total += 1
        held = wait(functools.partial(_home_members_hold, bed, total), 30, poll_s=0.1)
        times.append(float("inf") if held is None else round(held, 2))
    figures["alone_convergence_s"] = {
        "each": times,
        "max": max(times) if times else None,
        "over_10_s": sum(t > 10 for t in times),
    }
    bed.start("pub")
    figures["back_sync_s"] = wait(lambda: _everyone_holds(bed, total), 60)
    figures["back_counts"] = {m: bed.count(m) for m in MEMBERS}
    figures["expected_count"] = total
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probes", type=int, default=5)
    parser.add_argument("--bulk", type=int, default=100)
    parser.add_argument(
        "--flap-seconds", "--observe", dest="flap_seconds", type=float, default=60.0,
        help="seconds to watch the reachability verdicts after the other phases (default 60)",
    )  # fmt: skip
    parser.add_argument(
        "--symmetric-home", action="store_true",
        help="add home 4, behind a symmetric-like NAT (MASQUERADE --random-fully)",
    )  # fmt: skip
    parser.add_argument(
        "--punch",
        action="store_true",
        help="measure hole punching instead (a run with [network] punch on)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    reason = nat_unavailable()
    if reason is not None:
        print(f"cannot build the NAT testbed here: {reason}", file=sys.stderr)
        return 2
    if args.punch:
        os.environ["TRUSTNODE_NETWORK_PUNCH"] = "true"  # the daemons inherit it
    with (
        tempfile.TemporaryDirectory() as root,
        open_testbed(Path(root), symmetric_home=args.symmetric_home) as bed,
    ):
        if args.punch:
            figures = measure_punch(bed, probes=args.probes)
        else:
            figures = measure(bed, probes=args.probes, bulk=args.bulk, observe_s=args.flap_seconds)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        for name, value in figures.items():
            print(f"{name}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
