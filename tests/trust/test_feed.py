"""The store's change feed drives a trust engine to the same answers as the set itself."""

from __future__ import annotations

from pathlib import Path

from node.store import Store, ingest
from node.store.feed import follow_feed
from node.trust import TrustEngine
from protocol.statement import Kind, Revoke
from tests.trust.test_engine import CAT, DAN, KEYS, ME, NOW, _community, att


def test_follow_feed_matches_an_engine_fed_directly(tmp_path: Path) -> None:
    attestations = _community()
    revoke = att(CAT, Revoke(target_kind=Kind.TRUST, subject=DAN.identity, scope="general"), at=NOW)
    with Store.open(tmp_path / "store.db") as store:
        ingest(store, [a.data for a in attestations[:4]], now_ms=NOW)
        engine = TrustEngine(ME.identity, now_ms=NOW)
        cursor = follow_feed(engine, store)
        ingest(store, [a.data for a in [*attestations[4:], revoke]], now_ms=NOW)
        cursor = follow_feed(engine, store, cursor=cursor, batch=2)
        assert follow_feed(engine, store, cursor=cursor) == cursor
    direct = TrustEngine(ME.identity, now_ms=NOW, attestations=[*attestations, revoke])
    for key in KEYS:
        assert engine.score(key.identity) == direct.score(key.identity)
    assert engine.score(DAN.identity) == 0.0
