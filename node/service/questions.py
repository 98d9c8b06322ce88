"""Trust questions, answered from the node's own point of view.

A `TrustEngine` catches up with the store's change feed before each answer
(so it sees what peers brought meanwhile) and answers in a worker thread, one
question at a time, so a solve never stalls the event loop that serves peers.
The engine is built on the first question: a node that is never asked (most
members of a 1 000-member simulation, a daemon that only relays) never holds
one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import trio

from node.names import NameBook, ResolvedName
from node.service.core import NodeCore
from node.store.feed import follow_feed
from node.trust import ClaimDecision, RatingSummary, TrustEngine, TrustExplanation
from protocol.identity import IdentityId
from protocol.statement import GENERAL_CONTEXT, Subject

__all__ = ["Questions"]

T = TypeVar("T")


class Questions(NodeCore):
    """`score`, `scores`, `explain`, `ranking`, `claim`, `rating(s)`, names, `ask`."""

    async def ask(self, question: Callable[[TrustEngine], T]) -> T:
        """Any question of the node's `TrustEngine`, caught up with the store first.

        For what the named methods do not cover (`accepted`, `validity`, the walk
        itself: the simulations' studies compare metrics on it). `question` runs
        in a worker thread (inline on a MockClock) and must not keep the engine.
        """
        async with self._engine_lock:
            if self._engine is None:
                self._engine = TrustEngine(self.identity, now_ms=self._clock())
            engine = self._engine
            self._cursor = await self._reader.run(
                lambda s: follow_feed(engine, s, cursor=self._cursor)
            )
            now = self._clock()

            def answer() -> T:
                engine.advance(max(now, engine.now_ms))
                return question(engine)

            if self._inline:
                return answer()
            return await trio.to_thread.run_sync(answer)

    async def score(self, subject: IdentityId, context: str = GENERAL_CONTEXT) -> float:
        """How far this node should trust `subject` in `context`, in [0, 1]."""
        return await self.ask(lambda e: e.score(subject, context))

    async def scores(self, context: str = GENERAL_CONTEXT) -> dict[IdentityId, float]:
        """Every member's score in `context`, in one batched solve (`TrustEngine.scores`)."""
        return await self.ask(lambda e: e.scores(context))

    async def explain(
        self, subject: IdentityId, context: str = GENERAL_CONTEXT, *, top_paths: int = 5
    ) -> TrustExplanation:
        """The score with everything behind it: first hops, strongest routes, flags, walls."""
        return await self.ask(lambda e: e.explain(subject, context, top_paths=top_paths))

    async def ranking(
        self, context: str = GENERAL_CONTEXT, *, limit: int = 20
    ) -> list[tuple[IdentityId, float]]:
        """The members this node trusts most in `context`, strongest first."""
        return await self.ask(lambda e: e.ranking(context, limit=limit))

    async def claim(
        self, subject: IdentityId, claim: str, *, independent: int = 2
    ) -> ClaimDecision:
        """Whether enough independent trusted certifiers back `claim` about `subject`."""
        return await self.ask(lambda e: e.claim(subject, claim, independent=independent))

    async def rating(
        self, subject: Subject, context: str = GENERAL_CONTEXT
    ) -> tuple[RatingSummary, list[IdentityId]]:
        """Trust-weighted rating of `subject`, with the raters counted (heaviest first)."""

        def rate(engine: TrustEngine) -> tuple[RatingSummary, list[IdentityId]]:
            summary = engine.rating(subject, context)
            identities = engine.walk(context).identities
            return summary, [identities[node] for node, _, _ in summary.counted]

        return await self.ask(rate)

    async def ratings(self, subject: Subject) -> list[tuple[str, RatingSummary, list[IdentityId]]]:
        """`rating` in every context `subject` was rated in: (context, summary, raters).

        A thing rated in `lending` has no rating in `general`; asking for every
        context is how a member finds it without guessing the context first.
        """

        def rate_all(engine: TrustEngine) -> list[tuple[str, RatingSummary, list[IdentityId]]]:
            answers = []
            for context in engine.rating_contexts(subject):
                summary = engine.rating(subject, context)
                identities = engine.walk(context).identities
                answers.append((context, summary, [identities[n] for n, _, _ in summary.counted]))
            return answers

        return await self.ask(rate_all)

    # -- names (node.names): what we call people depends on whom we trust ---------------

    async def name_book(self) -> NameBook:
        """Everything naming needs, caught up with the store, from our point of view."""
        async with self._names_lock:  # one build at a time; the others then share it
            await self._reader.run(self._names.follow)
            now, revision = self._clock(), self._petnames.revision
            cached = self._names.cached_book(petnames_revision=revision, now_ms=now)
            if cached is not None:
                return cached
            petnames = self._petnames.as_dict()
            # One batched table (TrustEngine.scores), not a `score` call per named
            # member (about 30 µs each: half a second for 10 000 who name themselves).
            scores = await self.ask(lambda e: e.scores())
            viewer = self._names.member(self.identity)  # a device names through its root's eyes
            book = self._names.book(viewer=viewer, petnames=petnames, trust=scores, now_ms=now)
            self._names.keep(book, petnames_revision=revision, now_ms=now)
            return book

    async def names(self, identities: Sequence[IdentityId]) -> dict[IdentityId, ResolvedName]:
        """How we name each of `identities` (node.names.resolver)."""
        book = await self.name_book()
        return {i: book.resolve(i) for i in identities}

    async def find(self, text: str, *, limit: int = 20) -> list[tuple[ResolvedName, float]]:
        """Members any of whose names reads like `text`, most trusted first, with scores."""
        book = await self.name_book()
        found = book.find(text)[:limit]
        return [(book.resolve(i), book.trust.get(i, 0.0)) for i in found]
