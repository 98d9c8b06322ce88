"""Hypothesis strategies for small signed trust graphs."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

from node.trust import TrustGraph
from protocol.identity import IdentityId

NODE_IDS = tuple(IdentityId(bytes([n]) * 32) for n in range(16))


@dataclass(frozen=True)
class SmallGraph:
    """Signed weights over `NODE_IDS[:size]`, viewed from node 0."""

    size: int
    weights: dict[tuple[IdentityId, IdentityId], float]

    @property
    def viewer(self) -> IdentityId:
        return NODE_IDS[0]

    def graph(self) -> TrustGraph:
        return TrustGraph.from_weights(self.weights, identities=NODE_IDS[: self.size])

    def with_weight(self, issuer: IdentityId, subject: IdentityId, weight: float) -> SmallGraph:
        weights = dict(self.weights)
        weights[(issuer, subject)] = weight
        return SmallGraph(self.size, {k: w for k, w in weights.items() if w != 0.0})


@st.composite
def small_graphs(draw: st.DrawFn, *, max_size: int = 9, negative: bool = True) -> SmallGraph:
    """A graph of 2..max_size identities with integer-valued signed weights."""
    size = draw(st.integers(2, max_size))
    nodes = st.integers(0, size - 1)
    low = -100 if negative else 1
    values = st.integers(low, 100).filter(lambda v: v != 0)
    pairs = draw(
        st.dictionaries(
            st.tuples(nodes, nodes).filter(lambda p: p[0] != p[1]), values, max_size=size * 4
        )
    )
    weights = {(NODE_IDS[a], NODE_IDS[b]): v / 100.0 for (a, b), v in pairs.items()}
    return SmallGraph(size, weights)
