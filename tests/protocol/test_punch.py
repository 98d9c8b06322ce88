"""The hole-punch coordinator (SPEC §15.4) on its own: two `Punches` over a lossy,
slow "circuit", and one fed hostile messages.

Properties: bounded rounds and dials, never two direct sessions with one peer,
a hard deadline on every punch, only plausible addresses the peer sent are
dialled, each host within its budget whoever names it, and hostile messages
give actions or a `PunchError` with its reason, nothing else.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import random
from collections import defaultdict
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import Reason, RemoteProtocolError
from protocol.punch import (
    Dial,
    Finished,
    Outcome,
    PunchConfig,
    PunchError,
    Punches,
    SendConnect,
    SendSync,
    plausible_addresses,
)
from protocol.wire import MAX_PUNCH_ADDRESSES, PunchConnect, PunchSync

LOW, HIGH = bytes([1]) * 32, bytes([2]) * 32
ADDRESS = {LOW: ("198.51.100.1:7400",), HIGH: ("203.0.113.12:7400", "192.168.2.2:7400")}
CONFIG = PunchConfig()


# -- addresses -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "kept"),
    [
        ("203.0.113.12:7400", True),
        ("198.51.100.1:1", True),
        ("8.8.8.8:65535", True),
        ("192.168.1.2:7400", False),  # behind a NAT: a stranger on our own LAN
        ("10.0.0.1:7400", False),
        ("172.16.0.1:7400", False),
        ("100.64.0.1:7400", False),  # CGNAT
        ("127.0.0.1:7400", False),
        ("169.254.1.1:7400", False),
        ("224.0.0.1:7400", False),
        ("255.255.255.255:7400", False),
        ("0.0.0.0:7400", False),
        ("203.0.113.12:0", False),
        ("203.0.113.12:65536", False),
        ("203.0.113.12:07400", False),  # not canonical decimal
        ("203.0.113.012:7400", False),
        ("[2001:db8::1]:7400", False),  # IPv6: not in this version
        ("example.org:7400", False),  # a name: we resolve nothing for a peer
        ("203.0.113.12", False),
    ],
)
def test_plausible_addresses(address: str, kept: bool) -> None:
    assert plausible_addresses([address]) == ((address,) if kept else ())


def test_plausible_addresses_are_bounded_and_unique() -> None:
    many = [f"203.0.113.{n}:7400" for n in range(1, 10)]
    assert plausible_addresses([many[0], *many]) == tuple(many[:MAX_PUNCH_ADDRESSES])
    assert plausible_addresses(["127.0.0.1:7400"], allow_loopback=True) == ("127.0.0.1:7400",)


@pytest.mark.slow
@given(st.lists(st.text(max_size=40), max_size=20))
def test_plausible_addresses_never_raise(addresses: list[str]) -> None:
    kept = plausible_addresses(addresses)
    assert len(kept) <= MAX_PUNCH_ADDRESSES
    assert set(kept) <= set(addresses)


# -- two coordinators over a lossy circuit -------------------------------------------------


@dataclass
class World:
    """Two members' `Punches`, a circuit with latency and loss, and NATs that let a
    pair of dials through when they start close enough together."""

    rng: random.Random
    loss: float
    nat_ok: float
    latency_s: float = 0.2  # one way, each way (DCUtR's RTT/2 assumes a symmetric path)
    jitter_s: float = 0.1
    now: float = 0.0
    punches: dict[bytes, Punches] = field(default_factory=dict)
    queue: list[tuple[float, int, str, bytes, object]] = field(default_factory=list)
    seq: itertools.count[int] = field(default_factory=itertools.count)
    dials: dict[bytes, list[Dial]] = field(default_factory=lambda: defaultdict(list))
    finished: dict[bytes, list[tuple[float, Finished]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    started: dict[bytes, list[float]] = field(default_factory=lambda: defaultdict(list))
    direct: dict[bytes, int] = field(default_factory=lambda: defaultdict(int))
    sent: dict[bytes, dict[bytes, tuple[str, ...]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for me in (LOW, HIGH):
            self.punches[me] = Punches(identity=me, config=CONFIG)
            self.sent[me] = {}
        self.punches[LOW].open_link(HIGH)
        self.punches[HIGH].open_link(LOW)

    def other(self, me: bytes) -> bytes:
        return HIGH if me == LOW else LOW

    def nonce(self) -> bytes:
        return self.rng.randbytes(8)

    def later(self, delay: float, kind: str, me: bytes, what: object) -> None:
        heapq.heappush(self.queue, (self.now + delay, next(self.seq), kind, me, what))

    def act(self, me: bytes, actions: list[object]) -> None:
        for action in actions:
            if isinstance(action, SendConnect | SendSync):
                if isinstance(action, SendConnect):
                    self.sent[me][action.message.nonce] = action.message.addresses
                    if me == LOW and self.punches[LOW]._links[HIGH].rounds == 1:
                        self.started[me].append(self.now)
                if self.rng.random() >= self.loss:
                    delay = self.latency_s + self.rng.uniform(0, self.jitter_s)
                    self.later(delay, "message", self.other(me), action)
            elif isinstance(action, Dial):
                self.dials[me].append(action)
                peer_sent = self.sent[self.other(me)].get(action.nonce, ())
                assert set(action.addresses) <= set(plausible_addresses(peer_sent))
                self.later(max(0.0, action.at - self.now), "dial", me, action)
            elif isinstance(action, Finished):
                self.finished[me].append((self.now, action))

    def dial_at(self, me: bytes, dial: Dial) -> None:
        """A simultaneous open connects when the other side dials the same round
        within half a second and the NATs cooperate: known half a second after
        our SYN left, at both ends alike."""
        self.later(0.5, "resolve", me, dial)

    def resolve(self, me: bytes, dial: Dial) -> None:
        theirs = [d for d in self.dials[self.other(me)] if d.nonce == dial.nonce]
        together = any(abs(d.at - dial.at) < 0.5 for d in theirs)
        ok = together and self.rng.random() < self.nat_ok
        self.later(self.rng.uniform(0.05, 3.0) if not ok else 0.1, "dialled", me, (dial, ok))

    def step(self) -> bool:
        poll_at = [p.next_deadline() for p in self.punches.values()]
        times = [t for t in poll_at if t is not None]
        if self.queue:
            times.append(self.queue[0][0])
        if not times:
            return False
        self.now = max(self.now, min(times))
        for me, punches in self.punches.items():
            ours = functools.partial(ADDRESS.__getitem__, me)
            self.act(me, list(punches.poll(now=self.now, nonce=self.nonce, ours=ours)))
        while self.queue and self.queue[0][0] <= self.now:
            _, _, kind, me, what = heapq.heappop(self.queue)
            self.deliver(kind, me, what)
        return True

    def deliver(self, kind: str, me: bytes, what: object) -> None:
        punches, peer = self.punches[me], self.other(me)
        if kind == "message":
            assert isinstance(what, SendConnect | SendSync)
            actions = punches.receive(peer, what.message, now=self.now, ours=lambda: ADDRESS[me])
            self.act(me, list(actions))
        elif kind == "dial":
            assert isinstance(what, Dial)
            self.dial_at(me, what)
        elif kind == "resolve":
            assert isinstance(what, Dial)
            self.resolve(me, what)
        elif kind == "dialled":
            assert isinstance(what, tuple)
            dial, ok = what
            assert isinstance(dial, Dial)
            assert isinstance(ok, bool)
            actions = punches.dialled(peer, dial.nonce, now=self.now, direct=ok)
            if any(isinstance(a, Finished) and a.outcome is Outcome.DIRECT for a in actions):
                self.direct[me] += 1
                assert self.direct[me] == 1, "two direct sessions with one peer"
                assert punches.is_direct(peer)
                if self.rng.random() < 0.5:  # the direct session breaks some time later
                    self.later(self.rng.uniform(1, 900), "broke", me, None)
            self.act(me, list(actions))
        elif kind == "broke":
            self.direct[me] -= 1
            punches.direct_ended(peer, now=self.now)


def run_world(
    seed: int, loss: float, nat_ok: float, horizon_s: float, *, jitter_s: float = 0.1
) -> World:
    rng = random.Random(seed)
    world = World(rng=rng, loss=loss, nat_ok=nat_ok, latency_s=rng.uniform(0.005, 2.0),
                  jitter_s=jitter_s)  # fmt: skip
    while world.now < horizon_s and world.step():
        pass
    return world


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    loss=st.sampled_from([0.0, 0.1, 0.5, 1.0]),
    nat_ok=st.sampled_from([0.0, 0.5, 1.0]),
    jitter_s=st.sampled_from([0.1, 3.0]),  # 3 s: one way may take far longer than the other
)
def test_two_coordinators_over_a_lossy_circuit(
    seed: int, loss: float, nat_ok: float, jitter_s: float
) -> None:
    world = run_world(seed, loss, nat_ok, horizon_s=3000.0, jitter_s=jitter_s)
    for me in (LOW, HIGH):
        # Bounded: in any cooldown window, at most max_rounds dials with the peer.
        assert _within([d.at for d in world.dials[me]], CONFIG.cooldown_s, CONFIG.max_rounds)
        assert world.direct[me] <= 1
    # Hard deadline: every punch the initiator started ended by its deadline.
    ends = [t for t, _ in world.finished[LOW]]
    for start in world.started[LOW]:
        done = [t for t in ends if t >= start]
        if world.now - start > CONFIG.deadline_s + 1:
            assert done, start
            assert done[0] - start <= CONFIG.deadline_s + 1e-9
    # Without loss, over a near-symmetric path, with cooperating NATs, the first
    # punch goes direct on both sides, at its first round.
    if loss == 0.0 and nat_ok == 1.0 and jitter_s < 0.5:
        first = world.finished[LOW][0][1]
        assert first.outcome is Outcome.DIRECT
        assert first.rounds == 1
        assert any(f.outcome is Outcome.DIRECT for _, f in world.finished[HIGH])


def test_rtt_sync_puts_both_dials_at_the_same_moment() -> None:
    low, high = Punches(identity=LOW), Punches(identity=HIGH)
    low.open_link(HIGH)
    high.open_link(LOW)
    [connect] = low.poll(now=100.0, nonce=lambda: bytes(8), ours=lambda: ADDRESS[LOW])
    assert isinstance(connect, SendConnect)
    [answer] = high.receive(LOW, connect.message, now=100.4, ours=lambda: ADDRESS[HIGH])
    assert isinstance(answer, SendConnect)
    assert answer.message.addresses == ("203.0.113.12:7400",)  # the private one is not sent
    sync, dial = low.receive(HIGH, answer.message, now=100.8, ours=lambda: ADDRESS[LOW])
    assert isinstance(sync, SendSync)
    assert isinstance(dial, Dial)
    assert dial.at == pytest.approx(101.2)  # RTT 0.8 s: half of it
    [their_dial] = high.receive(LOW, sync.message, now=101.2, ours=lambda: ADDRESS[HIGH])
    assert isinstance(their_dial, Dial)
    assert their_dial.at == pytest.approx(101.2)
    assert their_dial.addresses == ADDRESS[LOW]
    assert low.attempts == high.attempts == 1


def test_a_punch_gives_up_after_its_rounds_and_cools_down() -> None:
    low = Punches(identity=LOW)
    low.open_link(HIGH)
    sends = 0
    now = 0.0
    finished: list[Finished] = []
    while now < CONFIG.cooldown_s - 1:
        for action in low.poll(now=now, nonce=lambda: bytes(8), ours=lambda: ADDRESS[LOW]):
            sends += isinstance(action, SendConnect)
            if isinstance(action, Finished):
                finished.append(action)
        deadline = low.next_deadline()
        assert deadline is not None
        now = max(now, deadline)
    assert 1 <= sends <= CONFIG.max_rounds  # the peer never answers
    assert [f.outcome for f in finished] == [Outcome.FAILED]


# -- hostile messages -------------------------------------------------------------------------

_addresses = st.lists(
    st.sampled_from(["203.0.113.9:7400", "127.0.0.1:22", "10.0.0.1:80", "x:1", "8.8.8.8:53"])
    | st.from_regex(r"[\x21-\x7e]{1,30}", fullmatch=True),
    max_size=MAX_PUNCH_ADDRESSES,
).map(tuple)
_nonces = st.sampled_from([bytes(8), bytes([1]) * 8]) | st.binary(min_size=8, max_size=8)
_messages = st.builds(PunchConnect, nonce=_nonces, addresses=_addresses) | st.builds(
    PunchSync, nonce=_nonces
)
_events = st.tuples(
    st.sampled_from([LOW, HIGH, bytes([3]) * 32]),  # the third never opened a link
    _messages,
    st.floats(0, 50),
    st.booleans(),
)


def _receive_hostile(punches: Punches, peer: bytes, message: PunchConnect | PunchSync, *,
                     now: float, ours: tuple[str, ...]) -> list[object]:  # fmt: skip
    """What `receive` gives: actions, or a typed refusal (then none)."""
    try:
        return list(punches.receive(peer, message, now=now, ours=lambda: ours))
    except RemoteProtocolError as error:
        assert isinstance(error, PunchError)  # noqa: PT017 - the type is the property
        assert error.reason in (Reason.UNEXPECTED_MESSAGE, Reason.QUOTA)  # noqa: PT017
        return []


def _within(times: list[float], window: float, most: int) -> bool:
    """No `window` holds more than `most` of `times`."""
    times = sorted(times)
    return all(len([t for t in times[i:] if t - start < window]) <= most
               for i, start in enumerate(times))  # fmt: skip


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(me=st.sampled_from([LOW, HIGH]), events=st.lists(_events, max_size=40))
def test_hostile_messages_give_actions_or_a_typed_error(
    me: bytes, events: list[tuple[bytes, PunchConnect | PunchSync, float, bool]]
) -> None:
    punches = Punches(identity=me)
    peers = [p for p in (LOW, HIGH) if p != me]
    for peer in peers:
        punches.open_link(peer)
    now = 0.0
    dials: dict[bytes, list[float]] = defaultdict(list)
    host_dials: dict[str, list[float]] = defaultdict(list)
    for peer, message, dt, outcome in events:
        now += dt
        actions: list[object] = []
        if peer != me:
            actions += _receive_hostile(punches, peer, message, now=now, ours=ADDRESS[me])
        actions += punches.poll(now=now, nonce=lambda: bytes([9]) * 8, ours=lambda: ADDRESS[me])
        for action in actions:
            if isinstance(action, Dial):
                assert action.peer in peers  # never for a peer without a link
                sent = message.addresses if isinstance(message, PunchConnect) else None
                if sent is not None and action.peer == peer:
                    assert set(action.addresses) <= set(plausible_addresses(sent))
                assert set(action.addresses) == set(plausible_addresses(action.addresses))
                dials[action.peer].append(now)
                for host in {a.rpartition(":")[0] for a in action.addresses}:
                    host_dials[host].append(now)
                actions += punches.dialled(action.peer, action.nonce, now=now, direct=outcome)
    assert all(_within(times, CONFIG.cooldown_s, CONFIG.max_rounds) for times in dials.values())
    # Amplification: one host, few rounds, whoever names it.
    assert all(_within(t, CONFIG.host_window_s, CONFIG.host_budget) for t in host_dials.values())


def test_a_sync_to_the_initiator_is_refused_and_repeated_refusals_end_the_link() -> None:
    low = Punches(identity=LOW)
    low.open_link(HIGH)
    for _ in range(CONFIG.max_refusals):
        with pytest.raises(PunchError) as caught:
            low.receive(HIGH, PunchSync(nonce=bytes(8)), now=1.0, ours=lambda: ADDRESS[LOW])
        assert caught.value.reason is Reason.UNEXPECTED_MESSAGE
    # Past the refusals, the peer's messages are ignored and no punch starts again.
    assert low.receive(HIGH, PunchSync(nonce=bytes(8)), now=2.0, ours=lambda: ()) == []
    assert low.poll(now=10_000.0, nonce=lambda: bytes(8), ours=lambda: ADDRESS[LOW]) == []
    assert low.refused == CONFIG.max_refusals


def test_a_responder_answers_at_most_max_rounds_per_cooldown_even_across_reconnects() -> None:
    high = Punches(identity=HIGH)
    connect = PunchConnect(nonce=bytes(8), addresses=ADDRESS[LOW])
    for round_ in range(CONFIG.max_rounds):
        high.open_link(LOW)  # the circuit session ends and comes back each time
        actions = high.receive(LOW, connect, now=float(round_), ours=lambda: ADDRESS[HIGH])
        assert isinstance(actions[0], SendConnect)
        high.close_link(LOW)
    high.open_link(LOW)
    with pytest.raises(PunchError) as caught:
        high.receive(LOW, connect, now=5.0, ours=lambda: ADDRESS[HIGH])
    assert caught.value.reason is Reason.QUOTA


def test_one_host_named_by_many_peers_is_dialled_within_its_budget() -> None:
    """Amplification: members cannot, together, make us dial one third party in a loop."""
    high = Punches(identity=bytes([0xFF]) * 32)
    victim = ("198.51.100.77:80",)
    dials = 0
    for n in range(10):
        peer = bytes([n + 1]) * 32
        high.open_link(peer)
        nonce = bytes([n]) * 8
        high.receive(
            peer, PunchConnect(nonce=nonce, addresses=victim), now=n, ours=lambda: ADDRESS[HIGH]
        )
        actions = high.receive(peer, PunchSync(nonce=nonce), now=n + 0.5, ours=lambda: ())
        dials += sum(isinstance(a, Dial) for a in actions)
    assert dials == CONFIG.host_budget


def test_no_punch_without_an_address_of_ours() -> None:
    low = Punches(identity=LOW)
    low.open_link(HIGH)
    [finished] = low.poll(now=0.0, nonce=lambda: bytes(8), ours=lambda: ("192.168.1.2:7400",))
    assert finished == Finished(HIGH, Outcome.NO_ADDRESS, 0)


def test_a_connection_is_expected_only_from_the_addresses_of_a_round_answered_or_dialled() -> None:
    """`expecting` (SPEC §15.4, the listener case): a responder expects the
    initiator's SYN from the moment it answers (the SYN may beat the sync), each
    side while it dials, and nobody before or after."""
    low, high = Punches(identity=LOW), Punches(identity=HIGH)
    low.open_link(HIGH)
    high.open_link(LOW)
    [send] = low.poll(now=0.0, nonce=lambda: bytes(8), ours=lambda: ADDRESS[LOW])
    assert isinstance(send, SendConnect)
    assert low.expecting(ADDRESS[HIGH][0]) is None  # the initiator has no answer yet
    [answer] = high.receive(LOW, send.message, now=0.1, ours=lambda: ADDRESS[HIGH])
    assert isinstance(answer, SendConnect)
    assert high.expecting(ADDRESS[LOW][0]) == LOW  # answered: the SYN may come first
    assert high.expecting("198.51.100.1:7401") is None  # another port: not the round's
    assert high.expected_from(LOW) == ADDRESS[LOW]
    sync, dial = low.receive(HIGH, answer.message, now=0.2, ours=lambda: ADDRESS[LOW])
    assert isinstance(sync, SendSync)
    assert isinstance(dial, Dial)
    # Only the plausible address the responder sent (its LAN address is never dialled).
    assert low.expected_from(HIGH) == ("203.0.113.12:7400",)
    assert low.expecting("192.168.2.2:7400") is None
    low.dialled(HIGH, dial.nonce, now=0.5, direct=True)
    assert low.expected_from(HIGH) == ()  # direct: the round is over
    [high_dial] = high.receive(LOW, sync.message, now=0.3, ours=lambda: ())
    assert isinstance(high_dial, Dial)
    assert high.expecting(ADDRESS[LOW][0]) == LOW
    high.dialled(LOW, high_dial.nonce, now=0.6, direct=False)
    assert high.expecting(ADDRESS[LOW][0]) is None
    assert high.expected_from(bytes([7]) * 32) == ()  # no link at all
    # Two peers whose rounds name one address (LAN neighbours behind one router
    # port): ambiguous, so neither round claims a connection from it.
    other = bytes([0]) * 32
    high.open_link(other)
    high.receive(other, PunchConnect(nonce=bytes(8), addresses=ADDRESS[LOW]), now=1.0,
                 ours=lambda: ADDRESS[HIGH])  # fmt: skip
    assert high.expected_from(other) == ADDRESS[LOW]
    assert high.expecting(ADDRESS[LOW][0]) == other  # LOW's round is over
    high.open_link(LOW)
    high.receive(LOW, PunchConnect(nonce=bytes(8), addresses=ADDRESS[LOW]), now=1.0,
                 ours=lambda: ADDRESS[HIGH])  # fmt: skip
    assert high.expecting(ADDRESS[LOW][0]) is None


def test_the_host_budgets_forget_hosts_once_their_window_is_over() -> None:
    """Each round's peer may name 4 new hosts: the budgets kept must be those of the
    last `host_window_s`, not of every host ever dialled (memory a peer could grow)."""
    high = Punches(identity=bytes([0xFF]) * 32)
    peer = bytes([1]) * 32
    high.open_link(peer)
    now = 0.0
    for n in range(200):  # a fresh round every 10 minutes, 4 fresh hosts each
        now += CONFIG.cooldown_s
        nonce = n.to_bytes(8, "big")
        hosts = tuple(f"198.51.{n % 250}.{k + 1}:7400" for k in range(4))
        high.receive(peer, PunchConnect(nonce=nonce, addresses=hosts), now=now,
                     ours=lambda: ADDRESS[HIGH])  # fmt: skip
        [dial] = high.receive(peer, PunchSync(nonce=nonce), now=now, ours=lambda: ())
        assert isinstance(dial, Dial)
        assert dial.addresses == hosts
        high.dialled(peer, nonce, now=now + 1, direct=False)
    assert len(high._host_rounds) <= 2 * MAX_PUNCH_ADDRESSES  # the memory itself


@pytest.mark.parametrize("reset", ["hello again", "reconnect"])
def test_a_peer_cannot_restart_our_punch_to_make_us_dial_more_hosts(reset: str) -> None:
    """Amplification (SPEC §15.4): as the initiator we dial what the responder names.
    A punch has at most 3 rounds, then 10 minutes of cooldown; a hostile responder
    that answers each round with 4 fresh hosts and then says hello again (or drops and
    reopens the circuit session) must not get a fresh punch at once, each one more
    SYNs to strangers."""
    low = Punches(identity=LOW)
    low.open_link(HIGH)
    hosts: set[str] = set()
    now = 0.0
    for n in range(40):  # one cycle a second, for 40 s
        nonce = functools.partial(n.to_bytes, 8, "big")
        for action in low.poll(now=now, nonce=nonce, ours=lambda: ADDRESS[LOW]):
            if isinstance(action, SendConnect):
                fresh = tuple(f"198.51.{n % 250}.{k + 1}:7400" for k in range(4))
                answer = PunchConnect(nonce=action.message.nonce, addresses=fresh)
                for dial in low.receive(HIGH, answer, now=now + 0.1, ours=lambda: ADDRESS[LOW]):
                    if isinstance(dial, Dial):
                        hosts |= set(dial.addresses)
        if reset == "reconnect":
            low.close_link(HIGH)
        low.open_link(HIGH)
        now += 1.0
    assert len(hosts) <= CONFIG.max_rounds * MAX_PUNCH_ADDRESSES
