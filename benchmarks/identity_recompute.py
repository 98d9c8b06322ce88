"""The identity layer's share of the trust engine's full recompute (issue 26's cost figure).

A full recompute from scratch is what a node does at start or after a
re-mapping: every attestation goes through `TrustEngine.add` (where the
identity layer maps keys to members, `node.trust.identity`), then the walk is
built and solved. We time exactly that on one seeded Barabasi-Albert graph
(m = 5, both directions, as `benchmarks.trust`), twice per round: with the
layer, and with its `view` replaced by the identity function (what the engine
did before issue 26; the engine's one type test per attestation that guards
the call stays on both sides). Nobody has bound a key, rotated or designated:
the common case, which must cost <= 5 % more.

Under load (2 shared cores), wall time is noise, so each side is timed in
CPU time (`time.process_time`), the two sides alternate in every round (the
order swapped each round, so a slow spell hits both), and we report the
median over rounds. The attestations carry a zero signature: the engine
takes verified attestations and never checks one, and signing a million
would only lengthen the run.
"""

from __future__ import annotations

import contextlib
import gc
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from node.trust import TrustEngine
from node.trust import identity as layer
from protocol.attestation import (
    Attestation,
    AttestationBody,
    SignedEnvelope,
    encode_body,
)
from protocol.attestation_records import _envelope_bytes as envelope_bytes
from protocol.identity import IdentityId
from protocol.statement import Trust
from simulations.graphs import identities_for, preferential_attachment

__all__ = ["RecomputeCost", "measure", "print_cost"]

TARGET = 0.05
_NOW = 1_800_000_000_000
_ZERO_SIGNATURE = bytes(64)


@dataclass(frozen=True, slots=True)
class RecomputeCost:
    """CPU seconds of each round, with and without the layer, at one size."""

    arcs: int
    members: int
    with_layer_s: tuple[float, ...]
    without_s: tuple[float, ...]

    @property
    def overhead(self) -> float:
        """Median with / median without - 1."""
        return statistics.median(self.with_layer_s) / statistics.median(self.without_s) - 1.0


def _vouches(arcs: int, seed: int) -> tuple[IdentityId, list[Attestation]]:
    rng = np.random.default_rng(seed)
    n = max(arcs // 10, 20)
    sources, targets = preferential_attachment(n, 5, rng)
    ids = identities_for(n)
    found: list[Attestation] = []
    for u, v in zip(sources.tolist(), targets.tolist(), strict=True):
        for issuer, subject in ((ids[u], ids[v]), (ids[v], ids[u])):
            body = AttestationBody(
                issuer=issuer, issued_at_ms=_NOW, statement=Trust(subject=subject, value=100)
            )
            data = envelope_bytes(encode_body(body), _ZERO_SIGNATURE)
            envelope = SignedEnvelope(body=body, signature=_ZERO_SIGNATURE, data=data)
            found.append(Attestation(envelope))
    return ids[0], found


@contextlib.contextmanager
def _layer_off() -> Iterator[None]:
    """The engine as before issue 26: every attestation taken as signed."""
    view, displaced = layer.IdentityLayer.view, layer.IdentityLayer.displaced
    layer.IdentityLayer.view = lambda self, a: a  # type: ignore[method-assign,assignment]
    layer.IdentityLayer.displaced = lambda self, a: None  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        layer.IdentityLayer.view = view  # type: ignore[method-assign]
        layer.IdentityLayer.displaced = displaced  # type: ignore[method-assign]


def _recompute_s(viewer: IdentityId, attestations: list[Attestation]) -> float:
    gc.collect()
    start = time.process_time()
    engine = TrustEngine(viewer, now_ms=_NOW + 1, attestations=attestations)
    engine.walk().visits()
    elapsed = time.process_time() - start
    del engine
    return elapsed


def measure(arcs: int, *, seed: int = 1, rounds: int = 5) -> RecomputeCost:
    """Alternating rounds at about `arcs` arcs (see the module doc)."""
    viewer, attestations = _vouches(arcs, seed)
    with_layer: list[float] = []
    without: list[float] = []
    for round_ in range(rounds):
        for on in (True, False) if round_ % 2 == 0 else (False, True):
            if on:
                with_layer.append(_recompute_s(viewer, attestations))
            else:
                with _layer_off():
                    without.append(_recompute_s(viewer, attestations))
    members = len({a.issuer for a in attestations})
    return RecomputeCost(len(attestations), members, tuple(with_layer), tuple(without))


def print_cost(cost: RecomputeCost, *, load: str) -> None:
    """Print one size's figure with its verdict against the 5 % target."""
    verdict = "PASS" if cost.overhead <= TARGET else "MISS"
    print(
        f"  identity layer, {cost.arcs:,} arcs ({cost.members:,} members, nobody bound): "
        f"full recompute (add + walk + solve), CPU median of {len(cost.with_layer_s)} "
        f"alternating rounds: with {statistics.median(cost.with_layer_s):.3f} s, without "
        f"{statistics.median(cost.without_s):.3f} s, {cost.overhead * 100:+.1f} % "
        f"(target <= {TARGET * 100:.0f} %): {verdict}  [load {load}]"
    )
    print(
        "    rounds with: " + " ".join(f"{s:.3f}" for s in cost.with_layer_s)
        + " | without: " + " ".join(f"{s:.3f}" for s in cost.without_s)
    )  # fmt: skip
