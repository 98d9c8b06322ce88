"""Members as `Node`s for the trust scenarios: statements through `Node.trust`, answers from it.

The sybil, flag and whitewash scenarios study what the trust engine makes of
a community's statements, not how the statements spread (`World` measures
that). `Members` gives every member a `Node` built by the daemon's assembly
(`node.service.assemble`, an in-memory store, no network) on a perfect
network: each member says what it says through its own node (`trust`,
`distrust`, `revoke`: signed, committed, superseding as the daemon's do), and
a viewer's node receives every statement made so far (`import_envelopes`:
verified, stored, fed to its engine from the change feed) before it answers.
So the figures are the answers a member's node gives, from its own store.

Nodes are built on first use and share one cache of verified envelopes (each
signature is checked once per process, as in `World`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import TypeVar

import trio
import trio.testing

from node.service import Node, NodeConfig
from node.service.assemble import NodeParts, Stores, Tuning, build_node
from node.store import MemoryStore
from protocol.attestation import Attestation
from protocol.identity import IdentityId, IdentityKey
from protocol.statement import GENERAL_CONTEXT, Kind

__all__ = ["Members", "with_members"]

T = TypeVar("T")
T0 = 1_700_000_000_000
_CONFIG = NodeConfig(data_dir=Path("unused"), community_id=bytes(32), community_key=bytes(32))


class Members:
    """`size` members, member i with the identity `identities[i]`; see the module doc."""

    def __init__(self, size: int, *, seed: int) -> None:
        self.keys = [
            IdentityKey.from_seed((seed * 1_000_003 + i + 1).to_bytes(32, "big"))
            for i in range(size)
        ]
        self.identities: list[IdentityId] = [k.identity for k in self.keys]
        self.index = {identity: i for i, identity in enumerate(self.identities)}
        self._verified: dict[bytes, Attestation] = {}
        self._nodes: dict[int, Node] = {}
        self._said: list[bytes] = []  # every statement made, in order
        self._heard: dict[int, int] = {}  # member -> how many of `_said` its node was given

    def clock_ms(self) -> int:
        """Every node's wall clock: trio's, from T0."""
        return T0 + int(trio.current_time() * 1000)

    def node(self, member: int) -> Node:
        """Member `member`'s node (built on first use)."""
        node = self._nodes.get(member)
        if node is None:
            node = self._nodes[member] = build_node(
                NodeParts(
                    config=_CONFIG,
                    key=self.keys[member],
                    stores=Stores.in_memory(MemoryStore()),
                    clock=self.clock_ms,
                    tuning=Tuning(relay=None, verify_ahead=False, verified_cache=self._verified),
                )
            )
            self._heard[member] = 0
        return node

    async def say(self, issuer: int, subject: int, weight: float) -> None:
        """`issuer` vouches for (weight > 0) or flags (< 0) `subject`: weight x 100."""
        value = round(weight * 100)
        node, identity = self.node(issuer), self.identities[subject]
        made = await (node.trust(identity, value) if value > 0 else node.distrust(identity, -value))
        self._said.append(made.data)

    async def say_all(self, weights: Iterable[tuple[tuple[int, int], float]]) -> None:
        """`say` each ((issuer, subject), weight), in order."""
        for (issuer, subject), weight in weights:
            await self.say(issuer, subject, weight)

    async def withdraw(self, issuer: int, subject: int) -> None:
        """`issuer` revokes its vouch or flag about `subject` (`Node.revoke`)."""
        made = await self.node(issuer).revoke(Kind.TRUST, self.identities[subject], GENERAL_CONTEXT)
        self._said.append(made.data)

    async def viewer(self, member: int) -> Node:
        """Member `member`'s node, once it has received everything said so far."""
        node = self.node(member)
        heard = self._heard[member]
        if heard < len(self._said):
            await node.import_envelopes(self._said[heard:])
            self._heard[member] = len(self._said)
        return node


def with_members(main: Callable[[], Awaitable[T]]) -> T:
    """Run `main` in trio with a MockClock (nodes live inside `trio.run`)."""
    return trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
