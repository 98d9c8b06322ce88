"""Keeping connections: bounded active view, peer exchange, back-off, random replacement.

The peer manager of issue #5, after HyParView (Leitão, Pereira, Rodrigues,
DSN 2007):

* an **active view** of at most `max_active` addresses that we keep dialled
  (a task per address redials a lost connection after an exponential back-off
  with random jitter, so a restarted community does not reconnect in
  lockstep);
* a **passive view** of at most `max_passive` addresses learned by **peer
  exchange** (wire `peers`: our own `advertise` addresses and a random sample of
  the views, sent at the start of every session and at every anti-entropy
  round). Learned addresses are hearsay: only the handshake proves that a
  community member is there. One peer can place at most `per_source` of them
  and at most `share` per message, and a full view evicts at random, so a
  liar cannot fill it with bad addresses. We never share or learn a wildcard
  (`0.0.0.0`), one of our own addresses (advertised, or found to reach
  ourselves when dialled), or a loopback address unless we are *local*
  (`node.net.addresses.is_local_only`: every address we advertise is loopback, so
  every peer that can reach us runs on this machine);
* **random replacement**: an active address whose dials fail (or that only
  reaches a member we are already connected to) `replace_after` times in a
  row is moved back to the passive view, and a passive address takes its
  place, the best scored first (a score rises with each session that ran and
  falls with each failed dial). An address keeps its failure count and
  back-off when it moves between the views, so one that never answers is
  redialled ever more slowly, not afresh at each promotion. Bans come from the
  gossip layer's policy table (`node.gossip.policy`): a banned identity's sessions
  are refused there.

Inbound connections are served by `serve_secure` under its limits (or by the
channel a simulation passes); both
directions run the same gossip session, and an identity already connected is
not dialled twice.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

from node.gossip.gossip_node import GossipNode
from node.net.addresses import is_dialable, is_local_only
from node.net.transport import (
    DEFAULT_LIMITS,
    HandshakeTimeoutError,
    OpenChannel,
    PeerStream,
    ServeChannel,
    TransportLimits,
    open_secure_stream,
    serve_secure,
)
from protocol.channel import Community
from protocol.errors import RemoteProtocolError
from protocol.handshake import Role
from protocol.identity import IdentityId, IdentityKey

__all__ = ["Dialer", "PeerManager", "PeerManagerConfig", "Redials"]

Dialer = Callable[[str], Awaitable[trio.abc.Stream]]


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerManagerConfig:
    """How many peers to keep, how patiently to redial them, what to share."""

    max_active: int = 8
    max_passive: int = 64
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 300.0
    jitter: float = 0.5  # each wait is multiplied by a factor in [1 - jitter, 1 + jitter]
    replace_after: int = 3
    advertise: tuple[str, ...] = ()  # where peers can dial us (node.net.addresses.own_addresses)
    share: int = 8
    per_source: int = 16
    # How often one passive address replaces an active one. Each swap costs the
    # community route tables (SPEC §9.4: 9 B per member both ways on the new link)
    # and waves of route changes: a 300-member simulated community swapping every
    # 30 s sent ~20 000 route entries/s in all, idle; hence minutes, not seconds.
    explore_interval_s: float = 600.0


DEFAULT_CONFIG = PeerManagerConfig()
_MAX_OWN = 256  # addresses remembered as our own (a machine has a few; liars may add more)


class Redials:
    """How patiently each address is redialled, while it is in either view: its
    failed dials in a row, the trio time before which it is not dialled again (an
    exponential back-off with random jitter), and its score (sessions that ran,
    less failed dials), which ranks promotions. Kept when an address moves between
    the views, so one that never answers is redialled ever more slowly."""

    def __init__(self, config: PeerManagerConfig, rng: random.Random) -> None:
        self._config = config
        self._rng = rng  # the peer manager's: one seeded sequence of draws
        self.failures: dict[str, int] = {}
        self.retry_at: dict[str, float] = {}
        self.scores: dict[str, int] = {}
        self.dial_failures = 0

    def wait_s(self, failures: int) -> float:
        """The back-off after `failures` failed dials in a row, jittered."""
        base = min(
            self._config.backoff_initial_s * 2 ** min(failures, 30), self._config.backoff_max_s
        )
        spread = self._config.jitter
        return float(base * self._rng.uniform(1 - spread, 1 + spread))

    def count(self, address: str, outcome: str) -> int:
        """Count a dial's outcome and set the back-off; the failures in a row now."""
        if outcome == "ran":
            self.failures.pop(address, None)  # a session ran; start the back-off afresh
            self.scores[address] = self.scores.get(address, 0) + 1
        else:
            # Failed, or that member is already connected (inbound): wait longer.
            self.failures[address] = self.failures.get(address, 0) + 1
            if outcome == "failed":
                self.dial_failures += 1
                self.scores[address] = self.scores.get(address, 0) - 1
        failures = self.failures.get(address, 0)
        self.retry_at[address] = trio.current_time() + self.wait_s(failures)
        return failures

    def forget(self, address: str) -> None:
        """`address` left both views (or is ours): its back-off goes with it."""
        self.failures.pop(address, None)
        self.retry_at.pop(address, None)


class PeerManager:
    """Dials and redials the active view, learns the passive one, serves inbound."""

    def __init__(
        self,
        *,
        gossip: GossipNode,
        identity_key: IdentityKey,
        community: Community,
        dial: Dialer,
        rng: random.Random,
        config: PeerManagerConfig = DEFAULT_CONFIG,
        limits: TransportLimits = DEFAULT_LIMITS,
        open_channel: OpenChannel = open_secure_stream,
        serve_channel: ServeChannel = serve_secure,
    ) -> None:
        """`open_channel`/`serve_channel` make connections peer streams: the Noise
        channel, except in the simulations' lighter mode (`simulations.plain`)."""
        self._open_channel = open_channel
        self._serve_channel = serve_channel
        self._gossip = gossip
        self._key = identity_key
        self._community = community
        self._dial = dial
        self._rng = rng
        self._config = config
        self._limits = limits
        self._active: list[str] = []
        self._passive: dict[str, IdentityId | None] = {}  # address -> who told us
        self._identities: dict[str, IdentityId] = {}  # address -> who answered there last
        self._sessions: dict[str, trio.CancelScope] = {}  # address -> the session we dialled
        self._explored: set[str] = set()  # active addresses `_explore` added: dialled lazy
        self._own: set[str] = set(config.advertise)  # and addresses that reached ourselves
        self._local = is_local_only(config.advertise)
        self._advertised = config.advertise  # what we share as ours (see set_advertised)
        self._redials = Redials(config, rng)
        self.scores = self._redials.scores  # address -> sessions that ran less failed dials
        self._changed = trio.Event()
        self.replacements = 0
        gossip.exchange = self
        if gossip.identity is None:
            gossip.identity = identity_key.identity

    @property
    def dial_failures(self) -> int:
        """Dials that failed (the handshake included), all addresses together."""
        return self._redials.dial_failures

    @property
    def active(self) -> list[str]:
        """The addresses we keep dialled."""
        return list(self._active)

    @property
    def passive(self) -> list[str]:
        """Known addresses in reserve."""
        return list(self._passive)

    def add_address(self, address: str) -> None:
        """Learn an address to keep a connection to (bootstrap, invite).

        Given by the person running us, so a loopback address is dialled even
        when we are not local; a wildcard or our own address is not."""
        if address in self._active or address in self._own or not is_dialable(address, local=True):
            return
        self._passive.pop(address, None)
        if len(self._active) < self._config.max_active:
            self._active.append(address)
        else:
            self._remember(address, source=None)
        self._changed.set()

    # -- peer exchange (node.gossip.exchange.PeerExchange) -----------------------------------

    def _shareable(self, address: str) -> bool:
        """Worth telling a peer, or trying when a peer told us (hearsay)."""
        return address not in self._own and is_dialable(address, local=self._local)

    def sample(self) -> tuple[str, ...]:
        """Our own addresses and a random sample of the views, for a peer."""
        known = sorted(a for a in {*self._active, *self._passive} if self._shareable(a))
        picked = self._rng.sample(known, min(self._config.share, len(known)))
        own = [a for a in self._advertised if is_dialable(a, local=self._local)]
        return tuple(own + picked)

    def learn(self, addresses: tuple[str, ...], *, source: IdentityId) -> None:
        """Keep (some of) a peer's addresses in the passive view."""
        for address in addresses[: self._config.share]:
            if not self._shareable(address) or address in self._active:
                continue
            if address in self._passive:
                continue
            told = sum(1 for s in self._passive.values() if s == source)
            if told >= self._config.per_source:
                return
            self._remember(address, source=source)
        if len(self._active) < self._config.max_active and self._passive:
            self._changed.set()

    def set_advertised(self, addresses: tuple[str, ...]) -> None:
        """Share `addresses` as ours from now on: those reachability checks
        confirmed (SPEC §15.2), instead of every address we could think of."""
        self._advertised = addresses
        if len(self._own) < _MAX_OWN:
            self._own.update(addresses[:8])

    @property
    def advertised(self) -> tuple[str, ...]:
        """The addresses we share as our own."""
        return self._advertised

    def discovered(self, address: str) -> None:
        """An address a LAN beacon named (`node.net.lan`): hearsay, as peer exchange.

        The LAN layer rate-limits what reaches here; the address is dialled
        soon when the active view has room, and only the handshake confirms it."""
        if not self._shareable(address) or address in self._active or address in self._passive:
            return
        self._remember(address, source=None)
        if len(self._active) < self._config.max_active:
            self._changed.set()

    def _remember(self, address: str, *, source: IdentityId | None) -> None:
        if len(self._passive) >= self._config.max_passive:
            evicted = self._rng.choice(sorted(self._passive))
            del self._passive[evicted]
            self._redials.forget(evicted)  # forgotten: its back-off goes with it
        self._passive[address] = source

    def _promote(self) -> str | None:
        if not self._passive:
            return None
        ranked = sorted(self._passive, key=lambda a: (-self.scores.get(a, 0), a))
        chosen = self._rng.choice(ranked[: self._config.share])
        del self._passive[chosen]
        self._active.append(chosen)
        return chosen

    # -- running ----------------------------------------------------------------------

    async def run(self, listener: trio.abc.Listener[trio.abc.Stream] | None = None) -> None:
        """Maintain the active view (and serve `listener`) until cancelled."""
        async with trio.open_nursery() as nursery:
            if listener is not None:
                nursery.start_soon(self._serve, listener)
            nursery.start_soon(self._explore)
            running: set[str] = set()
            while True:
                while len(self._active) < self._config.max_active and self._promote():
                    pass
                for address in self._active:
                    if address not in running:
                        running.add(address)
                        nursery.start_soon(self._keep, address, running)
                await self._changed.wait()
                self._changed = trio.Event()

    async def _serve(self, listener: trio.abc.Listener[trio.abc.Stream]) -> None:
        async def handler(stream: PeerStream) -> None:
            await self._gossip.run_session(stream, initiator=False)

        await self._serve_channel(
            listener, handler, community=self._community, identity_key=self._key,
            limits=self._limits,
        )  # fmt: skip

    async def _explore(self) -> None:
        """Now and then, swap a random active address for a random passive one.

        Keeps the overlay mixing, and heals partitions: after a split, each
        side's active views fill with its own members, and only a passive
        address from the other side, tried again, reconnects them.

        It leaves the push tree alone: the link it drops is a lazy one when
        there is one (dropping a tree link cuts the tree until a graft repairs
        it), and the link it opens starts lazy (an eager one would close a
        cycle). Swapping tree links every interval kept the tree re-forming:
        1.3-1.6 payload copies per node and attestation among 200 simulated
        members instead of 1.00.
        """
        while True:
            spread = self._rng.uniform(0.5, 1.5)
            await trio.sleep(self._config.explore_interval_s * spread)
            if not self._passive:
                continue
            # An address still backing off would only sit in the view: try another.
            now = trio.current_time()
            ready = [a for a in self._passive if self._redials.retry_at.get(a, 0.0) <= now]
            chosen = self._rng.choice(sorted(ready or self._passive))
            del self._passive[chosen]
            if len(self._active) >= self._config.max_active:
                dropped = self._rng.choice(self._lazy_active() or self._active)
                self._active.remove(dropped)  # its task ends at its next turn
                self._explored.discard(dropped)
                self._remember(dropped, source=None)
                if (session := self._sessions.get(dropped)) is not None:
                    session.cancel()  # close the link we dialled (HyParView's DISCONNECT)
            self._active.append(chosen)
            self._explored.add(chosen)
            self._changed.set()

    def _lazy_active(self) -> list[str]:
        """Active addresses whose connection is outside the push tree (we only announce to it)."""
        lazy = {identity for identity, _, eager in self._gossip.describe_peers() if not eager}
        return [a for a in self._active if self._identities.get(a) in lazy]

    async def _keep(self, address: str, running: set[str]) -> None:
        """Stay connected to `address` until it is replaced: dial, run, back off, repeat."""
        while True:
            if address not in self._active:  # swapped out by `_explore`
                running.discard(address)
                return
            delay = self._redials.retry_at.get(address, 0.0) - trio.current_time()
            if delay > 0:  # still backing off (perhaps from before it was demoted)
                await trio.sleep(delay)
                continue
            known = self._identities.get(address)
            if known is not None and known in self._gossip.peers:
                # Already connected (it dialled us): that link is in the view. Check
                # again later instead of paying a handshake that would be refused.
                self._redials.retry_at[address] = trio.current_time() + self._redials.wait_s(0)
                continue
            outcome = await self._connect_once(address)
            if outcome == "self":
                self._drop_own(address, running)
                return
            failures = self._redials.count(address, outcome)
            if failures >= self._config.replace_after and self._passive:
                self._replace(address, running)
                return

    def _drop_own(self, address: str, running: set[str]) -> None:
        """`address` reached ourselves: never dial it again nor tell anyone about it."""
        if len(self._own) < _MAX_OWN:  # names that reach us are hearsay too: bounded
            self._own.add(address)
        if address in self._active:
            self._active.remove(address)
        self._explored.discard(address)
        running.discard(address)
        self._redials.forget(address)
        self._changed.set()

    def _replace(self, address: str, running: set[str]) -> None:
        if address not in self._active:  # already swapped out by `_explore`
            running.discard(address)
            return
        self._active.remove(address)
        self._explored.discard(address)
        running.discard(address)
        self._remember(address, source=None)
        self.replacements += 1
        self._changed.set()

    async def _connect_once(self, address: str) -> str:
        try:
            raw = await self._dial(address)
            stream = await self._open_channel(
                raw, role=Role.INITIATOR, community=self._community, identity_key=self._key,
                timeout_s=self._limits.handshake_timeout_s,
            )  # fmt: skip
        except (
            OSError, ValueError, RemoteProtocolError, HandshakeTimeoutError,
            trio.BrokenResourceError,
        ):  # fmt: skip
            return "failed"  # addresses are hearsay: a bad one is a failed dial, never a crash
        self._identities[address] = stream.peer
        if stream.peer == self._key.identity:
            await stream.aclose()  # one of our own addresses, learned from a peer
            return "self"
        with trio.CancelScope() as scope:
            self._sessions[address] = scope
            try:
                ran = await self._gossip.run_session(
                    stream, initiator=True, lazy=address in self._explored
                )
            finally:
                del self._sessions[address]
        if scope.cancelled_caught:
            await trio.aclose_forcefully(stream)
            return "ran"
        return "ran" if ran else "duplicate"  # refused: already connected (or banned)
