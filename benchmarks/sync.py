"""Set reconciliation cost with the real `protocol.sync`: round trips and bytes vs ideal.

Scenarios of issue #5 / research note gossip-sync.md §1.7 (goals G5-G6):
identical sets, the newest 1 % missing (a node that was offline), 0.1 %, 1 % and
10 % missing at random (scattered loss), each also priced for a naive exchange
of the full id list (a fresh node joining over loopback: benchmarks/join.py).
Both sides run the reconciler as node/gossip does (`push_missing`: the side that
learns what its peer lacks sends the records instead of listing their ids), in
sketch forms (counted ladders and IBLT sketches, SPEC §13, sketch forms: peers that name
`sync-sketch`), compact forms (8-byte id prefixes and fingerprints: peers that
name only `sync-compact`) and full forms (older peers), side by side.
Items are (ms timestamp over a year, random 32-byte id); ideal bytes = missing
items x 250 bytes (a typical attestation); the reconciliation bytes are added
to the ideal transfer for the "total / ideal" column.
The targets of issue 28 (printed with PASS/FAIL, for sketch forms: what two
current nodes use): 0.1 %, 1 % and 10 % scattered <= 1.5 x ideal, 1 % in <= 6
round trips; newest 1 % <= 1.2 x in <= 4; identical sets <= 1 KiB in 1.
Bytes and round trips are deterministic for a seed; the seconds are wall time.
Run from the repository root: `python -m benchmarks.sync [--items N] [--json]`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from node.gossip.sketch_fast import NumpySketchBuilder
from protocol.sync import Reconciler

ATTESTATION_BYTES = 250
NAIVE_BYTES_PER_ID = 32
YEAR_MS = 365 * 24 * 3600 * 1000


@dataclass(frozen=True)
class Row:
    """One scenario's figures."""

    scenario: str
    forms: str
    missing: int
    round_trips: int
    reconciliation_bytes: int
    bytes_per_missing: float
    total_vs_ideal: float
    seconds: float
    naive_bytes: int
    naive_vs_ideal: float


FORMS = ("sketch", "compact", "full")


def _session(
    mine: list[tuple[int, bytes]], theirs: list[tuple[int, bytes]], *, forms: str
) -> tuple[int, int, int]:
    # As node/gossip runs it: what a side learns the peer lacks is pushed as
    # records (`have`), not listed back as ids.
    compact, sketch = forms != "full", forms == "sketch"
    # The node's table builder (numpy): the same bytes as protocol.sketch's, faster.
    fast = NumpySketchBuilder()
    client = Reconciler(
        mine, push_missing=True, compact=compact, sketch=sketch, sketch_builder=fast
    )
    server = Reconciler(
        theirs, push_missing=True, compact=compact, sketch=sketch, sketch_builder=fast
    )
    message: bytes | None = client.initiate()
    sent, turns, side = 0, 0, server
    while message is not None:
        sent += len(message)
        message = side.receive(message)
        side = client if side is server else server
        turns += 1
    learned = client.need | server.have
    assert learned == {i for _, i in theirs} - {i for _, i in mine}
    return (turns + 1) // 2, sent, len(learned)


def run(count: int, seed: int) -> list[Row]:
    """Every scenario on one seeded universe."""
    rng = random.Random(seed)
    items = sorted((rng.randrange(YEAR_MS), rng.randbytes(32)) for _ in range(count))
    scenarios = {
        "identical": items,
        "newest 1% missing": items[: -count // 100],
        "1% missing at random": [x for x in items if rng.random() >= 0.01],
        "0.1% missing at random": [x for x in items if rng.random() >= 0.001],
        "10% missing at random": [x for x in items if rng.random() >= 0.10],
    }
    rows = []
    for (name, mine), forms in itertools.product(scenarios.items(), FORMS):
        started = time.perf_counter()
        rounds, sent, missing = _session(mine, items, forms=forms)
        seconds = time.perf_counter() - started
        ideal = missing * ATTESTATION_BYTES
        # The naive protocol: the server sends its whole id list (32 B per id).
        naive = NAIVE_BYTES_PER_ID * len(items)
        rows.append(
            Row(
                scenario=name,
                forms=forms,
                missing=missing,
                round_trips=rounds,
                reconciliation_bytes=sent,
                bytes_per_missing=sent / missing if missing else float(sent),
                total_vs_ideal=(ideal + sent) / ideal if ideal else float("nan"),
                seconds=seconds,
                naive_bytes=naive,
                naive_vs_ideal=(ideal + naive) / ideal if ideal else float("nan"),
            )
        )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Print one line per scenario and forms, then each target of issue 28 with PASS/FAIL."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rows = run(args.items, args.seed)
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=2))
        return 0
    print(f"{args.items:,} items vs {args.items:,}; ideal = {ATTESTATION_BYTES} B per missing item")
    for r in rows:
        ratio = "-" if r.missing == 0 else f"{r.total_vs_ideal:.2f}x"
        print(
            f"  {r.scenario:<22} {r.forms:<7} missing {r.missing:>6,}  "
            f"round trips {r.round_trips:>2}  "
            f"sync bytes {r.reconciliation_bytes:>10,}  "
            f"per missing {r.bytes_per_missing:>7,.0f} B  "
            f"total/ideal {ratio:>6}  ({r.seconds:.1f} s)"
        )
        if r.forms == "full":
            naive = "-" if r.missing == 0 else f"{r.naive_vs_ideal:.2f}x"
            print(f"  {'':<30} naive full id list: {r.naive_bytes:>10,} B, total/ideal {naive:>7}")
    _print_verdicts(rows)
    return 0


# (scenario, max total/ideal, max round trips): issue 28's targets, sketch forms.
TARGETS = (
    ("0.1% missing at random", 1.5, None),
    ("1% missing at random", 1.5, 6),
    ("10% missing at random", 1.5, None),
    ("newest 1% missing", 1.2, 4),
)


def _print_verdicts(rows: list[Row]) -> None:
    by_name = {(r.scenario, r.forms): r for r in rows}

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    for scenario, ratio, trips in TARGETS:
        row = by_name.get((scenario, "sketch"))
        if row is None:
            continue
        ok = row.total_vs_ideal <= ratio and (trips is None or row.round_trips <= trips)
        within = "" if trips is None else f" in <= {trips} round trips"
        print(
            f"{scenario:<22} sketch: {row.total_vs_ideal:.2f}x ideal, {row.round_trips} round trips"
            f"  (target <= {ratio}x{within}): {verdict(ok)}"
        )
    identical = by_name.get(("identical", "sketch"))
    if identical:
        ok = identical.reconciliation_bytes <= 1024 and identical.round_trips == 1
        print(
            f"{'identical':<22} sketch: {identical.reconciliation_bytes} B, "
            f"{identical.round_trips} round trip  (target <= 1 KiB in 1): {verdict(ok)}"
        )


if __name__ == "__main__":
    sys.exit(main())
