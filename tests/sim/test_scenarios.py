"""Every scenario of `trustnode simulate`, small and seeded: its claims hold, runs repeat."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import trio
import trio.testing

from simulations.params import ParameterError
from simulations.report import write_outputs
from simulations.runner import SCENARIOS, parse_params, run_scenario
from simulations.sweep import grid, run_sweep, write_sweep
from simulations.world import NetworkParameters, World

pytestmark = pytest.mark.slow

SMALL: dict[str, tuple[int | None, dict[str, str]]] = {
    "convergence": (24, {"attestations": "3", "burst": "10"}),
    "join": (8, {"community": "400"}),
    "partition": (16, {"split_s": "40", "writes": "3"}),
    "churn": (16, {"rates": "0.3", "duration_s": "60"}),
    "revocation": (24, {"viewers": "5"}),
    "recovery": (14, {}),
    "flood": (12, {"farm": "10", "per_identity": "30", "quota": "5"}),
    "whitewash": (150, {"days": "10", "viewers": "4", "vouch_chance": "0.5"}),
    "sybil": (None, {"viewers": "1"}),
    "flag": (None, {"viewers": "1"}),
}


def test_every_scenario_has_a_small_run() -> None:
    assert set(SMALL) == set(SCENARIOS)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_claims_hold(name: str) -> None:
    nodes, params = SMALL[name]
    result = run_scenario(name, nodes=nodes, seed=3, params=params)
    assert result.claims, "a scenario must claim something"
    assert result.claims_hold, [c for c in result.claims if not c["holds"]]
    assert result.figures
    assert all(isinstance(e["value"], float) for e in result.figures.values())


LIGHT = {"store": "memory", "channel": "plain", "trees": "shared"}  # as documented for 10 000


@pytest.mark.parametrize("name", ["convergence", "partition", "churn", "flood", "join"])
def test_claims_hold_in_the_lighter_mode(name: str) -> None:
    nodes, params = SMALL[name]
    result = run_scenario(name, nodes=nodes, seed=3, params={**params, **LIGHT})
    assert result.claims_hold, [c for c in result.claims if not c["holds"]]
    again = run_scenario(name, nodes=nodes, seed=3, params={**params, **LIGHT})
    assert again.summary_figures() == result.summary_figures()


def test_same_seed_same_figures_other_seed_other_figures() -> None:
    nodes, params = SMALL["convergence"]
    one = run_scenario("convergence", nodes=nodes, seed=5, params=params)
    two = run_scenario("convergence", nodes=nodes, seed=5, params=params)
    other = run_scenario("convergence", nodes=nodes, seed=6, params=params)
    assert one.summary_figures() == two.summary_figures()
    assert one.series == two.series
    assert one.summary_figures() != other.summary_figures()


def _run_with_hash_seed(command: list[str], hash_seed: int) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONHASHSEED": str(hash_seed)}
    return subprocess.run(
        command, env=environment, capture_output=True, check=True, text=True, timeout=300
    )


def test_a_run_repeats_in_another_process() -> None:
    """Same seed, same figures across processes: other hash seeds, other memory
    addresses (timers due at one instant used to wake in address order)."""
    command = [
        *(sys.executable, "-m", "node.cli", "simulate", "convergence", "--nodes", "60"),
        *("--param", "attestations=3", "--param", "burst=30", "--seed", "1", "--json"),
    ]
    runs = [_run_with_hash_seed(command, hash_seed) for hash_seed in (1, 2)]
    one, two = (json.loads(run.stdout) for run in runs)
    assert one["figures"] == two["figures"]
    assert one["series"] == two["series"]


def test_flood_quotas_cap_what_honest_nodes_store() -> None:
    nodes, params = SMALL["flood"]
    figures = run_scenario("flood", nodes=nodes, seed=3, params=params).summary_figures()
    capped = figures["farm stored per honest node, max (with quotas)"]
    flooded = figures["farm stored per honest node, max (without quotas)"]
    assert flooded == 10 * 30  # without quotas every node keeps the whole flood
    assert capped < flooded


def test_parameters_are_checked_and_typed() -> None:
    scenario = SCENARIOS["convergence"]
    assert parse_params(scenario, {"burst": "7"})["burst"] == 7
    assert parse_params(scenario, {"loss": "0.1"})["loss"] == 0.1
    for given, name in [
        ({"bursts": "7"}, "bursts"),
        ({"burst": "many"}, "burst"),
        ({"store": "redis"}, "store"),
        ({"channel": "tls"}, "channel"),
        ({"trees": "none"}, "trees"),
    ]:
        with pytest.raises(ParameterError) as caught:
            parse_params(scenario, given)
        assert caught.value.name == name


@pytest.mark.parametrize("trees", ["source", "shared"])
async def test_members_exchange_routes_only_with_source_trees(
    autojump_clock: trio.testing.MockClock, trees: str
) -> None:
    world = World(seed=2, parameters=NetworkParameters(trees=trees, store="memory"))
    members = world.add_members(12)
    async with trio.open_nursery() as nursery:
        await world.start(nursery)
        await trio.sleep(20)
        routes = [len(m.gossip.routes) for m in members]  # sources each has a route to
        world.stop(nursery)
    assert routes == ([len(members)] * len(members) if trees == "source" else [1] * len(members))


def test_outputs_json_csv_plots_report(tmp_path: Path) -> None:
    nodes, params = SMALL["convergence"]
    result = run_scenario("convergence", nodes=nodes, seed=3, params=params)
    written = write_outputs(result, tmp_path)
    names = {p.name for p in written}
    assert {"results.json", "series.csv", "report.md", "spread.png", "burst.png"} <= names
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["seed"] == 3
    assert data["params"]["burst"] == 10
    assert data["version"]
    with (tmp_path / "series.csv").open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["series", "x", "y"]
    assert len(rows) > 10
    assert (tmp_path / "spread.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (tmp_path / "report.md").read_text()
    assert "![spread](spread.png)" in report
    assert "every single attestation reached every node: holds" in report
    # Where the wall time went: phases in order, their deliveries those of the run.
    phases = data["phases"]
    assert [p["name"] for p in phases] == [
        "forming the community",
        "single attestations",
        "burst",
        "ending and figures",
    ]
    assert all(p["wall_s"] > 0 for p in phases)
    assert sum(p["wall_s"] for p in phases) <= data["wall_s"]
    assert sum(p["deliveries"] for p in phases) == data["figures"]["deliveries"]["value"]
    assert [p["deliveries"] for p in phases[1:3]] == [3 * 24, 10 * 24]  # 24 nodes
    assert "## Where the wall time went" in report
    assert "| burst |" in report


def test_sweep_runs_on_any_executor(tmp_path: Path) -> None:
    tasks = grid("join", nodes=6, seeds=[1, 2], fixed={"community": "200"},
                 sweeps={"bandwidth_kbps": ["500", "2000"]})  # fmt: skip
    assert len(tasks) == 4
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = run_sweep(tasks, pool)
    assert [r.params["bandwidth_kbps"] for r in results] == [500.0, 500.0, 2000.0, 2000.0]
    slow = [r.summary_figures()["join time"] for r in results[:2]]
    fast = [r.summary_figures()["join time"] for r in results[2:]]
    assert min(slow) > max(fast)  # a quarter of the bandwidth: a slower join
    table, summary = write_sweep(results, ["bandwidth_kbps"], tmp_path)
    assert len(table.read_text().splitlines()) == 5
    assert "| 500.0 | 2 | 2 |" in summary.read_text()


def test_the_burst_claim_and_figure_state_one_time() -> None:
    nodes, params = SMALL["convergence"]
    result = run_scenario("convergence", nodes=nodes, seed=3, params=params)
    figure = result.figures["burst: time to 100 %"]["value"]
    (claim,) = [c for c in result.claims if c["name"] == "the burst reached every node"]
    assert claim["detail"] == f"in {figure:.3f} s"
