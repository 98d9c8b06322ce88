"""Cost of naming on a filled node: the first name lookup and the ones after it.

Builds a community of N members (default 10 000) in a fresh data directory:
every member publishes a profile, vouches for 3 others (one of those vouches
carries the name it knows the subject by), and the node's own member vouches
for 20 of them and gives 50 petnames. Then, on that open node, times:

* `first`: the first `Node.names([x])` after opening (reads the change feed
  once, scores the named members, builds the name book);
* `repeat`: median and p99 of 50 lookups with nothing new stored (the case
  every CLI table and API response hits);
* `after_change`: median of 10 lookups each right after one new attestation
  (the book must follow the store);
* `find`: median of 10 `Node.find` searches.

The machine this runs on may be shared: compare runs made side by side (for
example this script on two checkouts), not figures from different days.

Run from the repository root: `python -m benchmarks.names [--members N] [--json]`.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import trio

from node.home.config import NodeConfig
from node.service import open_node
from protocol.attestation import AttestationBody, sign_attestation
from protocol.identity import IdentityKey
from protocol.statement import Profile, Trust

T0 = 1_790_000_000_000  # a fixed wall clock: runs repeat


@dataclass(frozen=True)
class Figures:
    """What one run measured (milliseconds)."""

    members: int
    attestations: int
    first_ms: float
    repeat_median_ms: float
    repeat_p99_ms: float
    after_change_median_ms: float
    find_median_ms: float


def _community(members: int, seed: int) -> tuple[list[IdentityKey], list[bytes]]:
    rng = random.Random(seed)
    keys = [IdentityKey.from_seed(rng.randbytes(32)) for _ in range(members)]
    envelopes: list[bytes] = []
    for n, key in enumerate(keys):
        statements: list[Profile | Trust] = [Profile(subject=key.identity, name=f"Member {n}")]
        for k, other in enumerate(rng.sample(range(members), 4)):
            if other != n and len(statements) < 4:
                name = f"M{other} ({n})" if k == 0 else None
                statements.append(Trust(subject=keys[other].identity, value=60, name=name))
        for s in statements:
            body = AttestationBody(issuer=key.identity, issued_at_ms=T0, statement=s)
            envelopes.append(sign_attestation(body, key).data)
    return keys, envelopes


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


async def _measure(members: int, seed: int, folder: Path) -> Figures:
    keys, envelopes = _community(members, seed)
    config = NodeConfig(data_dir=folder / "node", community_id=bytes(32))
    async with open_node(config, network=False, wall_clock_ms=lambda: T0 + 1000) as node:
        for start in range(0, len(envelopes), 5000):
            await node.import_envelopes(envelopes[start : start + 5000])
        for key in keys[:20]:
            await node.trust(key.identity, 80)
        for n, key in enumerate(keys[:50]):
            await node.set_petname(key.identity, f"Neighbour {n}")
    # Reopened: the first lookup starts from nothing, as after a daemon's start.
    async with open_node(config, network=False, wall_clock_ms=lambda: T0 + 2000) as node:
        started = time.perf_counter()
        await node.names([keys[-1].identity])
        first = _ms(started)
        repeat = []
        for n in range(50):
            started = time.perf_counter()
            await node.names([keys[n * 7 % members].identity])
            repeat.append(_ms(started))
        after_change = []
        for n in range(10):
            await node.trust(keys[100 + n].identity, 40)
            started = time.perf_counter()
            await node.names([keys[100 + n].identity])
            after_change.append(_ms(started))
        finds = []
        for n in range(10):
            started = time.perf_counter()
            await node.find(f"member {n}")
            finds.append(_ms(started))
        return Figures(
            members=members,
            attestations=len(envelopes),
            first_ms=round(first, 1),
            repeat_median_ms=round(statistics.median(repeat), 2),
            repeat_p99_ms=round(sorted(repeat)[int(len(repeat) * 0.99) - 1], 2),
            after_change_median_ms=round(statistics.median(after_change), 2),
            find_median_ms=round(statistics.median(finds), 2),
        )


def main(argv: list[str] | None = None) -> int:
    """Measure and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        figures = trio.run(_measure, args.members, args.seed, Path(folder))
    if args.json:
        print(json.dumps(asdict(figures), indent=2))
    else:
        for key, value in asdict(figures).items():
            print(f"{key:>24}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
