"""Markdown tables of held-out runs (`simulations.community_holdout --json`), old -> new.

The summaries under `simulations/results/community-holdout-summary-*.md` quote
these: per target, the cells missing it under each rule; per shape, mean
(worst) of every figure; and the new rule's misses, cell by cell.

Run: `python -m simulations.holdout_tables RUN.json [RUN.json ...] [--old backed --new new]`
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from simulations.community_holdout import TARGETS, claim_target

__all__ = ["tables"]

Cell = dict[str, Any]
FIGURES = (
    ("claims_pct", "genuine claims %", min, "{:.1f}"),
    ("claims_two_pct", "certified by two %", min, "{:.1f}"),
    ("farm_claims_per_edge", "farm claims / edge", max, "{:.2f}"),
    ("honest_accepted_pct", "honest accepted %", min, "{:.1f}"),
    ("farm_accepted_per_edge", "farm accepted / edge", max, "{:.2f}"),
    ("auc", "AUC", min, "{:.3f}"),
    ("farm_above_p10_per_edge", "farm > p10 / edge", max, "{:.2f}"),
)


def _misses(figures: dict[str, float]) -> list[str]:
    size = int(figures["size"])
    out = []
    if figures["claims_pct"] < claim_target(size):
        out.append("claims")
    if 0.0 <= figures.get("claims_two_pct", -1.0) < claim_target(size):
        out.append("claims2")
    if figures["farm_claims_per_edge"] > 1.0:
        out.append("farmcl")
    if figures["honest_accepted_pct"] < 90.0:
        out.append("honest")
    if figures["farm_accepted_per_edge"] > 2.0:
        out.append("farmacc")
    if figures["auc"] < 0.95:
        out.append("auc")
    if figures["farm_above_p10_per_edge"] > 3.0:
        out.append("p10")
    return out


def tables(cells: Sequence[Cell], old: str, new: str) -> str:
    """The three tables of one run (a seed set)."""
    lines = [f"| target | cells missing it, {old} -> {new} ({len(cells)} cells) |", "|---|---|"]
    for key, text in TARGETS.items():
        a = str(sum(key in _misses(c["figures"][old]) for c in cells))
        b = sum(key in _misses(c["figures"][new]) for c in cells)
        if key == "claims2" and any(c["figures"][old].get("claims_two_pct", -1) < 0 for c in cells):
            a = "- (not measured)"
        lines.append(f"| {text} | {a} -> **{b}** |")
    anyold = sum(bool(_misses(c["figures"][old])) for c in cells)
    anynew = sum(bool(_misses(c["figures"][new])) for c in cells)
    lines += [f"| cells with any miss | {anyold} -> **{anynew}** |", ""]
    header = "| shape | cells | " + " | ".join(f"{t} (worst)" for _, t, _, _ in FIGURES) + " |"
    lines += [header, "|" + "---|" * (len(FIGURES) + 2)]
    shapes = list(dict.fromkeys(c["shape"] for c in cells))
    for shape in shapes:
        group = [c for c in cells if c["shape"] == shape]
        row = [shape, str(len(group))]
        for key, _, worst, fmt in FIGURES:
            parts = []
            for engine in (old, new):
                values = [float(c["figures"][engine].get(key, -1.0)) for c in group]
                if min(values) < 0:
                    parts.append("-")
                    continue
                mean = sum(values) / len(values)
                parts.append(f"{fmt.format(mean)} ({fmt.format(worst(values))})")
            row.append(f"{parts[0]} -> **{parts[1]}**")
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", f"{new}'s misses:"]
    for c in cells:
        missed = _misses(c["figures"][new])
        if missed:
            a, b = c["figures"][old], c["figures"][new]
            lines.append(
                f"- {c['size']} {c['shape']} {c['attack']} seed {c['seed']}: {','.join(missed)} "
                f"(claims {a['claims_pct']:.1f} -> {b['claims_pct']:.1f} %, certified by two "
                f"{b['claims_two_pct']:.1f} %, farm claims/e {a['farm_claims_per_edge']:.1f} -> "
                f"{b['farm_claims_per_edge']:.1f})"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the tables of each run given."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--old", default="backed")
    parser.add_argument("--new", default="new")
    arguments = parser.parse_args(argv)
    for path in arguments.runs:
        with open(path) as fh:
            cells = json.load(fh)["cells"]
        print(f"### {path}\n")
        print(tables(cells, arguments.old, arguments.new))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
