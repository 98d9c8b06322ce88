"""Reachability checks (SPEC §15.2): peers dial our addresses back and say what reached us.

AutoNAT's idea, with its known failure fixed: a node asks connected peers that
name the capability `dialback` to dial its candidate addresses (`dialback`);
each dials them with a probe (`node.net.dialback`: the handshake as far as the
answering side's identity proof) and says which reached us and where our
connection comes from (`dialback_result`). Verdicts (`node.net.reachability`)
change only when `need` distinct peers agree (no flapping), and only
confirmed addresses are advertised from then on (the peer manager's own
addresses in `peers`). The address a peer observes us at, with our listening
port, becomes a candidate too: that is how a node with a forwarded port on its
router learns its public address.

Answering is bounded, since a dial-back is work done for someone else: a peer's
requests are answered at most 3 times a minute, at most 8 addresses
each, `max_concurrent_probes` probes at once, and only addresses on the host
the asker's connection comes from - a node cannot be made to dial a third party
(AutoNAT's amplification rule).

The gossip session hands us hellos and the two messages (`GossipNode.reachability`).
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import trio

from node.net.addresses import format_address, host_of, is_lan_address
from node.net.dialback import observed_address, probe_identity
from node.net.reachability import State, Verdicts
from protocol.channel import Community
from protocol.errors import RemoteProtocolError
from protocol.identity import IdentityId, IdentityKey
from protocol.wire import (
    DIALBACK_NONCE_BYTES,
    MAX_DIALBACK_ADDRESSES,
    DialBack,
    DialBackResult,
    Message,
)

__all__ = ["CAPABILITY", "Reachability", "ReachabilityConfig"]

CAPABILITY = "dialback"
log = logging.getLogger("trustnode.reachability")
Send = Callable[[Message], Awaitable[None]]
Dialer = Callable[[str], Awaitable[trio.abc.Stream]]
_MAX_OBSERVED = 4  # candidate addresses learned from what peers observe
_MAX_DECLINED = 64  # peers remembered per address as unable to dial it
_GONE = (trio.BrokenResourceError, trio.ClosedResourceError)


class _Gossip(Protocol):
    """What `attach` needs of a `GossipNode`."""

    extensions: list[Any]
    capabilities: tuple[str, ...]

    @property
    def peers(self) -> list[IdentityId]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ReachabilityConfig:
    """How many answers make a verdict, and how often to ask and answer."""

    need: int = 3  # distinct peers that must agree before a verdict changes
    check_interval_s: float = 30.0  # how often we look for peers to ask
    recheck_s: float = 600.0  # a peer is asked again no sooner than this
    answer_timeout_s: float = 30.0  # an unanswered request counts for nothing after this
    probe_timeout_s: float = 5.0
    answer_window_s: float = 60.0  # a peer's requests answered: at most `answer_burst`
    answer_burst: int = 3  # in any `answer_window_s`
    max_concurrent_probes: int = 4


@dataclass(slots=True)
class _Link:
    send: Send
    stream: trio.abc.Stream
    asked_at: float = float("-inf")
    asked_about: frozenset[str] = frozenset()  # a new candidate makes the peer due again


@dataclass(slots=True)
class _Pending:
    peer: IdentityId
    addresses: tuple[str, ...]
    due: float


@dataclass(slots=True)
class _Counters:
    asked: int = 0  # requests we sent
    answers: int = 0  # results we received for our requests
    answered: int = 0  # requests we answered
    refused: int = 0  # requests we did not answer (too soon), unasked results
    probes: int = 0  # dial-backs we made for others
    observed: dict[str, set[IdentityId]] = field(default_factory=dict)


class Reachability:
    """Asks peers to dial us back, answers their requests, keeps the verdicts."""

    def __init__(
        self,
        *,
        identity_key: IdentityKey,
        community: Community,
        dial: Dialer,
        candidates: Callable[[], Sequence[str]],
        listen_port: int | None,
        rng: random.Random,
        config: ReachabilityConfig = ReachabilityConfig(),  # frozen: shared safely
        confirmed_changed: Callable[[tuple[str, ...]], None] | None = None,
        relays: Callable[[], int] | None = None,
        punched: Callable[[], int] | None = None,
    ) -> None:
        """`relays` counts the relays our circuits run through, `punched` our
        hole-punched sessions (`describe` says so)."""
        self._relays = relays
        self._punched = punched
        self._key = identity_key
        self._community = community
        self._dial = dial
        self._candidates = candidates
        self._listen_port = listen_port
        self._rng = rng
        self._config = config
        self._confirmed_changed = confirmed_changed
        self.verdicts = Verdicts(need=config.need)
        self._links: dict[IdentityId, _Link] = {}
        self._pending: dict[bytes, _Pending] = {}
        self._answered_at: dict[IdentityId, list[float]] = {}  # per asker, in the window
        self._limiter = trio.CapacityLimiter(config.max_concurrent_probes)
        self._nursery: trio.Nursery | None = None
        self._wake = trio.Event()
        self._live: Callable[[], Sequence[IdentityId]] = list
        # address -> peers whose latest answer left it out (it is not on our host as
        # they see us): they cannot vote on it, so they do not count towards `need`.
        self._declined: dict[str, set[IdentityId]] = {}
        self.counters = _Counters()

    def attach(self, gossip: _Gossip) -> None:
        """Take `gossip`'s dial-back messages, and name `dialback` in its hello."""
        gossip.extensions.append(self)
        if CAPABILITY not in gossip.capabilities:
            gossip.capabilities = (*gossip.capabilities, CAPABILITY)
        self._live = lambda: gossip.peers

    # -- hooks from the gossip session ------------------------------------------------

    def greeted(self, peer: IdentityId, capabilities: tuple[str, ...],
                stream: trio.abc.Stream, send: Send) -> None:  # fmt: skip
        """A peer's hello arrived on `stream`: remember it if it answers dial-backs."""
        if CAPABILITY in capabilities:
            link = _Link(send=send, stream=stream)
            if (old := self._links.get(peer)) is not None:  # a replaced connection
                link.asked_at, link.asked_about = old.asked_at, old.asked_about
                # A request sent on the connection this one replaces may be lost with it.
                for nonce in [n for n, p in self._pending.items() if p.peer == peer]:
                    del self._pending[nonce]
                    link.asked_at = float("-inf")
            self._links[peer] = link
            self._wake.set()

    def ended(self, peer: IdentityId) -> None:
        """A session ended (its peer may have another: `run` drops links not live)."""

    @staticmethod
    def handles(message: Message) -> bool:
        """Whether `message` is one of ours (the gossip session passes it on)."""
        return isinstance(message, DialBack | DialBackResult)

    async def receive(self, peer: IdentityId, message: Message,
                      stream: trio.abc.Stream, send: Send) -> None:  # fmt: skip
        """A `dialback` or `dialback_result` from `peer` on `stream`."""
        if isinstance(message, DialBack):
            self._on_request(peer, message, stream, send)
        elif isinstance(message, DialBackResult):
            self._on_result(peer, message)
        await trio.lowlevel.checkpoint()

    # -- what we tell the node ----------------------------------------------------------

    @property
    def state(self) -> State:
        """Reachable, behind NAT, or not known yet."""
        return self.verdicts.state

    def describe(self) -> str:
        """The verdict in words, for `trustnode status`."""
        state = self.verdicts.state
        relayed = (
            f"reached through {self._relays()} relays"
            if self._relays is not None
            else "peers reach it only over connections it dials"
        )
        if self._punched is not None and (punched := self._punched()):
            relayed += f"; direct to {punched} by hole punching"
        confirmed = self.verdicts.confirmed
        if state is State.REACHABLE and not all(map(is_lan_address, confirmed)):
            return "reachable at " + ", ".join(confirmed)
        if state is State.REACHABLE:  # only LAN neighbours could dial us
            lan = "reachable on the LAN at " + ", ".join(confirmed)
            if self.verdicts.unreachable:  # and the outside could not
                return f"behind NAT; {lan}; {relayed}"
            return lan
        if state is State.BEHIND_NAT:
            return f"behind NAT; {relayed}"
        able = len(self._able())
        return f"reachability unknown ({able} peer(s) able to check, {self._config.need} needed)"

    def candidates(self) -> tuple[str, ...]:
        """Our addresses worth checking: our own, then those peers observe us at."""
        own = list(dict.fromkeys(self._candidates()))
        observed = sorted(self.counters.observed.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        own += [a for a, _ in observed if a not in own]
        return tuple(own[:MAX_DIALBACK_ADDRESSES])

    # -- running ------------------------------------------------------------------------

    async def run(self) -> None:
        """Ask peers until cancelled, and answer theirs (after `attach`)."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            while True:
                self._expire()
                await self._ask_some()
                with trio.move_on_after(self._config.check_interval_s):
                    await self._wake.wait()
                self._wake = trio.Event()

    def _able(self) -> list[IdentityId]:
        """Live peers that could dial us back: those whose connection shows our host.

        A peer reached over a circuit (SPEC §15.3) sees no host of ours, so it
        dials nothing (the amplification rule); counting it would raise `need`
        with answers that can never come."""
        live = set(self._live())
        return sorted(
            p
            for p, link in self._links.items()
            if p in live and host_of(observed_address(link.stream)) is not None
        )

    def _able_for(self, address: str) -> int:
        """How many peers could answer about `address`: the able ones, less those
        that said they cannot dial it (another host than ours as they see us)."""
        declined = self._declined.get(address, set())
        return sum(1 for p in self._able() if p not in declined)

    def _expire(self) -> None:
        now = trio.current_time()
        for nonce in [n for n, p in self._pending.items() if p.due <= now]:
            unanswered = self._pending.pop(nonce)  # no answer: counts for nothing
            if (link := self._links.get(unanswered.peer)) is not None:
                link.asked_at = float("-inf")  # ask again at the next round
        live = set(self._live())
        for peer in [p for p in self._links if p not in live]:
            del self._links[peer]

    async def _ask_some(self) -> None:
        addresses = self.candidates()
        if not addresses:
            return
        now = trio.current_time()
        waiting = {p.peer for p in self._pending.values()}
        due = [
            p
            for p in self._able()
            if p not in waiting
            and (
                now - self._links[p].asked_at >= self._config.recheck_s
                or not self._links[p].asked_about.issuperset(addresses)
            )
        ]
        due.sort(key=lambda p: (self._links[p].asked_at, p))
        for peer in due[: self._config.need]:
            link = self._links[peer]
            nonce = self._rng.randbytes(DIALBACK_NONCE_BYTES)
            link.asked_at, link.asked_about = now, frozenset(addresses)
            self._pending[nonce] = _Pending(peer, addresses, now + self._config.answer_timeout_s)
            with contextlib.suppress(*_GONE):
                await link.send(DialBack(nonce=nonce, addresses=addresses))
                self.counters.asked += 1

    def _on_result(self, peer: IdentityId, message: DialBackResult) -> None:
        pending = self._pending.get(message.nonce)
        if pending is None or pending.peer != peer:
            self.counters.refused += 1  # not asked for (or asked of someone else)
            return
        del self._pending[message.nonce]
        self.counters.answers += 1
        before = self.verdicts.confirmed
        asked = set(pending.addresses)
        self._note_declined(peer, asked, answered=asked & {*message.reached, *message.failed})
        for address in message.reached:
            if address in asked:
                self.verdicts.record(address, peer, True, able=self._able_for(address))
        for address in message.failed:
            if address in asked:
                self.verdicts.record(address, peer, False, able=self._able_for(address))
        self._learn_observed(peer, message.observed)
        after = self.verdicts.confirmed
        if after != before:
            log.info("reachability: %s", self.describe())
            if self._confirmed_changed is not None:
                self._confirmed_changed(after)

    def _note_declined(self, peer: IdentityId, asked: set[str], *, answered: set[str]) -> None:
        for address in asked:
            declined = self._declined.setdefault(address, set())
            if address in answered:
                declined.discard(peer)
            elif peer not in declined and len(declined) < _MAX_DECLINED:
                declined.add(peer)  # one fewer could vote: the others' answers may suffice
                self.verdicts.reconsider(address, able=self._able_for(address))

    def _learn_observed(self, peer: IdentityId, observed: str) -> None:
        host = host_of(observed) if observed else None
        if host is None or self._listen_port is None:
            return
        candidate = format_address(host, self._listen_port)
        seen = self.counters.observed
        if candidate not in seen and len(seen) >= _MAX_OBSERVED:
            return  # bounded: a liar cannot fill our candidates
        if candidate not in seen:
            self._wake.set()  # a new candidate: ask about it soon
        seen.setdefault(candidate, set()).add(peer)

    # -- answering others ----------------------------------------------------------------

    def _on_request(self, peer: IdentityId, message: DialBack,
                    stream: trio.abc.Stream, send: Send) -> None:  # fmt: skip
        now = trio.current_time()
        window = self._config.answer_window_s
        recent = [t for t in self._answered_at.get(peer, ()) if now - t < window]
        if (
            self._nursery is None
            or peer not in self._links  # its hello did not name `dialback` (SPEC §9.2)
            or len(recent) >= self._config.answer_burst
        ):
            self.counters.refused += 1
            return
        self._answered_at[peer] = [*recent, now]
        observed = observed_address(stream)
        host = host_of(observed) if observed else None
        # Only the asker's own host: we never dial a third party for anyone.
        targets = [a for a in dict.fromkeys(message.addresses) if host and host_of(a) == host]
        self._nursery.start_soon(self._answer, peer, message.nonce, targets, observed, send)

    async def _answer(self, peer: IdentityId, nonce: bytes, targets: list[str],
                      observed: str, send: Send) -> None:  # fmt: skip
        reached: list[str] = []
        failed: list[str] = []
        for address in targets:
            ok = await self._probe(address, peer)
            (reached if ok else failed).append(address)
        self.counters.answered += 1
        result = DialBackResult(
            nonce=nonce, reached=tuple(reached), failed=tuple(failed), observed=observed
        )
        if (link := self._links.get(peer)) is not None:
            send = link.send  # its current connection: the asking one may have been replaced
        with contextlib.suppress(*_GONE):
            await send(result)

    async def _probe(self, address: str, peer: IdentityId) -> bool:
        async with self._limiter:
            self.counters.probes += 1
            with trio.move_on_after(self._config.probe_timeout_s):
                try:
                    stream = await self._dial(address)
                    answered = await probe_identity(
                        stream, community=self._community, identity_key=self._key
                    )
                except (OSError, ValueError, RemoteProtocolError, *_GONE):
                    return False
                return answered == peer
            return False
