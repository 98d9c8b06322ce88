"""Same seed, same figures, in any process: whatever else the process imported or allocated.

`in_virtual_time` promises that a seeded run repeats exactly. Two things used
to break that: importing Hypothesis (which any pytest process here does)
switches trio's scheduler into another mode through trio's own Hypothesis
plugin, and trio derives the order of ready tasks in places from sets of tasks,
i.e. from memory addresses. Each run here is a fresh process with its own hash
seed, one with Hypothesis imported, one with a different allocation pattern
and garbage-collector rhythm.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.slow

_SCRIPT = textwrap.dedent(
    """
    import gc, json, sys

    mode = sys.argv[1]
    if mode == "hypothesis":
        import hypothesis  # noqa: F401  (its trio plugin changes trio's scheduling)
    junk: list[object] = []
    if mode == "allocate":
        gc.set_threshold(97, 3, 3)
        junk.extend([object() for _ in range(3333)] + [[n] for n in range(777)])
        from node.gossip.intake import Intake

        ingest = Intake.ingest

        async def _ingest(self, *args, **kwargs):
            junk.append([object() for _ in range(len(junk) % 7)])
            return await ingest(self, *args, **kwargs)

        Intake.ingest = _ingest

    from simulations.runner import run_scenario

    if mode == "allocate":  # earlier runs leave the heap in another state
        run_scenario("join", nodes=8, seed=2, params={"community": "300"})
        run_scenario("convergence", nodes=24, seed=2, params={"attestations": "3", "burst": "10"})
    figures = {}
    for name, nodes, params in [
        ("join", 6, {"community": "50"}),
        ("join", 20, {"community": "2000"}),
    ]:
        result = run_scenario(name, nodes=nodes, seed=1, params=params)
        figures[f"{name} {nodes}"] = result.summary_figures()
    print(json.dumps({"hypothesis": "hypothesis" in sys.modules, "figures": figures}))
    """
)


_MODES = ("plain", "hypothesis", "allocate")


def _run(mode: str, hash_seed: int) -> dict[str, object]:
    environment = {**os.environ, "PYTHONHASHSEED": str(hash_seed)}
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, mode],
        env=environment,
        capture_output=True,
        check=True,
        text=True,
        timeout=120,
    )
    answer: dict[str, object] = json.loads(done.stdout)
    assert answer["hypothesis"] == (mode == "hypothesis"), "the modes must differ as meant"
    return answer


def test_figures_repeat_with_hypothesis_imported_and_other_allocations() -> None:
    plain, hypothesis, allocate = (_run(mode, n) for n, mode in enumerate(_MODES, start=1))
    assert plain["figures"] == hypothesis["figures"]
    assert plain["figures"] == allocate["figures"]
