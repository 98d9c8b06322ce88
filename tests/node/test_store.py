"""The store implements SPEC §5 whatever the order, batching or duplication of arrivals."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.errors import StoreError
from node.store import LATEST_VERSION, IngestError, Outcome, Store, ingest
from node.store.schema import migrate, schema_version
from protocol.attestation import Attestation, AttestationBody
from protocol.errors import Reason
from protocol.statement import Kind, Revoke, Statement, Trust
from protocol.supersession import resolve_slot, slot_head
from tests.strategies import KEYS, sign

ALICE, BOB, CAROL = KEYS[0], KEYS[1], KEYS[2]
NOW = 1_000


def trust(
    issued_at_ms: int,
    value: int = 50,
    *,
    issuer: int = 0,
    subject: int = 1,
    context: str = "carpool",
    expires_at_ms: int | None = None,
) -> Attestation:
    body = AttestationBody(
        issuer=KEYS[issuer].identity,
        issued_at_ms=issued_at_ms,
        expires_at_ms=expires_at_ms,
        statement=Trust(subject=KEYS[subject].identity, context=context, value=value),
    )
    return sign(body)


def revoke(
    issued_at_ms: int, *, issuer: int = 0, subject: int = 1, context: str = "carpool"
) -> Attestation:
    statement = Revoke(target_kind=Kind.TRUST, subject=KEYS[subject].identity, scope=context)
    return sign(
        AttestationBody(
            issuer=KEYS[issuer].identity, issued_at_ms=issued_at_ms, statement=statement
        )
    )


@st.composite
def small_worlds(draw: st.DrawFn) -> list[Attestation]:
    """Attestations over few slots and few times: collisions, ties, revocations, expiry."""
    made = []
    for _ in range(draw(st.integers(1, 14))):
        issuer, subject = draw(st.integers(0, 1)), draw(st.integers(1, 2))
        context = draw(st.sampled_from(["carpool", "general"]))
        issued = draw(st.integers(0, 5))
        if draw(st.integers(0, 3)) == 0:
            made.append(revoke(issued, issuer=issuer, subject=subject, context=context))
        else:
            expires = draw(st.none() | st.integers(issued + 1, 9))
            value = draw(st.integers(-100, 100))
            made.append(
                trust(
                    issued,
                    value,
                    issuer=issuer,
                    subject=subject,
                    context=context,
                    expires_at_ms=expires,
                )
            )
    return made


def state(store: Store, *, now_ms: int) -> tuple[object, ...]:
    """Everything observable about the store's content."""
    rows = store._connection.execute(  # the raw table: ids and head flags
        "SELECT id, is_head FROM attestations ORDER BY id"
    ).fetchall()
    slots = store._connection.execute("SELECT * FROM slots ORDER BY slot_id").fetchall()
    edges = [store.trust_edges(c, now_ms=now_ms) for c in ("carpool", "general")]
    return (rows, slots, edges)


@settings(max_examples=60)
@given(small_worlds(), st.randoms(use_true_random=False), st.integers(1, 5), st.integers(0, 10))
def test_state_is_independent_of_order_batching_and_duplicates(
    world: list[Attestation], rng: object, batch_size: int, now_ms: int
) -> None:
    reference = Store.open(":memory:")
    reference.apply(world, now_ms=NOW)
    shuffled = world + rng.sample(world, k=len(world) // 2)  # type: ignore[attr-defined]
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    other = Store.open(":memory:")
    for start in range(0, len(shuffled), batch_size):
        other.apply(shuffled[start : start + batch_size], now_ms=NOW)
    assert state(other, now_ms=now_ms) == state(reference, now_ms=now_ms)
    # ... and equal to the protocol's reference semantics, slot by slot.
    for slot_id in {a.slot.id for a in world}:
        members = [a for a in world if a.slot.id == slot_id]
        assert other.slot_head(slot_id) == slot_head(members)
        assert other.current_in_slot(slot_id, now_ms=now_ms) == resolve_slot(members, now_ms=now_ms)


def test_outcomes_new_superseded_duplicate() -> None:
    store = Store.open(":memory:")
    old, new = trust(1, 10), trust(2, 20)
    assert store.apply([new], now_ms=NOW) == [Outcome.NEW]
    assert store.apply([old, new], now_ms=NOW) == [Outcome.SUPERSEDED, Outcome.DUPLICATE]
    assert store.current_in_slot(new.slot.id, now_ms=NOW) == new


def test_revocation_is_a_tombstone_that_only_newer_attestations_lift() -> None:
    store = Store.open(":memory:")
    store.apply([trust(1), revoke(5)], now_ms=NOW)
    assert store.trust_edges("carpool", now_ms=NOW) == []
    assert store.apply([trust(4, 99)], now_ms=NOW) == [Outcome.SUPERSEDED]
    assert store.trust_edges("carpool", now_ms=NOW) == []
    renewed = trust(6, 70)
    assert store.apply([renewed], now_ms=NOW) == [Outcome.NEW]
    assert [e.value for e in store.trust_edges("carpool", now_ms=NOW)] == [70]


def test_queries_follow_current_state() -> None:
    store = Store.open(":memory:")
    expiring = trust(1, 30, subject=2, expires_at_ms=500)
    store.apply(
        [trust(1, 10), trust(2, 20), expiring, trust(3, 5, issuer=1, subject=2)], now_ms=NOW
    )
    assert [a.statement for a in store.current_by_issuer(ALICE.identity, now_ms=400)] == [
        trust(2, 20).statement,
        expiring.statement,
    ]
    assert len(store.current_by_issuer(ALICE.identity, now_ms=500)) == 1
    about_carol = store.current_about(CAROL.identity, now_ms=400)
    assert {a.issuer for a in about_carol} == {ALICE.identity, BOB.identity}
    assert len(store.current_about(CAROL.identity, now_ms=500)) == 1


def test_change_feed_and_order_index() -> None:
    store = Store.open(":memory:")
    first, second, third = trust(3, 1), trust(1, 2, subject=2), trust(4, 3)
    store.apply([first, second], now_ms=NOW)
    store.apply([third], now_ms=NOW)
    changes = store.changes_since(0)
    assert [c.attestation for c in changes] == [first, second, third]
    assert [c.is_head for c in changes] == [False, True, True]
    assert [c.attestation for c in store.changes_since(changes[1].seq)] == [third]
    ordered = store.ids_in_order()
    assert [i for _, i in ordered] == [second.id, first.id, third.id]
    assert store.ids_in_order(after=(ordered[0][0], ordered[0][1])) == ordered[1:]


def test_prune_policy_keeps_tombstones_and_high_water_marks() -> None:
    store = Store.open(":memory:")
    old, tomb = trust(1), revoke(2)
    expiring = trust(1, subject=2, expires_at_ms=NOW + 5)
    store.apply([old, tomb, expiring], now_ms=NOW)
    assert store.prune(now_ms=NOW + 10, retention_ms=100) == 0  # not old enough
    assert store.prune(now_ms=NOW + 105, retention_ms=100) == 2
    assert not store.contains(old.id)
    assert not store.contains(expiring.id)
    assert store.contains(tomb.id)
    # Sent again, a pruned attestation never comes back as a head.
    assert store.apply([old], now_ms=NOW) == [Outcome.SUPERSEDED]
    assert store.apply([expiring], now_ms=NOW) == [Outcome.DUPLICATE]
    assert store.slot_head(expiring.slot.id) is None
    assert store.current_in_slot(tomb.slot.id, now_ms=NOW) is None


def test_ingest_reports_every_item(tmp_path: Path) -> None:
    with Store.open(tmp_path / "store.db") as store:
        good, future = trust(1), trust(NOW + 60_001)
        forged = bytearray(trust(2).data)
        forged[-1] ^= 1
        report = ingest(
            store,
            [good.data, b"", bytes(forged), future.data, good.data],
            now_ms=NOW,
            max_skew_ms=60_000,
        )
    outcomes = [(i.outcome, i.reason) for i in report.items]
    assert outcomes == [
        (Outcome.NEW, None),
        (Outcome.REJECTED, Reason.MALFORMED),
        (Outcome.REJECTED, Reason.BAD_SIGNATURE),
        (Outcome.REJECTED, Reason.FROM_FUTURE),
        (Outcome.DUPLICATE, None),
    ]
    assert report.acknowledged
    assert report.stored_ids == [good.id]
    with Store.open(tmp_path / "store.db") as reopened:
        assert reopened.get(good.id) == good
        assert reopened.statistics().attestations == 1


def test_ingest_commits_in_batches(tmp_path: Path) -> None:
    world = [trust(t, subject=s) for t in range(5) for s in (1, 2)]
    with Store.open(tmp_path / "s.db") as store:
        report = ingest(store, [a.data for a in world], now_ms=NOW, batch_size=3)
        # Outcomes describe each batch's commit: later batches supersede earlier heads.
        assert report.counts[Outcome.NEW] + report.counts[Outcome.SUPERSEDED] == 10
        assert report.items[-1].outcome is Outcome.NEW
        assert store.statistics().heads == 2
        with pytest.raises(ValueError, match="batch_size"):
            ingest(store, [], now_ms=NOW, batch_size=0)
        with pytest.raises(ValueError, match="verify_threads"):
            ingest(store, [], now_ms=NOW, verify_threads=0)


def test_threaded_verification_reports_the_same(tmp_path: Path) -> None:
    world = [trust(t, value=t, subject=s) for t in range(6) for s in (1, 2)]
    envelopes = [a.data for a in world] + [b"\x00", world[0].data]
    reports = []
    for threads in (1, 2, 3):
        with Store.open(tmp_path / f"{threads}.db") as store:
            report = ingest(store, envelopes, now_ms=NOW, batch_size=5, verify_threads=threads)
            reports.append((report.items, store.trust_edges("carpool", now_ms=NOW)))
    assert reports[0] == reports[1] == reports[2]
    assert [i.index for i in reports[0][0]] == list(range(len(envelopes)))


def test_full_disk_is_a_store_error_and_nothing_partial(tmp_path: Path) -> None:
    path = tmp_path / "full.db"
    with Store.open(path) as store:
        store.apply([trust(1)], now_ms=NOW)
        pages = store._connection.execute("PRAGMA page_count").fetchone()[0]
        # Simulate a full disk: SQLite may not grow the file any further.
        store._connection.execute(f"PRAGMA max_page_count = {pages}")
        big_batch = [trust(t, subject=s, context=f"c{t}") for t in range(40) for s in (1, 2)]
        with pytest.raises(IngestError) as info:
            ingest(store, [a.data for a in big_batch], now_ms=NOW, batch_size=1000)
        assert info.value.acknowledged.items == ()
        assert store.statistics().attestations == 1
        assert store.integrity_check() == "ok"


def test_read_only_store_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "ro.db"
    with Store.open(path) as store:
        store.apply([trust(1)], now_ms=NOW)
    uri = f"file:{path}?mode=ro"
    connection = sqlite3.connect(uri, uri=True, isolation_level=None)
    read_only = Store(connection, str(path))
    with pytest.raises(StoreError):
        read_only.apply([trust(2)], now_ms=NOW)
    assert read_only.statistics().attestations == 1
    read_only.close()


def test_unopenable_paths_are_store_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        Store.open(tmp_path / "missing-dir" / "x.db")
    not_a_db = tmp_path / "junk.db"
    not_a_db.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError):
        Store.open(not_a_db)


def test_migration_upgrades_an_old_database(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    connection = sqlite3.connect(path, isolation_level=None)
    migrate(connection, target=1)
    assert schema_version(connection) == 1
    old_store = Store(connection, str(path))
    kept = trust(1, 42)
    old_store.apply([kept, trust(1, 7, subject=2)], now_ms=NOW)
    old_store.close()

    with Store.open(path) as upgraded:
        assert schema_version(upgraded._connection) == LATEST_VERSION
        assert [e.value for e in upgraded.trust_edges("carpool", now_ms=NOW)] == [42, 7][:2]
        assert upgraded.get(kept.id) == kept
        indexes = {
            r[0]
            for r in upgraded._connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index'"
            )
        }
        assert "trust_edges" in indexes
        assert "by_issuer" in indexes
        assert "heads_by_issuer" not in indexes
        assert upgraded.integrity_check() == "ok"


@pytest.mark.parametrize(
    "query",
    [
        # the relay quota's count (any state) and the heads of an issuer
        "SELECT count(*) FROM attestations WHERE issuer_ref = 1",
        "SELECT envelope FROM attestations WHERE issuer_ref = 1 AND is_head = 1 AND kind != 4",
        "SELECT envelope FROM attestations WHERE subject_ref = 1 AND is_head = 1",
        "SELECT id FROM attestations WHERE id = x'00'",
    ],
)
def test_per_item_queries_never_scan_the_table(query: str) -> None:
    # A scan per issuer made a farm of fresh identities cost O(store) per admission.
    with Store.open(":memory:") as store:
        plan = " ".join(row[3] for row in store._connection.execute(f"EXPLAIN QUERY PLAN {query}"))
    assert "USING" in plan, plan
    assert "SCAN attestations" not in plan, plan


def test_newer_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    Store.open(path).close()
    connection = sqlite3.connect(path)
    connection.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    connection.close()
    with pytest.raises(StoreError, match="newer"):
        Store.open(path)


def test_statements_other_than_trust_are_stored_and_queried() -> None:
    from protocol.statement import Certify, Rate, Thing

    statements: list[Statement] = [
        Certify(subject=BOB.identity, claim="resident:x"),
        Rate(subject=Thing("urn:tool:1"), value=5),
    ]
    store = Store.open(":memory:")
    made = [
        sign(AttestationBody(issuer=ALICE.identity, issued_at_ms=1, statement=s))
        for s in statements
    ]
    assert store.apply(made, now_ms=NOW) == [Outcome.NEW, Outcome.NEW]
    assert store.current_about(Thing("urn:tool:1"), now_ms=NOW) == [made[1]]
    assert store.trust_edges("general", now_ms=NOW) == []


def test_known_bytes_skip_signature_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    from protocol.attestation import decode_envelope, open_signed, signed_message

    store = Store.open(":memory:")
    held, new = trust(1), trust(2, subject=2)
    ingest(store, [held.data], now_ms=NOW)
    calls: list[tuple[bytes, bytes]] = []

    def counting(messages: list[tuple[bytes, bytes]]) -> bytes:
        calls.extend(messages)
        return open_signed(messages)

    monkeypatch.setattr("node.store.pipeline.open_signed", counting)
    forged = bytearray(held.data)
    forged[-1] ^= 1
    report = ingest(store, [held.data, new.data, bytes(forged)], now_ms=NOW)
    assert [(i.outcome, i.reason) for i in report.items] == [
        (Outcome.DUPLICATE, None),
        (Outcome.NEW, None),
        (Outcome.REJECTED, Reason.BAD_SIGNATURE),  # other bytes: checked, refused
    ]
    assert report.items[0].id == held.id
    checked = [new.data, bytes(forged)]  # the held copy was never re-verified
    assert calls == [signed_message(decode_envelope(data)) for data in checked]


def test_cached_bytes_are_not_looked_up_and_copies_still_count_once() -> None:
    """With a simulation's cache of verified bytes, the store is asked only about
    envelopes that would need a signature check; a cached copy of something held
    is still reported as a duplicate and stored once (Store.apply finds it)."""
    store = Store.open(":memory:")
    held, cached_new, uncached = trust(1), trust(2, subject=2), trust(3, subject=3)
    cache: dict[bytes, Attestation] = {}
    ingest(store, [held.data], now_ms=NOW, verified_cache=cache)
    cache[cached_new.data] = cached_new
    asked: list[list[bytes]] = []
    looked_up = store.existing_ids

    def recording(ids: list[bytes]) -> set[bytes]:
        asked.append(list(ids))
        return looked_up(ids)

    store.existing_ids = recording  # type: ignore[method-assign,assignment]
    envelopes = [held.data, cached_new.data, uncached.data, held.data]
    report = ingest(store, envelopes, now_ms=NOW, verified_cache=cache)
    assert [i.outcome for i in report.items] == [
        Outcome.DUPLICATE, Outcome.NEW, Outcome.NEW, Outcome.DUPLICATE,
    ]  # fmt: skip
    assert [i.id for i in report.items] == [held.id, cached_new.id, uncached.id, held.id]
    assert asked == [[uncached.id]]
    assert store.statistics().attestations == 3
    # Every envelope's bytes cached: the store is not asked at all.
    assert ingest(store, envelopes, now_ms=NOW, verified_cache=cache).counts[
        Outcome.DUPLICATE
    ] == len(envelopes)
    assert asked == [[uncached.id]]


def test_new_slots_are_claimed_without_lookups_and_held_ones_fall_back() -> None:
    """A batch of first statements in their slots writes without reading the
    store; one that meets a slot with a head is redone comparing with it, and
    nothing of the first attempt remains."""
    store = Store.open(":memory:")
    statements: list[str] = []
    store._connection.set_trace_callback(statements.append)
    fresh = [trust(1, subject=1), trust(1, subject=2), trust(2, subject=2)]
    assert store.apply(fresh, now_ms=NOW) == [Outcome.NEW, Outcome.SUPERSEDED, Outcome.NEW]
    assert not [s for s in statements if s.startswith("SELECT") and "identities" not in s]
    assert "ROLLBACK" not in statements
    statements.clear()
    newer, other = trust(3, subject=1), trust(1, subject=2, context="general")
    assert store.apply([other, newer], now_ms=NOW) == [Outcome.NEW, Outcome.NEW]
    assert statements.count("ROLLBACK") == 1  # the claim met subject 1's slot
    assert store.slot_head(newer.slot.id) == newer
    assert store.slot_head(other.slot.id) == other
    assert store.current_in_slot(fresh[0].slot.id, now_ms=NOW) == newer
    counts = store.statistics()
    assert (counts.attestations, counts.heads, counts.slots) == (5, 3, 3)


def test_identities_keep_their_refs_across_reopening(tmp_path: Path) -> None:
    """New identities get the next refs; after a reopen (nothing cached) a batch
    naming a known identity and a new one reads the known one's ref back."""
    path = tmp_path / "ids.db"
    with Store.open(path) as store:
        store.apply([trust(1, issuer=0, subject=1), trust(1, issuer=1, subject=2)], now_ms=NOW)
    with Store.open(path) as store:
        store.apply([trust(2, issuer=2, subject=3), trust(2, issuer=0, subject=4)], now_ms=NOW)
        store.apply([trust(3, issuer=4, subject=0)], now_ms=NOW)  # all known, cached
        edges = {(e.issuer, e.subject) for e in store.trust_edges("carpool", now_ms=NOW)}
        keys = store._connection.execute("SELECT key FROM identities").fetchall()
    assert edges == {
        (KEYS[i].identity, KEYS[s].identity) for i, s in ((0, 1), (1, 2), (2, 3), (0, 4), (4, 0))
    }
    assert sorted(k for (k,) in keys) == sorted(KEYS[n].identity for n in range(5))
