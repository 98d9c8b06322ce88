"""How the async gossip layer reaches the synchronous store, and what it asks of it.

The store (node/store) is synchronous: SQLite, or `MemoryStore` in
simulations. The daemon runs its operations in a worker thread, one at a
time (`ThreadedStore`); a simulation on a MockClock runs them inline
(`InlineStore`), since a thread would let the autojump clock race ahead of
the store. Every part of the gossip layer reaches the store through a
`StoreAccess` and the few operations below.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, Protocol, TypeVar

import trio

from node.store import AttestationStore
from protocol.attestation import AttestationId

__all__ = ["InlineStore", "StoreAccess", "ThreadedStore", "all_items", "envelopes", "lacking"]

T = TypeVar("T")
S = TypeVar("S", bound=AttestationStore)


class StoreAccess(Protocol):
    """How the async layer reaches the synchronous store."""

    async def run(self, operation: Callable[[AttestationStore], T]) -> T:
        """Run `operation(store)` and return its result."""
        ...


class ThreadedStore(Generic[S]):
    """Runs store operations in a worker thread, one at a time (the daemon's choice)."""

    def __init__(self, store: S) -> None:
        self._store = store
        self._lock = trio.Lock()

    async def run(self, operation: Callable[[S], T]) -> T:
        """Run `operation(store)` in a thread, serialised."""
        async with self._lock:
            return await trio.to_thread.run_sync(operation, self._store)


class InlineStore(Generic[S]):
    """Runs store operations inline: for simulations on a MockClock with in-memory stores.

    A worker thread would let the autojump clock race ahead of the store, so
    simulations trade a brief block of the event loop for determinism.
    """

    def __init__(self, store: S) -> None:
        self._store = store

    async def run(self, operation: Callable[[S], T]) -> T:
        """Run `operation(store)` now, then checkpoint."""
        result = operation(self._store)
        await trio.lowlevel.checkpoint()
        return result


def all_items(store: AttestationStore) -> list[tuple[int, bytes]]:
    """The (issued_at, id) pairs of the whole store, in order: a reconciliation's set."""
    items: list[tuple[int, bytes]] = []
    after: tuple[int, bytes] | None = None
    while batch := store.ids_in_order(after=after, limit=10_000):
        items += [(ts, bytes(i)) for ts, i in batch]
        after = items[-1]
    return items


def lacking(ids: Sequence[bytes]) -> Callable[[AttestationStore], list[bytes]]:
    """An operation: which of `ids` the store does not hold (in their order)."""

    def check(store: AttestationStore) -> list[bytes]:
        held = store.existing_ids([AttestationId(i) for i in ids])
        return [i for i in ids if i not in held]

    return check


def envelopes(ids: Sequence[bytes]) -> Callable[[AttestationStore], list[bytes]]:
    """An operation: the envelopes the store holds of `ids` (to send them)."""

    def fetch(store: AttestationStore) -> list[bytes]:
        return store.envelopes(ids)

    return fetch
