"""The range and choices of every scenario and network parameter, checked before a run.

A parameter is text from the command line: a value out of range is refused
here, up front, with a `ParameterError` naming it, never discovered by a run
that loops forever (`loss=2` made every chunk retransmit without end) or
crashes an hour in. Every parameter a scenario declares must have a limit in
`LIMITS` (a test checks it), so a new parameter cannot skip the check.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["LIMITS", "Limit", "ParameterError", "check_nodes", "check_parameters", "limit_of"]

Value = int | float | str
_DAY_S = 86_400.0


class ParameterError(ValueError):
    """A scenario parameter that we refuse; `name` says which."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name


@dataclass(frozen=True, slots=True)
class Limit:
    """What one parameter may be: a finite number in [low, high], or one of `choices`."""

    low: float = 0.0
    high: float = 0.0
    choices: tuple[str, ...] = ()
    number_list: bool = False  # comma-separated numbers, each in [low, high]

    def check(self, name: str, value: Value) -> None:
        """Raise `ParameterError` unless `value` is allowed."""
        if self.choices:
            if value not in self.choices:
                raise ParameterError(name, f"expected one of {', '.join(self.choices)}")
        elif self.number_list:
            self._check_list(name, str(value))
        else:
            self._check_number(name, value)

    def _check_number(self, name: str, value: Value) -> None:
        if isinstance(value, str) or not math.isfinite(value):
            raise ParameterError(name, f"expected a number, got {value!r}")
        if not self.low <= value <= self.high:
            raise ParameterError(name, f"expected {self._range()}, got {value:g}")

    def _check_list(self, name: str, text: str) -> None:
        parts = [part.strip() for part in text.split(",") if part.strip()]
        if not parts:
            raise ParameterError(name, "expected comma-separated numbers, e.g. 0.05,0.1")
        for part in parts:
            try:
                number = float(part)
            except ValueError:
                raise ParameterError(name, f"expected numbers, got {part!r}") from None
            self._check_number(name, number)

    def _range(self) -> str:
        return f"{self.low:g} to {self.high:g}"


def _counts(high: float, low: float = 0) -> Limit:
    return Limit(low=low, high=high)


LIMITS: dict[str, Limit] = {
    # the network (every scenario of many nodes)
    "latency_min_ms": Limit(0, 60_000),
    "latency_max_ms": Limit(0, 60_000),
    "latency_shape": Limit(choices=("uniform", "lognormal")),
    # A chunk is retransmitted while a draw falls under `loss`: at 1 it never
    # arrives (and the run never ends); 0.9 already means ten tries a chunk.
    "loss": Limit(0, 0.9),
    "bandwidth_kbps": Limit(0, 10_000_000),
    "max_active": _counts(64, low=1),
    "bootstrap": _counts(64, low=1),
    "resync_s": Limit(1, _DAY_S),
    "join_gap_s": Limit(0, 3_600),
    "store": Limit(choices=("sqlite", "memory")),
    "channel": Limit(choices=("noise", "plain")),
    "explore_s": Limit(1, _DAY_S),
    "trees": Limit(choices=("source", "shared")),
    # convergence
    "attestations": _counts(100_000, low=1),
    "interval_s": Limit(0, 3_600),
    "burst": _counts(100_000, low=1),
    # join
    "community": _counts(10_000_000),
    # partition
    "split_s": Limit(1, _DAY_S),
    "writes": _counts(100_000),
    # churn
    "rates": Limit(0, 1, number_list=True),
    "duration_s": Limit(1, _DAY_S),
    "downtime_s": Limit(0, _DAY_S),
    "fresh": Limit(0, 1),
    "write_interval_s": Limit(0.1, _DAY_S),
    # revocation, flood, whitewash
    "vouches": _counts(1_000),
    "viewers": _counts(1_000, low=1),
    "farm": _counts(100_000, low=1),
    "per_identity": _counts(100_000),
    "quota": _counts(1_000_000),
    "attack_edges": _counts(1_000, low=1),
    "flaggers": _counts(1_000),
    "days": _counts(3_650, low=1),
    "vouch_chance": Limit(0, 1),
    # sybil and flag (`farm` there is a shape: see `_SHAPES`)
    "graph": Limit(choices=("BA", "HK", "SBM", "WS")),
    "victims": Limit(choices=("random", "targeted")),
}
# `farm` is a count in `flood` and a shape in `sybil`: its limit depends on the default's type.
_SHAPES = Limit(choices=("dense", "tree"))


def limit_of(name: str, default: Value) -> Limit:
    """The limit of parameter `name` whose default is `default`.

    Raises:
        KeyError: no limit is declared for `name` (a bug: declare one in `LIMITS`).
    """
    if name == "farm" and isinstance(default, str):
        return _SHAPES
    return LIMITS[name]


def check_parameters(params: Mapping[str, Value], defaults: Mapping[str, Value]) -> None:
    """Check every parameter against its limit, and the pairs that must agree.

    Raises:
        ParameterError: naming the first parameter out of range.
    """
    for name, value in params.items():
        limit_of(name, defaults[name]).check(name, value)
    low, high = params.get("latency_min_ms"), params.get("latency_max_ms")
    if isinstance(low, int | float) and isinstance(high, int | float) and low > high:
        raise ParameterError("latency_max_ms", f"must be at least latency_min_ms ({low:g})")


# Parameters that pick members without replacement: together they must leave room
# among `--nodes` (scenario, parameters summed, members not available to them).
_PICKED_FROM_NODES: tuple[tuple[str, tuple[str, ...], int], ...] = (
    ("whitewash", ("viewers", "flaggers"), 1),  # the flagged member is neither
    ("flood", ("vouches",), 1),  # a member does not vouch for itself
    ("flood", ("attack_edges",), 0),
    ("revocation", ("vouches",), 1),
)


def check_nodes(scenario: str, nodes: int, params: Mapping[str, Value]) -> None:
    """Check the parameters that count members against the run's `nodes`.

    Raises:
        ParameterError: naming the last of the parameters that do not fit.
    """
    for name, picked, reserved in _PICKED_FROM_NODES:
        if name != scenario:
            continue
        wanted = sum(int(params[p]) for p in picked)
        if wanted > nodes - reserved:
            together = " + ".join(picked)
            raise ParameterError(
                picked[-1],
                f"{together} = {wanted} members, but --nodes {nodes} leaves "
                f"{nodes - reserved} to choose from",
            )
