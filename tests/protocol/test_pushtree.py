"""The push tree as a state machine (protocol.pushtree), driven without trio or a store.

`_Shell` plays `GossipNode`'s part in a few lines: a set for the store, a float
for the clock, and the same calls in the same order. Hypothesis then throws
announcements, arrivals (through the tree, on request, our own), graft answers
and the passing of time at it, and checks what SPEC §9.3 promises.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.attestation import ID_PREFIX_BYTES
from protocol.pushtree import PushTree, TreeLink, announcements
from protocol.wire import MAX_WANT_IDS, Graft, Graft8, IHave, IHave8, Prune, Want

TIMEOUT = 1.0
LINKS = 4


def _id(n: int) -> bytes:
    return hashlib.sha256(n.to_bytes(4, "big")).digest()


@dataclass
class _Shell:
    """What GossipNode does around the tree, with a set for a store."""

    tree: PushTree
    links: list[TreeLink] = field(default_factory=lambda: [TreeLink() for _ in range(LINKS)])
    store: set[bytes] = field(default_factory=set)
    now: float = 0.0
    # (link, id, when, by prefix) of each announcement we set a deadline for
    announced: list[tuple[int, bytes, float, bool]] = field(default_factory=list)
    grafts: list[tuple[int, float, Graft8 | Graft | Want]] = field(default_factory=list)
    unanswered: list[tuple[int, list[bytes]]] = field(default_factory=list)
    # How each id first arrived, as the test sees it (never forgotten).
    came: dict[bytes, str] = field(default_factory=dict)
    largest_batch: int = 0  # of what `remember` was given at once

    def announce(self, link: int, ids: list[bytes], *, by_prefix: bool) -> None:
        if by_prefix:
            unknown = self.tree.unknown_prefixes([i[:ID_PREFIX_BYTES] for i in ids])
            if unknown:
                self.tree.expect(self.links[link], [], unknown, now=self.now)
            keys = {i[:ID_PREFIX_BYTES]: i for i in ids}
            self.announced += [(link, keys[p], self.now, True) for p in unknown]
        else:
            lacking = [i for i in self.tree.unseen_ids(ids) if i not in self.store]
            if lacking:
                self.tree.expect(self.links[link], lacking, [], now=self.now)
            self.announced += [(link, i, self.now, False) for i in lacking]

    def arrive(self, link: int | None, ids: list[bytes], *, forwarded: bool) -> Prune | None:
        """A batch stored: from `link` (None: our own), pushed or on request."""
        arrivals = self.tree.arrivals(ids)
        unseen = [ids[n] for n in arrivals.unseen]
        held = [(i, i in self.store) for i in unseen]
        self.store.update(unseen)
        self.largest_batch = max(self.largest_batch, len(held))
        how = "own" if link is None else ("tree" if forwarded else "request")
        for i in ids:
            self.came.setdefault(i, how)
        self.tree.remember(held, through_tree=forwarded or link is None)
        if link is None or not forwarded:
            return None
        duplicates = sum(1 for _, before in held if before)
        return self.tree.judge_push(self.links[link], arrivals, duplicates=duplicates)

    def advance(self, until: float, *, answer: bool) -> None:
        """Let time pass to `until`, running each link's graft deadline as it falls due
        (in time order across links, as the timer tasks would)."""
        while True:
            deadlines = [
                (deadline, n)
                for n, link in enumerate(self.links)
                if (deadline := self.tree.graft_deadline(link)) is not None and deadline <= until
            ]
            if not deadlines:
                break
            deadline, n = min(deadlines)
            assert deadline >= self.now  # a timer never fires in the past
            self.now = deadline
            self._due(n, answer=answer)
        self.now = until

    def _due(self, n: int, *, answer: bool) -> None:
        link = self.links[n]
        before = list(link.graft_due)
        ids, prefixes = self.tree.due(link, now=self.now)
        taken = before[: len(before) - len(link.graft_due)]
        assert taken, "a deadline fell due but nothing was taken"
        assert all(deadline <= self.now for deadline, _, _ in taken)  # never early
        assert all(deadline > self.now for deadline, _, _ in link.graft_due)  # all due went
        check = self.tree.graft_check(ids, prefixes, now=self.now)
        lacking = [i for i in check.unheld if i not in self.store]
        messages = self.tree.graft(link, check, lacking, speaks_graft=n % 2 == 0)
        if messages:
            assert link.eager  # a graft puts the link back in the tree
        asked: list[bytes] = []
        for message in messages:
            self.grafts.append((n, self.now, message))
            if isinstance(message, Graft8):
                prefixes_asked = set(message.split())
                asked += [i for i in self.announced_ids() if i[:ID_PREFIX_BYTES] in prefixes_asked]
            else:
                asked += message.ids
        if messages:
            self.unanswered.append((n, asked))
        if answer:
            self.answer_all()

    def answer_all(self) -> None:
        """The announcers answer every graft, as `deliver` (not forwarded)."""
        for n, ids in self.unanswered:
            # The announcer holds what it announced; an id it never had it cannot send.
            self.arrive(n, [i for i in ids if i in self.announced_ids()], forwarded=False)
        self.unanswered.clear()

    def announced_ids(self) -> set[bytes]:
        return {i for _, i, _, _ in self.announced}

    def grafted_keys(self, n_link: int | None = None) -> list[tuple[float, bytes]]:
        keys: list[tuple[float, bytes]] = []
        for n, when, message in self.grafts:
            if n_link is not None and n != n_link:
                continue
            if isinstance(message, Graft8):
                keys += [(when, p) for p in message.split()]
            else:
                keys += [(when, i) for i in message.ids]
        return keys


_ids = st.lists(st.integers(0, 30).map(_id), min_size=1, max_size=6, unique=True)
_Event = tuple[str, object, list[bytes], bool]
_events: st.SearchStrategy[list[_Event]] = st.lists(
    st.one_of(
        st.tuples(st.just("announce"), st.integers(0, LINKS - 1), _ids, st.booleans()),
        st.tuples(st.just("push"), st.integers(0, LINKS - 1), _ids, st.just(True)),
        st.tuples(st.just("request"), st.integers(0, LINKS - 1), _ids, st.just(False)),
        st.tuples(st.just("own"), st.none(), _ids, st.just(True)),
        st.tuples(st.just("wait"), st.floats(0.0, 1.5), st.just([]), st.booleans()),
    ),
    max_size=40,
)


def _run(events: list[_Event], *, max_seen: int) -> _Shell:
    shell = _Shell(PushTree(graft_timeout_s=TIMEOUT, max_seen=max_seen))
    for kind, where, ids, flag in events:
        if kind == "announce":
            assert isinstance(where, int)
            shell.announce(where, ids, by_prefix=flag)
        elif kind == "wait":
            assert isinstance(where, float)
            shell.advance(shell.now + where, answer=flag)
        else:
            assert where is None or isinstance(where, int)
            shell.arrive(where, ids, forwarded=flag)
        seen, prefixes, grafted = shell.tree.sizes()
        if shell.largest_batch <= max_seen // 2:  # as the node's are (see PushTree)
            assert seen <= max_seen
        assert prefixes <= seen
        assert grafted <= max_seen
        for link in shell.links:
            deadlines = [deadline for deadline, _, _ in link.graft_due]
            assert deadlines == sorted(deadlines)  # the head is the next to fall due
            assert all(shell.now < d <= shell.now + TIMEOUT for d in deadlines)  # bounded
    return shell


@pytest.mark.slow
@given(_events)
def test_every_announced_id_is_grafted_or_arrives(
    events: list[_Event],
) -> None:
    """What a peer announces and we lack is grafted (from it or another announcer)
    by its deadline, unless it arrived (SPEC §9.3)."""
    shell = _run(events, max_seen=10_000)
    shell.advance(shell.now + TIMEOUT + 0.5, answer=False)  # every deadline passes
    assert all(link.graft_due == type(link.graft_due)() for link in shell.links)
    grafted = shell.grafted_keys()
    for _, identifier, when, by_prefix in shell.announced:
        if identifier in shell.store and shell.came.get(identifier) != "request":
            continue  # it arrived through the tree (or is our own)
        key = identifier[:ID_PREFIX_BYTES] if by_prefix else identifier
        in_time = [g for g, k in grafted if k in (identifier, key) and when <= g <= when + TIMEOUT]
        if identifier in shell.store:
            # Arrived on request: the tree is cut above us; one graft rejoins it,
            # for this id or another of the same announcements.
            assert any(when <= g <= when + TIMEOUT for g, _ in grafted), identifier.hex()[:16]
        else:
            assert in_time, identifier.hex()[:16]


@pytest.mark.slow
@given(_events)
def test_an_id_is_grafted_at_most_once_per_timeout(
    events: list[_Event],
) -> None:
    """One graft per attestation, not one per announcer: an id grafted again within a
    graft timeout would be a second copy on its way."""
    shell = _run(events, max_seen=10_000)
    shell.advance(shell.now + TIMEOUT + 0.5, answer=False)
    last: dict[bytes, float] = {}
    for when, key in sorted(shell.grafted_keys()):
        assert when - last.get(key, -math.inf) >= TIMEOUT, key.hex()
        last[key] = when


@pytest.mark.slow
@given(_events, st.integers(12, 24))
def test_state_stays_bounded_when_it_forgets(events: list[_Event], max_seen: int) -> None:
    """A small `max_seen`: the tree forgets, bounds hold (checked after each event),
    and what it forgot costs at worst a graft, never a lost announcement."""
    shell = _run(events, max_seen=max_seen)
    shell.advance(shell.now + TIMEOUT + 0.5, answer=False)
    assert all(not link.graft_due for link in shell.links)


@pytest.mark.slow
@given(_events, st.integers(0, LINKS - 1), _ids)
def test_a_tree_link_is_never_pruned_by_answers_to_requests(
    events: list[_Event], link: int, ids: list[bytes]
) -> None:
    """Copies of what came on request (a sync, a graft's answer) say nothing about the
    link that pushes them: it may be the tree's, only slower than the request."""
    shell = _run(events, max_seen=10_000)
    fresh = [i for i in ids if i not in shell.store]
    shell.arrive((link + 1) % LINKS, fresh, forwarded=False)  # they arrive on request first
    off_tree = [i for i in ids if shell.tree.seen_lately(i) is False]
    brand_new = [_id(1000 + n) for n in range(len(ids) // 2)]
    eager = shell.links[link].eager
    assert shell.arrive(link, [*off_tree, *brand_new], forwarded=True) is None
    assert shell.links[link].eager == eager


@pytest.mark.slow
@given(_events, st.integers(0, LINKS - 1), _ids)
def test_a_push_of_tree_copies_prunes_the_link(
    events: list[_Event], link: int, ids: list[bytes]
) -> None:
    """A push of nothing but what already came through the tree prunes its link,
    even a lazy one (a crossed prune and graft)."""
    shell = _run(events, max_seen=10_000)
    ids = [_id(1000 + n) for n in range(len(ids))]  # new to it
    shell.arrive(None, ids, forwarded=True)  # ours, or through the tree: the tree's
    assert all(shell.tree.seen_lately(i) for i in ids)
    assert isinstance(shell.arrive(link, ids, forwarded=True), Prune)
    assert not shell.links[link].eager


@pytest.mark.slow
@given(
    st.integers(0, 20), st.integers(0, 20), st.integers(0, 20), st.integers(0, 20),
)  # fmt: skip
def test_prune_takes_the_majority_of_what_the_tree_brought(
    new: int, tree_copies: int, answered: int, stored_before: int
) -> None:
    """A push prunes exactly when most of it, not counting copies of answers, was copies."""
    tree = PushTree()
    ids = [_id(n) for n in range(new + tree_copies + answered + stored_before)]
    pushed = ids[new : new + tree_copies]
    asked = ids[new + tree_copies : new + tree_copies + answered]
    tree.remember([(i, False) for i in pushed], through_tree=True)
    tree.remember([(i, False) for i in asked], through_tree=False)
    arrivals = tree.arrivals(ids)
    assert arrivals.off_tree == answered
    assert len(arrivals.unseen) == new + stored_before
    link = TreeLink()
    prune = tree.judge_push(link, arrivals, duplicates=stored_before)
    copies, total = tree_copies + stored_before, len(ids) - answered
    assert (prune is not None) == (total > 0 and 2 * copies > total)
    assert link.eager == (prune is None)


def test_an_answer_to_our_graft_makes_the_id_the_trees() -> None:
    tree, link = PushTree(), TreeLink(eager=False)
    x = _id(1)
    tree.expect(link, [x], [], now=0.0)
    ids, prefixes = tree.due(link, now=TIMEOUT)
    check = tree.graft_check(ids, prefixes, now=TIMEOUT)
    assert tree.graft(link, check, check.unheld, speaks_graft=True) == [Graft(ids=(x,))]
    assert link.eager
    tree.remember([(x, False)], through_tree=False)  # the answer: a `deliver`
    assert tree.seen_lately(x) is True  # a later forwarded copy is redundancy


def test_an_id_brought_by_a_sync_is_grafted_once_to_rejoin_the_tree() -> None:
    tree, link = PushTree(), TreeLink(eager=False)
    x, y = _id(1), _id(2)
    tree.expect(link, [x, y], [], now=0.0)
    tree.remember([(x, False), (y, False)], through_tree=False)  # a sync was quicker
    check = tree.graft_check(*tree.due(link, now=TIMEOUT), now=TIMEOUT)
    assert check.unheld == []
    assert tree.graft(link, check, [], speaks_graft=False) == [Want(ids=(x,))]
    assert tree.seen_lately(y) is True  # not grafted again by the next announcer


def test_a_deadline_is_not_due_a_moment_early() -> None:
    tree, link = PushTree(graft_timeout_s=TIMEOUT), TreeLink()
    tree.expect(link, [_id(1)], [], now=5.0)
    assert tree.graft_deadline(link) == 5.0 + TIMEOUT
    assert tree.due(link, now=5.0 + TIMEOUT - 1e-9) == ([], [])
    assert tree.due(link, now=5.0 + TIMEOUT) == ([_id(1)], [])
    assert tree.graft_deadline(link) is None


def test_a_graft8_names_what_we_saw_and_rejoins_the_tree() -> None:
    tree, link = PushTree(), TreeLink(eager=False)
    x = _id(1)
    tree.remember([(x, False)], through_tree=True)
    assert tree.on_graft(link, [x[:ID_PREFIX_BYTES], _id(2)[:ID_PREFIX_BYTES]]) == [x]
    assert link.eager
    PushTree.on_prune(link)
    assert not link.eager


@pytest.mark.slow
@given(
    st.lists(st.booleans(), max_size=30),
    st.booleans(),
    st.booleans(),
    st.floats(0.0, 1.0),
)
def test_forwarding_owes_each_new_id_once_to_a_link(
    roles: list[bool], eager: bool, with_routes: bool, quiet_for: float
) -> None:
    """Each new attestation is owed to a link once: as a payload to an eager link
    (or a child in its issuer's tree), as an id otherwise; a flush takes it all."""
    tree = PushTree(coalesce_s=0.01, announce_delay_s=0.1)
    link = TreeLink(eager=eager, last_push_at=10.0)
    envelopes = [b"envelope %d" % n for n in range(len(roles))]
    ids = [_id(n) for n in range(len(roles))]
    link.owe(envelopes, ids, children=roles if with_routes else None)
    now = 10.0 + quiet_for
    delay = tree.flush_delay(link, now=now)
    pushes, announced = tree.flush(link, now=now + delay)
    expected = roles if with_routes else [eager] * len(roles)
    assert pushes == [e for e, push in zip(envelopes, expected, strict=True) if push]
    assert announced == [i for i, push in zip(ids, expected, strict=True) if not push]
    assert not link.owes()
    if pushes:  # the first payload after a quiet spell goes at once
        # (now - 10.0, not quiet_for: 10.0 + quiet_for rounds, and the tree sees only now)
        assert delay == (0.0 if now - 10.0 >= 0.01 else 0.01)
        assert link.last_push_at == now + delay
    else:
        assert delay == 0.1
        assert link.last_push_at == 10.0


@pytest.mark.parametrize("short_ids", [True, False])
@given(count=st.integers(0, 2 * MAX_WANT_IDS + 1))
@settings(max_examples=10)
def test_announcements_cover_every_id_in_bounded_messages(short_ids: bool, count: int) -> None:
    ids = [_id(n) for n in range(count)]
    messages = announcements(ids, short_ids=short_ids)
    told: list[list[bytes]] = []
    for message in messages:
        assert isinstance(message, IHave8 if short_ids else IHave)
        told.append(message.split() if isinstance(message, IHave8) else list(message.ids))
    assert all(0 < len(part) <= MAX_WANT_IDS for part in told)
    assert [i for part in told for i in part] == [
        i[:ID_PREFIX_BYTES] if short_ids else i for i in ids
    ]
