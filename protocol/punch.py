"""Hole-punch coordination (SPEC §15.4), sans-I/O: DCUtR's Connect, Connect, Sync.

Two members in session over a relayed circuit (SPEC §15.3) agree on a moment
to open a direct TCP connection to each other at once (a simultaneous open
through both NATs). The member with the smaller identity is the *initiator*:
it sends `punch_connect` with its addresses and notes the time; the other, the
*responder*, answers `punch_connect` with its own (same nonce); the initiator
measures that round trip, sends `punch_sync` and dials half a round trip
later, when the sync reaches the responder, which dials on receiving it. A
round that does not connect is retried, at most `max_rounds` times within
`deadline_s`, each after a growing wait.

`Punches` holds every peer's punch. Like `protocol.pushtree` it takes events
and returns what to do (`SendConnect`, `SendSync`, `Dial`, `Finished`), with
time as an argument (`now`, seconds of the shell's monotonic clock) and nonces
handed in by the shell: it never reads a clock, sleeps, draws randomness or
touches a socket. `next_deadline` says when `poll` has something to do.

Every address a peer sends is hostile. Only plausible ones are dialled
(`plausible_addresses`: IPv4 literals outside loopback, private, link-local,
multicast and reserved ranges, at most `MAX_PUNCH_ADDRESSES`), only during a
round the initiator opened, and each host at most `host_budget` rounds per
`host_window_s` whoever names it: a member cannot make us dial a third party
again and again (amplification). A peer's messages that break the rules raise
`PunchError` (a `RemoteProtocolError` with its reason); the punch with that
peer is then dropped, and after `max_refusals` the link is never punched again.
"""

from __future__ import annotations

import enum
import ipaddress
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from protocol.errors import Reason, RemoteProtocolError
from protocol.wire import MAX_PUNCH_ADDRESSES, PUNCH_NONCE_BYTES, PunchConnect, PunchSync

__all__ = [
    "Dial",
    "Finished",
    "Outcome",
    "PunchConfig",
    "PunchError",
    "Punches",
    "SendConnect",
    "SendSync",
    "plausible_addresses",
]

_NEVER_DIALLED = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
        "172.16.0.0/12", "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4",
    )
)  # fmt: skip
_LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
_MAX_PAST = 1024  # peers whose budgets we remember after their session ended


class PunchError(RemoteProtocolError):
    """A peer's punch message breaks the rules of SPEC §15.4."""


def _plausible(address: str, *, allow_loopback: bool) -> str | None:
    """The host of `address` when we would dial it for a punch, else None."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or port != str(int(port)) or not 1 <= int(port) <= 65535:
        return None
    try:
        ip = ipaddress.IPv4Address(host)  # a literal only: no name lookups for a peer
    except ValueError:
        return None
    if allow_loopback and ip in _LOOPBACK:
        return host
    if str(ip) != host or any(ip in network for network in _NEVER_DIALLED):
        return None
    return host


def plausible_addresses(
    addresses: Iterable[str], *, allow_loopback: bool = False
) -> tuple[str, ...]:
    """The addresses of `addresses` a punch may dial, in order, without repeats, at
    most `MAX_PUNCH_ADDRESSES` (SPEC §15.4).

    A punch crosses NATs between homes: an address behind one (RFC 1918, CGNAT,
    link-local) would reach a stranger on *our* network, and loopback, multicast,
    0/8 and 240/4 never name the peer. `allow_loopback` is for tests on one host.
    Never raises: what is not a plausible IPv4 `host:port` is left out."""
    kept: list[str] = []
    for address in addresses:
        if address not in kept and _plausible(address, allow_loopback=allow_loopback):
            kept.append(address)
        if len(kept) == MAX_PUNCH_ADDRESSES:
            break
    return tuple(kept)


@dataclass(frozen=True, slots=True, kw_only=True)
class PunchConfig:
    """Bounds of SPEC §15.4 (ours; peers may choose smaller ones)."""

    max_rounds: int = 3  # Connect/Connect/Sync exchanges per punch (DCUtR: 3)
    backoff_s: float = 1.0  # before round 2; doubled before each later one
    answer_timeout_s: float = 5.0  # the responder's punch_connect, or the initiator's sync
    dial_timeout_s: float = 15.0  # a round's dialling and handshake
    deadline_s: float = 30.0  # a whole punch, from its first punch_connect
    cooldown_s: float = 600.0  # after a failed punch, before the next with that peer
    # Nothing to dial (no address of ours yet, none of theirs, or over the host
    # budget): no SYN was sent, so we ask again sooner - dial-back may have
    # learned our router's address by then (SPEC §15.2).
    no_address_retry_s: float = 10.0
    max_concurrent: int = 4  # punches in progress at once, with all peers
    host_budget: int = 3  # rounds that may dial one host in `host_window_s`
    host_window_s: float = 600.0
    max_refusals: int = 3  # refused messages after which a link is never punched
    allow_loopback: bool = False  # tests on one host only


@dataclass(frozen=True, slots=True)
class SendConnect:
    """Send `message` (`punch_connect`) to `peer` over its relayed session."""

    peer: bytes
    message: PunchConnect


@dataclass(frozen=True, slots=True)
class SendSync:
    """Send `message` (`punch_sync`) to `peer` over its relayed session."""

    peer: bytes
    message: PunchSync


@dataclass(frozen=True, slots=True)
class Dial:
    """Simultaneous-open `addresses` from our listening port at time `at`; then
    report with `Punches.dialled(peer, nonce, ...)`."""

    peer: bytes
    nonce: bytes
    addresses: tuple[str, ...]
    at: float


class Outcome(enum.Enum):
    """How a punch ended."""

    DIRECT = "direct"  # a direct session replaces the relayed one
    FAILED = "failed"  # every round failed, the deadline passed, or hosts over budget
    NO_ADDRESS = "no_address"  # nothing plausible to dial (yet): asked again soon
    REFUSED = "refused"  # the peer broke the rules
    GONE = "gone"  # the relayed session ended first


@dataclass(frozen=True, slots=True)
class Finished:
    """The punch with `peer` is over; `rounds` exchanges were started."""

    peer: bytes
    outcome: Outcome
    rounds: int


Action = SendConnect | SendSync | Dial | Finished


class _Step(enum.Enum):
    IDLE = "idle"  # no round in progress (a responder waits for punch_connect)
    ANSWER = "answer"  # initiator: our punch_connect sent, waiting for the answer
    SYNC = "sync"  # responder: our answer sent, waiting for punch_sync
    DIALLING = "dialling"  # a Dial handed to the shell, waiting for `dialled`
    BACKOFF = "backoff"  # initiator: the next round waits until `due`
    DIRECT = "direct"  # a direct session runs: nothing more until it ends


@dataclass(slots=True)
class _Link:
    initiator: bool
    step: _Step = _Step.IDLE
    nonce: bytes = b""
    sent_at: float = 0.0
    due: float = 0.0  # when the current step times out (or, in BACKOFF, ends)
    started_at: float | None = None  # the punch's first punch_connect
    rounds: int = 0
    their: tuple[str, ...] = ()  # the plausible addresses of this round
    next_punch_at: float = 0.0  # initiator: cooldown after a failed punch
    answered: deque[float] = field(default_factory=deque)  # responder: rounds answered
    refusals: int = 0


def _deadline(link: _Link, deadline_s: float) -> float:
    if not link.initiator or link.started_at is None:
        return float("inf")
    return link.started_at + deadline_s


class Punches:
    """Every peer's punch: who dials whom, when, and when to give up (SPEC §15.4)."""

    def __init__(self, *, identity: bytes, config: PunchConfig = PunchConfig()) -> None:
        self._identity = identity
        self.config = config
        self._links: dict[bytes, _Link] = {}  # peers in session over a circuit
        self._past: dict[bytes, _Link] = {}  # the budgets of peers whose session ended
        self._direct: set[bytes] = set()  # peers whose punched session runs
        self._host_rounds: dict[str, deque[float]] = {}  # host -> times rounds dialled it
        self.attempts = 0  # rounds dialled (a Dial handed out)
        self.successes = 0  # punches that ended DIRECT
        self.refused = 0  # peer messages refused with PunchError

    # -- links ------------------------------------------------------------------------

    def open_link(self, peer: bytes) -> None:
        """`peer` is in session with us over a circuit and named `punch`: the smaller
        identity initiates (also the Noise initiator on the direct connection).

        A hello again changes nothing, and a punch its last session cut short counts
        as failed (cooldown): else a peer could restart our punch at will, each time
        naming fresh hosts for us to dial."""
        if peer == self._identity:
            raise ValueError("a punch with ourselves")
        if peer in self._links:
            return  # a hello again (or a new session replacing the last): nothing changes
        link = self._past.pop(peer, None)
        fresh = _Link(initiator=self._identity < peer)
        if link is not None:  # a new circuit session keeps the peer's budgets
            fresh.next_punch_at, fresh.answered, fresh.refusals = (
                link.next_punch_at, link.answered, link.refusals,
            )  # fmt: skip
            if link.started_at is not None:  # a punch cut short counts as one that failed
                fresh.next_punch_at = max(
                    fresh.next_punch_at, link.started_at + self.config.cooldown_s
                )
        if peer in self._direct:
            fresh.step = _Step.DIRECT
        self._links[peer] = fresh

    def close_link(self, peer: bytes) -> list[Action]:
        """The relayed session with `peer` ended (or a direct one replaced it)."""
        link = self._links.pop(peer, None)
        if link is None:
            return []
        # Budgets outlive the session, or a peer could reset them by reconnecting.
        self._past[peer] = link
        while len(self._past) > _MAX_PAST:
            del self._past[next(iter(self._past))]
        if link.step in (_Step.IDLE, _Step.DIRECT, _Step.DIALLING):
            # A dial under way concludes the punch (`dialled`): the relayed session
            # may end first because the far end, done sooner, replaced it.
            return []
        rounds = link.rounds
        if link.started_at is not None:  # else reconnecting would restart the punch at once
            link.next_punch_at = max(link.next_punch_at, link.started_at + self.config.cooldown_s)
        link.step, link.started_at, link.rounds = _Step.IDLE, None, 0
        return [Finished(peer, Outcome.GONE, rounds)] if link.initiator else []

    def is_direct(self, peer: bytes) -> bool:
        """Whether a punch with `peer` ended in a direct session still running."""
        return peer in self._direct

    def expected_from(self, peer: bytes) -> tuple[str, ...]:
        """The addresses a direct connection from `peer` may come from now: those of a
        round we answered (waiting for the sync: its SYN may beat the sync, which
        crosses the circuit) or are dialling; else none."""
        link = self._links.get(peer)
        if link is None or link.step not in (_Step.SYNC, _Step.DIALLING):
            return ()
        return link.their

    def expecting(self, address: str) -> bytes | None:
        """The peer whose round may bring a connection from `address` (`host:port`),
        if any: a SYN that reached our listener instead of our dialling socket (no
        NAT between us, or one that lets it in) belongs to that punch (SPEC §15.4).
        None too when two peers' rounds name it (two members behind one router
        port): which one it is, only a handshake could tell."""
        peers = [peer for peer in self._links if address in self.expected_from(peer)]
        return peers[0] if len(peers) == 1 else None

    @property
    def in_progress(self) -> int:
        """Punches under way (any step but idle and direct)."""
        return sum(
            1 for link in self._links.values() if link.step not in (_Step.IDLE, _Step.DIRECT)
        )

    # -- time ----------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """The earliest time `poll` has something to do, or None."""
        busy = [
            link for link in self._links.values() if link.step not in (_Step.IDLE, _Step.DIRECT)
        ]
        times = [min(link.due, _deadline(link, self.config.deadline_s)) for link in busy]
        if len(busy) < self.config.max_concurrent:  # else the next is a punch ending
            times += [
                link.next_punch_at
                for link in self._links.values()
                if link.initiator
                and link.step is _Step.IDLE
                and link.refusals < self.config.max_refusals
            ]
        return min(times, default=None)

    def poll(self, *, now: float, nonce: Callable[[], bytes],
             ours: Callable[[], Sequence[str]]) -> list[Action]:  # fmt: skip
        """Time out what is late, start due rounds and punches. `nonce` gives a fresh
        random 8-byte nonce; `ours`, our punch addresses (SPEC §15.4)."""
        actions: list[Action] = []
        for peer, link in list(self._links.items()):
            if link.initiator and self._overdue(link, now=now):
                actions += self._finish(peer, link, Outcome.FAILED, now=now)
            elif link.step in (_Step.ANSWER, _Step.SYNC, _Step.DIALLING) and now >= link.due:
                actions += self._round_failed(peer, link, now=now)
        for peer, link in list(self._links.items()):
            if link.initiator and self._due(link, now=now):
                actions += self._start_round(peer, link, now=now, nonce=nonce(), ours=ours())
        return actions

    def _overdue(self, link: _Link, *, now: float) -> bool:
        """A punch past its deadline, whatever step it is at (the deadline is hard)."""
        return (
            link.step in (_Step.ANSWER, _Step.DIALLING, _Step.BACKOFF)
            and link.started_at is not None
            and now >= link.started_at + self.config.deadline_s
        )

    def _due(self, link: _Link, *, now: float) -> bool:
        if link.refusals >= self.config.max_refusals:
            return False
        if link.step is _Step.BACKOFF:
            return now >= link.due
        return (
            link.step is _Step.IDLE
            and now >= link.next_punch_at
            and self.in_progress < self.config.max_concurrent
        )

    # -- the initiator ---------------------------------------------------------------------

    def _start_round(self, peer: bytes, link: _Link, *, now: float, nonce: bytes,
                     ours: Sequence[str]) -> list[Action]:  # fmt: skip
        if len(nonce) != PUNCH_NONCE_BYTES:
            raise ValueError("a punch nonce has 8 bytes")
        if link.started_at is None:
            link.started_at, link.rounds = now, 0
        if now - link.started_at >= self.config.deadline_s:
            return self._finish(peer, link, Outcome.FAILED, now=now)
        addresses = plausible_addresses(ours, allow_loopback=self.config.allow_loopback)
        if not addresses:
            return self._finish(peer, link, Outcome.NO_ADDRESS, now=now)
        link.rounds += 1
        link.step, link.nonce, link.sent_at = _Step.ANSWER, nonce, now
        link.due = now + self.config.answer_timeout_s
        return [SendConnect(peer, PunchConnect(nonce=nonce, addresses=addresses))]

    def _on_answer(
        self, peer: bytes, link: _Link, message: PunchConnect, *, now: float
    ) -> list[Action]:
        if link.step is not _Step.ANSWER or message.nonce != link.nonce:
            return []  # a late answer to a round that timed out: stale, not hostile
        rtt = now - link.sent_at
        their = self._within_budget(message.addresses, now=now)
        if not their:
            # None at all: the peer may learn its router's address soon. Only hosts
            # over their budget: asking again in 10 s would change nothing.
            plausible = plausible_addresses(
                message.addresses, allow_loopback=self.config.allow_loopback
            )
            outcome = Outcome.FAILED if plausible else Outcome.NO_ADDRESS
            return self._finish(peer, link, outcome, now=now)
        self._dialling(link, their, now=now)
        return [
            SendSync(peer, PunchSync(nonce=link.nonce)),
            Dial(peer, link.nonce, their, at=now + rtt / 2),  # when the sync arrives there
        ]

    # -- the responder -------------------------------------------------------------------

    def _on_opening(self, peer: bytes, link: _Link, message: PunchConnect, *, now: float,
                    ours: Sequence[str]) -> list[Action]:  # fmt: skip
        window = self.config.cooldown_s
        while link.answered and now - link.answered[0] >= window:
            link.answered.popleft()
        if link.step is _Step.DIRECT:
            return []  # in flight while the circuit closes: stale
        # While we dial, a new round means the initiator gave up on the last one: we
        # take the new one (a late `dialled` of the old nonce is then ignored).
        mine = plausible_addresses(ours, allow_loopback=self.config.allow_loopback)
        their = plausible_addresses(message.addresses, allow_loopback=self.config.allow_loopback)
        answer = SendConnect(peer, PunchConnect(nonce=message.nonce, addresses=mine))
        if not mine or not their:
            link.step = _Step.IDLE  # we answer (so the initiator stops), but dial nothing
            return [answer]
        # Only rounds that may dial count: an answer without a dial costs one message.
        if len(link.answered) >= self.config.max_rounds:
            self._refuse(
                link, Reason.QUOTA, f"over {self.config.max_rounds} rounds in {window:g} s"
            )
        link.answered.append(now)
        link.rounds = 1  # a responder's rounds are one at a time; `answered` bounds them
        link.step, link.nonce, link.their = _Step.SYNC, message.nonce, their
        link.due = now + self.config.answer_timeout_s
        return [answer]

    def _on_sync(self, peer: bytes, link: _Link, message: PunchSync, *, now: float) -> list[Action]:
        if link.initiator:
            self._refuse(link, Reason.UNEXPECTED_MESSAGE, "punch_sync sent to the initiator")
        if link.step is not _Step.SYNC or message.nonce != link.nonce:
            return []  # a sync for a round we gave up on: stale
        their = self._within_budget(link.their, now=now)
        if not their:
            link.step = _Step.IDLE  # over the host budget: the initiator's round times out
            return []
        self._dialling(link, their, now=now)
        return [Dial(peer, link.nonce, their, at=now)]

    # -- messages ---------------------------------------------------------------------------

    def receive(self, peer: bytes, message: PunchConnect | PunchSync, *, now: float,
                ours: Callable[[], Sequence[str]]) -> list[Action]:  # fmt: skip
        """A punch message from `peer`; what to do. From a peer without an open link
        (not over a circuit, or its hello did not name `punch`) it is ignored.

        Raises:
            PunchError: `unexpected_message` (a `punch_sync` to the initiator, which
                only sends them), `quota` (more rounds than `max_rounds` per
                `cooldown_s`).
                The punch with that peer is over (the shell may log it).
        """
        link = self._links.get(peer)
        if link is None or link.refusals >= self.config.max_refusals:
            return []
        try:
            if isinstance(message, PunchSync):
                return self._on_sync(peer, link, message, now=now)
            if link.initiator:
                return self._on_answer(peer, link, message, now=now)
            return self._on_opening(peer, link, message, now=now, ours=ours())
        except PunchError:
            self.refused += 1
            if link.step is not _Step.DIRECT:
                self._finish(peer, link, Outcome.REFUSED, now=now)
            raise

    def dialled(self, peer: bytes, nonce: bytes, *, now: float, direct: bool) -> list[Action]:
        """What the shell's `Dial` came to: `direct` when a connection opened and its
        handshake proved `peer` (the session is then the direct one)."""
        link = self._links.get(peer) or self._past.get(peer)
        if link is None or link.step is not _Step.DIALLING or nonce != link.nonce:
            return []  # late: the round timed out, or a later one replaced it
        if direct:
            if peer in self._direct:
                raise AssertionError("two direct sessions with one peer")
            self.successes += 1
            self._direct.add(peer)
            return self._finish(peer, link, Outcome.DIRECT, now=now)
        return self._round_failed(peer, link, now=now)

    def direct_ended(self, peer: bytes, *, now: float) -> None:
        """The direct session with `peer` ended: a later circuit may punch again, after
        the cooldown (a link that breaks at once is not worth punching in a loop)."""
        self._direct.discard(peer)
        for table in (self._links, self._past):
            if (link := table.get(peer)) is not None and link.step is _Step.DIRECT:
                link.step, link.next_punch_at = _Step.IDLE, now + self.config.cooldown_s

    # -- helpers ------------------------------------------------------------------------------

    def _dialling(self, link: _Link, their: tuple[str, ...], *, now: float) -> None:
        link.step, link.their = _Step.DIALLING, their
        link.due = now + self.config.dial_timeout_s
        self.attempts += 1
        for host in {a.rpartition(":")[0] for a in their}:
            self._host_rounds.setdefault(host, deque()).append(now)

    def _within_budget(self, addresses: Sequence[str], *, now: float) -> tuple[str, ...]:
        """The plausible addresses whose host has rounds left in its window."""
        # Every host's window moves on, not only those named now: a host dialled once
        # and never named again is forgotten once its window is over, so the table
        # holds the hosts dialled in the last `host_window_s` (a peer names 4 new
        # ones per round), not every host ever dialled.
        window = self.config.host_window_s
        for host, times in list(self._host_rounds.items()):
            while times and now - times[0] >= window:
                times.popleft()
            if not times:
                del self._host_rounds[host]
        plausible = plausible_addresses(addresses, allow_loopback=self.config.allow_loopback)
        budget = self.config.host_budget
        return tuple(
            a for a in plausible if len(self._host_rounds.get(a.rpartition(":")[0], ())) < budget
        )

    def _round_failed(self, peer: bytes, link: _Link, *, now: float) -> list[Action]:
        if not link.initiator:
            link.step, link.rounds = _Step.IDLE, 0  # the initiator decides what comes next
            return []
        assert link.started_at is not None
        wait = self.config.backoff_s * 2 ** (link.rounds - 1)
        if (
            link.rounds >= self.config.max_rounds
            or now + wait - link.started_at >= self.config.deadline_s
        ):
            return self._finish(peer, link, Outcome.FAILED, now=now)
        link.step, link.due = _Step.BACKOFF, now + wait
        return []

    def _finish(self, peer: bytes, link: _Link, outcome: Outcome, *, now: float) -> list[Action]:
        rounds = link.rounds
        link.step = _Step.DIRECT if outcome is Outcome.DIRECT else _Step.IDLE
        link.started_at, link.rounds, link.nonce, link.their = None, 0, b"", ()
        if outcome is Outcome.NO_ADDRESS:
            link.next_punch_at = now + self.config.no_address_retry_s
        elif outcome is not Outcome.DIRECT:
            link.next_punch_at = now + self.config.cooldown_s
        return [Finished(peer, outcome, rounds)]

    def _refuse(self, link: _Link, reason: Reason, detail: str) -> None:
        link.refusals += 1
        raise PunchError(reason, detail)
