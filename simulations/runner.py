"""The scenario runner: one registry, one `Run` handed to every scenario, one `Result`.

A scenario is a function `run(sim: Run) -> None` that reads `sim.nodes`,
`sim.seed` and `sim.params` (its declared defaults, overridden by the caller,
values converted to the defaults' types), does its work in virtual time, and
reports through `sim`: `figure` (a summary number), `claim` (what the
scenario exists to show, with whether it held), `point` (a series for the
plots) and `progress`. The runner adds the version, the wall time and the
seed, so `results.json` says everything needed to reproduce a run.

Same scenario, parameters and seed: same figures (the network, the clock and
every random choice are seeded; tests check it).
"""

from __future__ import annotations

import gc
import importlib
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from simulations.params import ParameterError, check_nodes, check_parameters

__all__ = [
    "SCENARIOS",
    "Result",
    "Run",
    "Scenario",
    "delivery_rate",
    "number_text",
    "parse_params",
    "phase_line",
    "run_scenario",
]

Value = int | float | str
_KIND_TEXT = {int: "a whole number", float: "a number", str: "text"}


@dataclass(frozen=True)
class Scenario:
    """A registered scenario: what it shows and its parameters with defaults."""

    name: str
    module: str
    summary: str
    default_nodes: int
    defaults: Mapping[str, Value]

    def load(self) -> Callable[[Run], None]:
        """The scenario's `run` function (imported on use)."""
        run = importlib.import_module(self.module).run
        assert callable(run)
        return run  # type: ignore[no-any-return]


@dataclass
class Axis:
    """How to label one plot (a group of series)."""

    title: str
    x: str = "virtual time (s)"
    y: str = ""


@dataclass
class Result:
    """Everything a run produced (`results.json`)."""

    scenario: str
    version: str
    seed: int
    nodes: int
    params: dict[str, Value]
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)
    claims: list[dict[str, Any]] = field(default_factory=list)
    series: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    axes: dict[str, dict[str, str]] = field(default_factory=dict)
    wall_s: float = 0.0
    # Where the wall time went: {"name", "wall_s", "deliveries"} per phase the
    # scenario marked (`Run.phase`). Wall time varies by machine, so it stays
    # out of the figures that the determinism check compares.
    phases: list[dict[str, Any]] = field(default_factory=list)

    @property
    def claims_hold(self) -> bool:
        """Whether every claim held."""
        return all(c["holds"] for c in self.claims)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return asdict(self)

    def summary_figures(self) -> dict[str, float]:
        """name -> value, for determinism checks and sweep tables."""
        return {name: entry["value"] for name, entry in self.figures.items()}


class Run:
    """What a scenario sees and reports through."""

    def __init__(
        self, result: Result, progress: Callable[[float, str], None] | None = None
    ) -> None:
        self._result = result
        self._progress = progress
        self.nodes = result.nodes
        self.seed = result.seed
        self.params = result.params
        self._phase_started: float | None = None

    def figure(self, name: str, value: float, unit: str = "", note: str = "") -> None:
        """A summary figure (rounded to 6 significant digits for stable reports)."""
        self._result.figures[name] = {"value": float(f"{value:.6g}"), "unit": unit, "note": note}

    def claim(self, name: str, holds: bool, detail: str = "") -> None:
        """What the scenario exists to show, and whether this run showed it."""
        self._result.claims.append({"name": name, "holds": bool(holds), "detail": detail})

    def series(self, name: str, points: list[tuple[float, float]]) -> None:
        """A whole series at once; `group/label` names share a plot."""
        self._result.series[name] = [(float(x), float(y)) for x, y in points]

    def point(self, name: str, x: float, y: float) -> None:
        """One point of a series."""
        self._result.series.setdefault(name, []).append((float(x), float(y)))

    def axis(self, group: str, title: str, *, x: str = "virtual time (s)", y: str = "") -> None:
        """Labels of the plot of series `group/...`."""
        self._result.axes[group] = asdict(Axis(title=title, x=x, y=y))

    def progress(self, fraction: float, text: str = "") -> None:
        """How far the run is (0..1), for the progress bar."""
        if self._progress is not None:
            self._progress(min(max(fraction, 0.0), 1.0), text)

    def phase(self, name: str) -> None:
        """The run enters phase `name` (the previous one ends): its wall time is reported."""
        self.end_phase()
        self._result.phases.append({"name": name, "wall_s": 0.0, "deliveries": 0})
        self._phase_started = time.perf_counter()

    def delivered(self, count: int) -> None:
        """`count` deliveries (an attestation stored at a node) happened in this phase."""
        if self._result.phases:
            self._result.phases[-1]["deliveries"] += count

    def end_phase(self) -> None:
        """The current phase (if any) ends now."""
        if self._result.phases and self._phase_started is not None:
            elapsed = time.perf_counter() - self._phase_started
            self._result.phases[-1]["wall_s"] = round(elapsed, 3)
        self._phase_started = None


_NETWORK: dict[str, Value] = {
    "latency_min_ms": 20.0, "latency_max_ms": 120.0, "latency_shape": "uniform",
    "loss": 0.0, "bandwidth_kbps": 0.0, "max_active": 6, "bootstrap": 4, "resync_s": 30.0,
    "join_gap_s": 0.05, "store": "sqlite", "channel": "noise", "explore_s": 600.0,
    "trees": "source",
}  # fmt: skip

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("convergence", "simulations.scenarios.convergence",
                 "spread of single attestations and of a burst: time to 50/99/100 %, copies, "
                 "bytes vs ideal", 200,
                 {**_NETWORK, "attestations": 10, "interval_s": 3.0, "burst": 50}),
        Scenario("join", "simulations.scenarios.join",
                 "a fresh node's initial sync against a community: time and bytes vs ideal", 20,
                 {**_NETWORK, "community": 5000, "bandwidth_kbps": 2000.0}),
        Scenario("partition", "simulations.scenarios.partition",
                 "split, independent writes and a revocation, heal: convergence, nothing lost, "
                 "no tombstone undone", 60,
                 {**_NETWORK, "split_s": 120.0, "writes": 10, "resync_s": 20.0,
                  "explore_s": 60.0}),  # healing waits for a link swap: see node/peers
        Scenario("churn", "simulations.scenarios.churn",
                 "continuous churn at several rates: fraction of live nodes up to date", 60,
                 {**_NETWORK, "rates": "0.05,0.1,0.2", "duration_s": 240.0, "downtime_s": 30.0,
                  "fresh": 0.25, "write_interval_s": 4.0, "resync_s": 20.0}),
        Scenario("revocation", "simulations.scenarios.revocation",
                 "how fast a revocation reaches everyone and scores change", 100,
                 {**_NETWORK, "vouches": 3, "viewers": 20}),
        Scenario("flood", "simulations.scenarios.flood",
                 "an identity farm spams attestations: what honest nodes store and relay, with "
                 "relay quotas and without", 40,
                 {**_NETWORK, "farm": 50, "per_identity": 100, "quota": 20, "vouches": 3,
                  "attack_edges": 1}),
        Scenario("whitewash", "simulations.scenarios.whitewash",
                 "a flagged member returns under a new identity: how much trust it regains, "
                 "how fast", 1000,
                 {"flaggers": 5, "days": 60, "vouch_chance": 0.3, "viewers": 10}),
        Scenario("sybil", "simulations.scenarios.sybil",
                 "identity farms vs every trust metric: AUC, farm members accepted per attack "
                 "edge", 0, {"graph": "BA", "farm": "dense", "victims": "random", "viewers": 2}),
        Scenario("recovery", "simulations.scenarios.recovery",
                 "custodians recover a lost key (3 of 5); k-1 cannot; k are vetoed by the "
                 "member's device: successor and scores at every node", 16,
                 {**_NETWORK, "vouches": 3}),
        Scenario("flag", "simulations.scenarios.flag",
                 "what one flag, the viewer's own wall and a farm's mass flagging do to scores",
                 0, {"graph": "BA", "viewers": 2}),
    )
}  # fmt: skip


def number_text(value: float, *, significant: int) -> str:
    """Whole numbers with separators (1,010,000), others to `significant` digits."""
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:.{significant}g}"


def delivery_rate(phase: Mapping[str, Any]) -> str:
    """A phase's deliveries per wall second, as text ("-" without deliveries)."""
    if not phase["deliveries"] or not phase["wall_s"]:
        return "-"
    return f"{phase['deliveries'] / phase['wall_s']:,.0f}"


def phase_line(phase: Mapping[str, Any]) -> str:
    """One phase as a line of text: its name, wall time, and deliveries if any."""
    rate = delivery_rate(phase)
    rate = "" if rate == "-" else f", {phase['deliveries']:,} deliveries, {rate}/s"
    return f"{phase['name']:<24} {phase['wall_s']:7.1f} s{rate}"


def parse_params(scenario: Scenario, given: Mapping[str, str]) -> dict[str, Value]:
    """Defaults overridden by `given` (text from the CLI), converted to the defaults' types.

    Raises:
        ParameterError: an unknown parameter, or a value of the wrong type or out of
            its range (`simulations.params.LIMITS`); a `ValueError`, naming it.
    """
    params: dict[str, Value] = dict(scenario.defaults)
    for key, text in given.items():
        if key not in params:
            known = ", ".join(sorted(params))
            raise ParameterError(key, f"{scenario.name} has no such parameter (it has: {known})")
        kind = type(params[key])
        try:
            params[key] = kind(text)
        except ValueError:
            raise ParameterError(key, f"expected {_KIND_TEXT[kind]}, got {text!r}") from None
    check_parameters(params, scenario.defaults)
    if _NETWORK.keys() <= params.keys():
        from simulations.world import NetworkParameters  # heavy; run imports it anyway

        NetworkParameters.from_params(params)  # refuses a bad choice (store, channel) early
    return params


def _version() -> str:
    try:
        return version("trustnode")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def run_scenario(
    name: str, *, nodes: int | None = None, seed: int = 1,
    params: Mapping[str, str] | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> Result:  # fmt: skip
    """Run one scenario and return its `Result`.

    Raises:
        KeyError: no such scenario.
        ValueError: a bad parameter.
    """
    scenario = SCENARIOS[name]
    result = Result(
        scenario=name, version=_version(), seed=seed,
        nodes=scenario.default_nodes if nodes is None else nodes,
        params=parse_params(scenario, params or {}),
    )  # fmt: skip
    check_nodes(name, result.nodes, result.params)
    started = time.perf_counter()
    # A run keeps millions of long-lived objects (stores, sessions, arrival times):
    # the collector's default thresholds would re-scan them all every few seconds,
    # and even young collections cost tens of ms at 1000 members (measured with
    # gc.callbacks: 26 s of a 483-s run at 10 000 allocations per collection; at
    # 100 000 the same run took 430 s; 1 000 000 gained nothing more).
    thresholds = gc.get_threshold()
    gc.set_threshold(100_000, 20, 100)
    run = Run(result, progress)
    try:
        scenario.load()(run)
        run.end_phase()  # the last phase ends with the scenario (its teardown included)
    finally:
        gc.set_threshold(*thresholds)
    result.wall_s = round(time.perf_counter() - started, 3)
    return result
