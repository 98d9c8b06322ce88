"""`MemoryStore` (simulations) keeps the same rules and answers as `Store` (SQLite).

A differential property test: the same random attestations, in random orders
and batches with duplicates, go into both; every outcome and every query answer
must be the same.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from node.store import AttestationStore, MemoryStore, Store
from protocol.attestation import Attestation, AttestationBody
from protocol.statement import Certify, Rate, Thing
from tests.node.test_store import NOW, small_worlds, trust
from tests.strategies import KEYS, sign


def answers(store: AttestationStore, world: list[Attestation], now_ms: int) -> tuple[object, ...]:
    """Everything the replication and trust layers can ask of a store."""
    identities = sorted({a.issuer for a in world} | {k.identity for k in KEYS[:3]})
    slots = sorted({a.slot.id for a in world})
    statistics = store.statistics()
    return (
        [store.trust_edges(c, now_ms=now_ms) for c in ("carpool", "general")],
        sorted(store.positive_trust_edges(now_ms=now_ms)),  # a set: order unspecified
        [store.current_by_issuer(i, now_ms=now_ms) for i in identities],
        [store.current_about(i, now_ms=now_ms) for i in identities],
        [(store.slot_head(s), store.current_in_slot(s, now_ms=now_ms)) for s in slots],
        store.count_by_issuer(identities),
        store.ids_in_order(),
        store.ids_in_order(after=store.ids_in_order(limit=2)[-1], limit=3),
        [(c.seq, c.attestation, c.is_head) for c in store.changes_since(0)],
        [(c.seq, c.attestation) for c in store.changes_since(2, limit=2)],
        store.existing_ids([a.id for a in world] + [bytes(32)]),
        sorted(store.envelopes([a.id for a in world] + [bytes(32)])),  # order unspecified
        (statistics.attestations, statistics.heads, statistics.slots),
    )


@settings(max_examples=80)
@given(small_worlds(), st.randoms(use_true_random=False), st.integers(1, 5), st.integers(0, 10))
def test_memory_store_matches_the_sqlite_store(
    world: list[Attestation], rng: object, batch_size: int, now_ms: int
) -> None:
    arrivals = world + rng.sample(world, k=len(world) // 2)  # type: ignore[attr-defined]
    rng.shuffle(arrivals)  # type: ignore[attr-defined]
    sqlite, memory = Store.open(":memory:"), MemoryStore()
    for start in range(0, len(arrivals), batch_size):
        batch = arrivals[start : start + batch_size]
        assert memory.apply(batch, now_ms=NOW) == sqlite.apply(batch, now_ms=NOW)
    assert answers(memory, world, now_ms) == answers(sqlite, world, now_ms)
    sqlite.close()


def test_things_ratings_and_certificates_too() -> None:
    thing = Thing("urn:tool:ladder")
    made = [
        trust(1),
        sign(AttestationBody(issuer=KEYS[0].identity, issued_at_ms=2,
                             statement=Rate(subject=thing, context="lending", value=80))),
        sign(AttestationBody(issuer=KEYS[1].identity, issued_at_ms=3,
                             statement=Certify(subject=KEYS[2].identity, claim="resident:x"))),
    ]  # fmt: skip
    sqlite, memory = Store.open(":memory:"), MemoryStore()
    assert memory.apply(made, now_ms=NOW) == sqlite.apply(made, now_ms=NOW)
    for subject in (thing, KEYS[2].identity):
        assert memory.current_about(subject, now_ms=NOW) == sqlite.current_about(
            subject, now_ms=NOW
        )
    assert answers(memory, made, NOW) == answers(sqlite, made, NOW)
    assert memory.get(made[1].id) == made[1]
    assert memory.contains(made[2].id)
