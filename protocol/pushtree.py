"""The push tree (Plumtree, SPEC §9.3), sans-I/O: who is pushed a new attestation,
who is told its id, when an announcement turns into a graft and when a link is pruned.

A new attestation travels as a payload (`push`) on *eager* links and as an id
(`ihave`, `ihave8`) on *lazy* ones; a push that brings mostly copies makes the
receiver `prune` that link, and an announced id that has not come through the
tree one graft timeout later makes it `graft` the announcer (Leitão, Pereira,
Rodrigues, SRDS 2007). Between peers that exchange routes (SPEC §9.4) the
shell passes each batch's source-tree roles in; the rest is this module's.

`TreeLink` is one link's place in the tree and what forwarding owes it;
`PushTree` is what a node remembers across links (the ids it saw lately, how
each came, what it grafted). Like `protocol.sync` and `protocol.routes` they
take events and return what to send, with time as an argument (`now`, in
seconds of the shell's monotonic clock): they never read a clock, sleep, draw
randomness or touch a store. Where a decision needs the store (does it hold
these ids?), a method returns the question and a second one takes the answer,
so the shell may wait on the store in between, as it always has. Deadlines
come back as values (`flush_delay`, `graft_deadline`); the shell sleeps.

What a tree remembers is bounded: `max_seen` ids seen (the oldest half goes
when full, and the prefix index with them), as long as one batch given to
`remember` is at most half of that (the node's are 200 to 2 000 of 200 000),
and as many grafted keys (forgotten at once when full: answers that never
came). A link's graft deadlines are what its peer announced in the last graft
timeout (and what the shell reads from a peer is rate-limited).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from protocol.attestation import ID_PREFIX_BYTES, is_naming_envelope
from protocol.wire import MAX_WANT_IDS, Graft, Graft8, IHave, IHave8, Prune, Want

__all__ = [
    "DEFAULT_MAX_SEEN",
    "Arrivals",
    "GraftCheck",
    "PushTree",
    "TreeLink",
    "announcements",
]

DEFAULT_MAX_SEEN = 200_000


@dataclass(slots=True)
class TreeLink:
    """One link's place in the push tree, and what forwarding owes it.

    `eager`: we push payloads to this peer (else we announce ids to it). The
    pending lists are what forwarding owes it, sent together shortly (see
    `PushTree.flush_delay`); `graft_due` is what it announced that we look at
    again later: (deadline, ids, prefixes), in the order they came, which is
    also the order they fall due (one timeout for all). `takes_naming`: the
    peer named `names` in its hello (SPEC §9.2); else naming records are owed
    to it neither as payloads nor as ids (an id it could never get would only
    cost it a graft, and the answer would leave the record out).
    """

    eager: bool = True
    takes_naming: bool = True
    pending_push: list[bytes] = field(default_factory=list)
    pending_ihave: list[bytes] = field(default_factory=list)
    last_push_at: float = -math.inf  # when we last forwarded payloads on it
    graft_due: deque[tuple[float, list[bytes], list[bytes]]] = field(default_factory=deque)

    def owe(
        self, envelopes: Sequence[bytes], ids: Sequence[bytes], *, children: Sequence[bool] | None
    ) -> None:
        """Owe new `envelopes` (with their `ids`) to this link: payloads if it is a
        child of their issuers' trees (`children`, one per envelope, from the
        route table), else, without routes, if it is eager; ids otherwise."""
        if not self.takes_naming:
            kept = [n for n, e in enumerate(envelopes) if not is_naming_envelope(e)]
            if len(kept) < len(envelopes):
                envelopes = [envelopes[n] for n in kept]
                ids = [ids[n] for n in kept]
                children = None if children is None else [children[n] for n in kept]
        if children is not None:
            for envelope, identifier, child in zip(envelopes, ids, children, strict=True):
                if child:
                    self.pending_push.append(envelope)
                else:
                    self.pending_ihave.append(identifier)
        elif self.eager:
            self.pending_push += envelopes
        else:
            self.pending_ihave += ids

    def owes(self) -> bool:
        """Whether forwarding owes this link anything."""
        return bool(self.pending_push or self.pending_ihave)


@dataclass(frozen=True, slots=True)
class Arrivals:
    """A batch of ids as it arrives, before the store sees it.

    `unseen`: the indices of those not seen lately (only they need the store);
    `off_tree`: how many were seen lately but came on request, not through the
    tree (a copy of those says nothing about the link that brings it).
    """

    count: int
    unseen: list[int]
    off_tree: int


@dataclass(frozen=True, slots=True)
class GraftCheck:
    """What an announcer's due announcements leave to ask the store (`unheld`),
    taken at `now`, before the store answers (see `PushTree.graft_check`)."""

    now: float
    ids: list[bytes]  # announced ids, and those the announced prefixes now name
    unresolved: list[bytes]  # announced prefixes still unknown and not grafted lately
    unheld: list[bytes]  # of `ids`, those not seen lately: does the store hold them?


def announcements(ids: Sequence[bytes], *, short_ids: bool) -> list[IHave | IHave8]:
    """The messages that announce `ids` to a peer: by 8-byte prefix (`ihave8`)
    where it speaks it (`short_ids`), else whole; at most `MAX_WANT_IDS` each."""
    messages: list[IHave | IHave8] = []
    for start in range(0, len(ids), MAX_WANT_IDS):
        chunk = tuple(ids[start : start + MAX_WANT_IDS])
        messages.append(
            IHave8(prefixes=b"".join(i[:ID_PREFIX_BYTES] for i in chunk))
            if short_ids
            else IHave(ids=chunk)
        )
    return messages


class PushTree:
    """A node's side of the push tree across all its links (SPEC §9.3).

    Feed it what arrives (`arrivals`, then `remember` once stored), what peers
    announce (`unseen_ids`/`unknown_prefixes`, then `expect`) and the graft
    deadlines as they fall due (`due`, `graft_check`, `graft`); it answers with
    prunes, grafts and what to flush to each link.
    """

    def __init__(
        self,
        *,
        graft_timeout_s: float = 1.0,
        coalesce_s: float = 0.01,
        announce_delay_s: float = 0.1,
        max_seen: int = DEFAULT_MAX_SEEN,
    ) -> None:
        self.graft_timeout_s = graft_timeout_s
        self.coalesce_s = coalesce_s
        self.announce_delay_s = announce_delay_s
        self._max_seen = max_seen
        # Ids held lately, oldest first, and whether each came through the push
        # tree (forwarded, our own, or what our graft brought) rather than on request.
        self._seen: dict[bytes, bool] = {}
        self._seen_prefix: dict[bytes, bytes] = {}  # 8-byte prefix -> id, for ids in _seen
        self._grafted: dict[bytes, float] = {}  # ids (or prefixes) grafted, awaited -> when

    # -- what arrives ------------------------------------------------------

    def arrivals(self, ids: Sequence[bytes]) -> Arrivals:
        """Sort a batch that arrived: copies of what we saw lately need no store."""
        seen = self._seen
        unseen = [n for n, i in enumerate(ids) if i not in seen]
        # Copies of what came on request (a sync, a graft) say nothing about this
        # link: it may be the tree's and simply slower than the request was.
        off_tree = sum(1 for i in ids if seen.get(i) is False)
        return Arrivals(count=len(ids), unseen=unseen, off_tree=off_tree)

    def remember(self, held: Iterable[tuple[bytes, bool]], *, through_tree: bool) -> None:
        """Ids the store holds now: (id, it held it before), for what it did not refuse.

        `through_tree`: they were forwarded to us, or are our own. Held before
        (a duplicate) counts as the tree's too: a forwarded copy of something
        old is redundancy on that link. So does what our own graft brought:
        that link is the tree's now.
        """
        seen, seen_prefix, grafted = self._seen, self._seen_prefix, self._grafted
        for identifier, duplicate in held:
            prefix = identifier[:ID_PREFIX_BYTES]
            # Both pops, always: an answer to a graft by id or by prefix settles both.
            was_grafted = grafted.pop(identifier, None) is not None
            was_grafted = grafted.pop(prefix, None) is not None or was_grafted
            seen[identifier] = through_tree or was_grafted or duplicate
            seen_prefix[prefix] = identifier
        if len(seen) > self._max_seen:
            for old in list(seen)[: self._max_seen // 2]:
                del seen[old]
                if seen_prefix.get(old[:ID_PREFIX_BYTES]) == old:
                    del seen_prefix[old[:ID_PREFIX_BYTES]]

    def judge_push(self, link: TreeLink, arrivals: Arrivals, *, duplicates: int) -> Prune | None:
        """Plumtree's PRUNE: a push on `link` that brought mostly copies makes it lazy.

        `duplicates`: how many of the unseen ones the store held already.
        Copies of what came on request do not count either way. Even when the
        link is lazy already we prune: a PRUNE and a GRAFT that crossed leave
        it eager to us alone, and only a PRUNE ends its copies.
        """
        total = arrivals.count - arrivals.off_tree
        copies = total - len(arrivals.unseen) + duplicates
        if total <= 0 or 2 * copies <= total:  # with batched pushes: the majority
            return None
        link.eager = False
        return Prune()

    # -- what we forward ---------------------------------------------------

    def flush_delay(self, link: TreeLink, *, now: float) -> float:
        """How long what `link` is owed waits, from `now`, to go together.

        Payloads go soon (latency): the first after a quiet spell at once (each
        hop's wait would add up along the tree), those right behind it after
        `coalesce_s`. Announcements only matter when the eager path failed
        (graft after `graft_timeout_s`), so they wait longer and batch more.
        """
        if link.pending_push:
            return 0.0 if now - link.last_push_at >= self.coalesce_s else self.coalesce_s
        return self.announce_delay_s

    def flush(self, link: TreeLink, *, now: float) -> tuple[list[bytes], list[bytes]]:
        """Take what `link` is owed: (envelopes to push, ids to announce)."""
        pushes, link.pending_push = link.pending_push, []
        announced, link.pending_ihave = link.pending_ihave, []
        if pushes:
            link.last_push_at = now
        return pushes, announced

    # -- what peers announce -----------------------------------------------

    def unseen_ids(self, ids: Iterable[bytes]) -> list[bytes]:
        """Of announced ids, those not seen lately: the store says which we lack."""
        return [i for i in ids if i not in self._seen]

    def unknown_prefixes(self, prefixes: Iterable[bytes]) -> list[bytes]:
        """Of announced prefixes, those not seen lately: taken as missing.

        Attestations announced are new, so we do not ask the store (which has
        no prefix index); the rare old one costs a graft answered with a copy.
        """
        return [p for p in prefixes if p not in self._seen_prefix]

    def expect(
        self, link: TreeLink, ids: list[bytes], prefixes: list[bytes], *, now: float
    ) -> None:
        """What `link`'s peer announced and we lack: look again one graft timeout
        from `now` (`graft_deadline`, `due`)."""
        link.graft_due.append((now + self.graft_timeout_s, ids, prefixes))

    @staticmethod
    def graft_deadline(link: TreeLink) -> float | None:
        """When `link`'s next announcements fall due (None: none are waiting)."""
        return link.graft_due[0][0] if link.graft_due else None

    @staticmethod
    def due(link: TreeLink, *, now: float) -> tuple[list[bytes], list[bytes]]:
        """Take every announcement of `link` due by `now`: (ids, prefixes), together."""
        due = link.graft_due
        ids: list[bytes] = []
        prefixes: list[bytes] = []
        while due and due[0][0] <= now:
            _, more_ids, more_prefixes = due.popleft()
            ids += more_ids
            prefixes += more_prefixes
        return ids, prefixes

    def graft_check(self, ids: list[bytes], prefixes: list[bytes], *, now: float) -> GraftCheck:
        """First half of a graft decision, on announcements due at `now`: which of
        their ids must the store be asked about (`GraftCheck.unheld`)?"""
        prefixes = list(dict.fromkeys(prefixes))
        seen_prefix, grafted, timeout = self._seen_prefix, self._grafted, self.graft_timeout_s
        ids = [*ids, *(seen_prefix[p] for p in prefixes if p in seen_prefix)]
        ids = list(dict.fromkeys(ids))
        unresolved = [
            p
            for p in prefixes
            if p not in seen_prefix and now - grafted.get(p, -math.inf) >= timeout
        ]
        # What arrived meanwhile is held (`_seen`): only the rest needs the store.
        unheld = [i for i in ids if i not in self._seen]
        return GraftCheck(now=now, ids=ids, unresolved=unresolved, unheld=unheld)

    def graft(
        self, link: TreeLink, check: GraftCheck, lacking: Sequence[bytes], *, speaks_graft: bool
    ) -> list[Graft8 | Graft | Want]:
        """Second half: given which of `check.unheld` the store lacks, GRAFT `link`
        for what has not arrived through the tree (empty: nothing to graft).

        Arrived on request instead (a sync session was quicker) counts as not
        arrived: the tree is cut above us all the same, and without a graft
        anti-entropy would keep feeding our part of it for ever. Each id is
        grafted from one announcer (the first whose deadline passes); another
        announcer's deadline grafts it again only if that graft went unanswered
        for a whole timeout (the first announcer may have gone). A peer that
        does not speak `graft` (`speaks_graft`) is sent `want` instead.
        """
        now, grafted, timeout = check.now, self._grafted, self.graft_timeout_s
        lacking = [i for i in lacking if now - grafted.get(i, -math.inf) >= timeout]
        off_tree = [i for i in check.ids if self._seen.get(i) is False]
        unresolved = check.unresolved
        if not lacking and not off_tree and not unresolved:
            return []
        for identifier in off_tree:
            self._seen[identifier] = True  # one graft per attestation, not one per announcer
        for key in [*lacking, *unresolved]:
            grafted[key] = now
        if len(grafted) > self._max_seen:  # answers that never came (the peer left)
            grafted.clear()
        link.eager = True
        # It announced by prefix, so it speaks `graft8`.
        messages: list[Graft8 | Graft | Want] = [
            Graft8(prefixes=b"".join(unresolved[start : start + MAX_WANT_IDS]))
            for start in range(0, len(unresolved), MAX_WANT_IDS)
        ]
        wanted = lacking or off_tree[:1]
        for start in range(0, len(wanted), MAX_WANT_IDS):
            chunk = tuple(wanted[start : start + MAX_WANT_IDS])
            messages.append(Graft(ids=chunk) if speaks_graft else Want(ids=chunk))
        return messages

    # -- what peers ask ----------------------------------------------------

    def on_graft(self, link: TreeLink, prefixes: Iterable[bytes] = ()) -> list[bytes]:
        """Plumtree's GRAFT arrived on `link`: it rejoins the tree. Returns the ids
        that `prefixes` (of a `graft8`: what we announced, so saw lately) name."""
        link.eager = True
        seen_prefix = self._seen_prefix
        return [seen_prefix[p] for p in prefixes if p in seen_prefix]

    @staticmethod
    def on_prune(link: TreeLink) -> None:
        """Plumtree's PRUNE arrived on `link`: announce to it from now on."""
        link.eager = False

    # -- inspection (tests, statistics) ------------------------------------

    def seen_lately(self, identifier: bytes) -> bool | None:
        """Whether `identifier` was seen lately through the tree (True), on
        request (False), or not lately (None)."""
        return self._seen.get(identifier)

    def sizes(self) -> tuple[int, int, int]:
        """(ids seen, prefixes indexed, keys grafted): what the bounds hold."""
        return len(self._seen), len(self._seen_prefix), len(self._grafted)
