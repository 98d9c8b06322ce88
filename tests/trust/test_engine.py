"""The engine over real signed attestations: supersession, contexts, claims, ratings."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.trust import TrustEngine, WhyNot, evidence_from_attestations
from protocol.attestation import Attestation, AttestationBody, sign_attestation
from protocol.identity import IdentityKey
from protocol.statement import Certify, Kind, Rate, Revoke, Statement, Thing, Trust

KEYS = [IdentityKey.from_seed(bytes([n + 40]) * 32) for n in range(8)]
ME, ANN, BOB, CAT, DAN, EVE, FAY, GUS = KEYS
NOW = 1_800_000_000_000


def att(
    key: IdentityKey, statement: Statement, *, at: int = NOW - 1000, expires: int | None = None
) -> Attestation:
    body = AttestationBody(
        issuer=key.identity, issued_at_ms=at, expires_at_ms=expires, statement=statement
    )
    return sign_attestation(body, key)


def trust(key: IdentityKey, subject: IdentityKey, value: int, **kw: object) -> Attestation:
    context = str(kw.pop("context", "general"))
    return att(key, Trust(subject=subject.identity, value=value, context=context), **kw)  # type: ignore[arg-type]


def _community() -> list[Attestation]:
    return [
        trust(ME, ANN, 100),
        trust(ME, BOB, 80),
        trust(ANN, CAT, 90),
        trust(BOB, CAT, 70),
        trust(CAT, DAN, 100),
        trust(ANN, BOB, 50),
        trust(EVE, FAY, 100),
    ]


def test_transitive_scores_and_their_explanation() -> None:
    engine = TrustEngine(ME.identity, now_ms=NOW, attestations=_community())
    assert engine.score(ME.identity) == 1.0
    assert 0 < engine.score(DAN.identity) < engine.score(CAT.identity) < 1.0
    assert engine.score(FAY.identity) == 0.0
    explanation = engine.explain(DAN.identity)
    assert {via for via, _ in explanation.first_hops} == {ANN.identity, BOB.identity}
    assert sum(share for _, share in explanation.first_hops) == pytest.approx(explanation.score)
    best_route, _best_share = explanation.paths[0]
    assert best_route[0] == ME.identity
    assert best_route[-1] == DAN.identity
    assert [s for _, s in explanation.paths] == sorted(
        (s for _, s in explanation.paths), reverse=True
    )
    assert explanation.why_not is None
    assert engine.explain(FAY.identity).why_not is WhyNot.NO_PATH
    assert engine.explain(GUS.identity).why_not is WhyNot.UNKNOWN
    ranking = engine.ranking(limit=2)
    table = engine.scores()
    order = sorted(KEYS[1:], key=lambda k: (-table.get(k.identity, 0.0), k.identity))
    assert [identity for identity, _ in ranking] == [order[0].identity, order[1].identity]
    assert ranking[0][1] == engine.score(ranking[0][0])
    assert sum(part for _, part in explanation.seeds) == pytest.approx(explanation.score)
    assert all(table[k.identity] == engine.score(k.identity) for k in KEYS[:5])


def test_revocation_and_expiry_remove_edges_incrementally() -> None:
    engine = TrustEngine(ME.identity, now_ms=NOW, attestations=_community())
    assert engine.score(DAN.identity) > 0.0
    revoke = att(CAT, Revoke(target_kind=Kind.TRUST, subject=DAN.identity, scope="general"), at=NOW)
    engine.add([revoke])
    assert engine.score(DAN.identity) == 0.0
    engine.add([trust(CAT, DAN, 100, at=NOW - 5000)])  # older than the tombstone: no effect
    assert engine.score(DAN.identity) == 0.0
    engine.add([trust(ANN, GUS, 100, at=NOW, expires=NOW + 10)])
    assert engine.score(GUS.identity) > 0.0
    engine.advance(NOW + 10)
    assert engine.score(GUS.identity) == 0.0


def test_a_walled_member_and_the_why_not() -> None:
    engine = TrustEngine(
        ME.identity, now_ms=NOW, attestations=[*_community(), trust(ME, CAT, -100)]
    )
    assert engine.score(CAT.identity) == 0.0
    assert engine.explain(CAT.identity).why_not is WhyNot.WALLED
    assert engine.score(DAN.identity) == 0.0  # only reachable through CAT
    assert engine.explain(DAN.identity).why_not is WhyNot.WALLED


def test_context_falls_back_on_general_at_half_weight() -> None:
    specific = TrustEngine(
        ME.identity, now_ms=NOW, attestations=[trust(ME, ANN, 40, context="carpool")]
    )
    general = TrustEngine(ME.identity, now_ms=NOW, attestations=[trust(ME, ANN, 80)])
    assert general.score(ANN.identity, "carpool") == pytest.approx(
        specific.score(ANN.identity, "carpool")
    )
    both = TrustEngine(
        ME.identity,
        now_ms=NOW,
        attestations=[trust(ME, ANN, 80), trust(ME, ANN, -50, context="carpool")],
    )
    assert both.score(ANN.identity) > 0.0
    assert both.score(ANN.identity, "carpool") == 0.0


def test_claims_need_independent_chains() -> None:
    base = [
        trust(ME, ANN, 100),
        trust(ME, BOB, 100),
        trust(ANN, CAT, 100),
        trust(BOB, DAN, 100),
        trust(ANN, EVE, 100),
        trust(CAT, GUS, 80),  # street-mates vouch for the newcomer they certify
        trust(DAN, GUS, 80),
        trust(EVE, FAY, 80),
    ]
    resident = "resident:rue-des-lilas"
    via_two = [att(CAT, Certify(subject=GUS.identity, claim=resident)),
               att(DAN, Certify(subject=GUS.identity, claim=resident))]  # fmt: skip
    via_one = [att(CAT, Certify(subject=FAY.identity, claim=resident)),
               att(EVE, Certify(subject=FAY.identity, claim=resident))]  # fmt: skip
    engine = TrustEngine(ME.identity, now_ms=NOW, attestations=[*base, *via_two, *via_one])
    two = engine.claim(GUS.identity, resident)
    assert two.accepted
    assert two.independent == 2
    assert len(two.paths) == 2
    one = engine.claim(FAY.identity, resident)  # both certifiers hang off ANN
    assert not one.accepted
    assert one.independent == 1
    assert engine.claim(FAY.identity, resident, independent=1).accepted
    assert not engine.claim(FAY.identity, "other-claim").accepted
    legacy = TrustEngine(
        ME.identity, now_ms=NOW, attestations=[*base, *via_two, *via_one], decisions="flow"
    )
    assert legacy.claim(GUS.identity, resident).accepted


def test_a_claim_needs_the_subjects_own_standing() -> None:
    """Certifying costs nothing: two trusted certifiers alone do not make a stranger
    (nobody's vouch reaches them) a resident, or a farm could certify all its own."""
    resident = "resident:rue-des-lilas"
    base = [trust(ME, ANN, 100), trust(ME, BOB, 100), trust(ANN, BOB, 100), trust(BOB, ANN, 100)]
    certs = [att(ANN, Certify(subject=GUS.identity, claim=resident)),
             att(BOB, Certify(subject=GUS.identity, claim=resident))]  # fmt: skip
    engine = TrustEngine(ME.identity, now_ms=NOW, attestations=[*base, *certs])
    assert not engine.claim(GUS.identity, resident).accepted
    engine.add([trust(ANN, GUS, 80), trust(BOB, GUS, 80)])
    assert engine.claim(GUS.identity, resident).accepted


def test_ratings_weighted_by_standing_within_the_horizon() -> None:
    thing = Thing("https://example.org/bike-42")
    ratings = [att(ANN, Rate(subject=thing, value=100)), att(FAY, Rate(subject=thing, value=-100))]
    engine = TrustEngine(ME.identity, now_ms=NOW, attestations=[*_community(), *ratings])
    summary = engine.rating(thing)
    assert summary.value == pytest.approx(1.0)  # FAY is out of reach: ignored
    assert summary.ignored == 1
    assert engine.rating(Thing("https://example.org/none")).value is None


def test_flow_acceptance_and_introducer_validity() -> None:
    engine = TrustEngine(ME.identity, now_ms=NOW, attestations=_community())
    accepted = engine.accepted()
    assert {ANN.identity, BOB.identity, CAT.identity} <= accepted
    assert FAY.identity not in accepted
    validity = engine.validity()
    walk = engine.walk()
    valid = {walk.identities[n] for n in validity.depth}
    assert ANN.identity in valid
    assert CAT.identity in valid
    assert BOB.identity not in valid or validity.level[walk.node(BOB.identity) or 0] >= 1


@settings(max_examples=25)
@given(st.randoms(use_true_random=False))
def test_full_recompute_is_identical_in_any_order(rng: random.Random) -> None:
    attestations = [*_community(), trust(ANN, CAT, 10, at=NOW - 500), trust(ME, CAT, -30)]
    shuffled = attestations[:]
    rng.shuffle(shuffled)
    one = TrustEngine(ME.identity, now_ms=NOW, attestations=attestations)
    other = TrustEngine(ME.identity, now_ms=NOW, attestations=shuffled)
    for key in KEYS:
        assert one.score(key.identity) == other.score(key.identity)
    assert (one.walk().visits() == other.walk().visits()).all()


def test_evidence_keeps_only_current_statements() -> None:
    newer = trust(ME, ANN, 30, at=NOW)
    certify = att(ANN, Certify(subject=BOB.identity, claim="driver"))
    rate = att(BOB, Rate(subject=Thing("https://example.org/x"), value=70))
    expired = trust(ME, CAT, 90, expires=NOW - 1)
    evidence = evidence_from_attestations(
        [trust(ME, ANN, 100), newer, certify, rate, expired], now_ms=NOW
    )
    assert [e.value for e in evidence.edges] == [30]  # superseded and expired are gone
    assert evidence.certifications[0].claim == "driver"
    assert evidence.ratings[0].value == 70


def test_a_self_vouch_arriving_later_is_ignored_not_a_crash() -> None:
    # Found by the soak benchmark: the incremental path refused self-edges with an
    # exception, so any member's self-vouch broke every node's next answer.
    viewer, other = IdentityKey.from_seed(bytes([61]) * 32), IdentityKey.from_seed(bytes([62]) * 32)

    def vouch(key: IdentityKey, subject: IdentityKey, at: int) -> Attestation:
        statement = Trust(subject=subject.identity, value=80)
        return sign_attestation(AttestationBody(issuer=key.identity, issued_at_ms=at,
                                                statement=statement), key)  # fmt: skip

    engine = TrustEngine(viewer.identity, now_ms=NOW + 10, attestations=[vouch(viewer, other, NOW)])
    before = engine.score(other.identity)
    for key in (viewer, other):
        engine.add([vouch(key, key, NOW + 1)])
    assert engine.score(other.identity) == before


def test_identities_nobody_reached_stay_out_of_the_walk_until_reached() -> None:
    # A farm vouching for the viewer and for itself: no walk from the viewer can
    # enter it, so it must cost no node in the walks (a flood of fresh identities).
    farm = [IdentityKey.from_seed((900 + n).to_bytes(32, "big")) for n in range(40)]
    farm_edges = [trust(f, ME, 100) for f in farm]
    farm_edges += [trust(a, b, 90) for a, b in itertools.pairwise(farm)]
    engine = TrustEngine(ME.identity, now_ms=NOW, attestations=[*_community(), *farm_edges])
    walk = engine.walk()
    assert all(walk.node(f.identity) is None for f in farm)
    assert len(walk.identities) <= len(KEYS)
    assert engine.score(farm[3].identity) == 0.0
    assert engine.explain(farm[3].identity).why_not is WhyNot.NO_PATH
    assert engine.explain(IdentityKey.from_seed(bytes(32)).identity).why_not is WhyNot.UNKNOWN

    door = trust(ANN, farm[0], 100)  # a reached member vouches for the farm's first
    engine.add([door])
    whole = TrustEngine(ME.identity, now_ms=NOW, attestations=[door, *farm_edges, *_community()])
    assert engine.score(farm[5].identity) > 0.0  # the chain behind the door woke up
    for member in [*farm[:8], *KEYS]:
        assert engine.score(member.identity) == pytest.approx(
            whole.score(member.identity), rel=1e-3, abs=1e-9
        )


def test_moving_the_clock_keeps_the_score_table_unless_an_edge_expires() -> None:
    """Every question the node asks moves the engine's clock; the table of all
    scores must survive that, or each score, explain and name lookup solves
    every score again (the name book's first lookup took seconds)."""
    engine = TrustEngine(
        ME.identity,
        now_ms=NOW,
        attestations=[*_community(), trust(ANN, GUS, 100, expires=NOW + 50)],
    )
    table = engine.scores()
    solves = 0
    real = engine._scored

    def counting(context: str):  # type: ignore[no-untyped-def]
        nonlocal solves
        before = engine._score_cache.get(context)
        result = real(context)
        solves += before is None
        return result

    engine._scored = counting  # type: ignore[method-assign]
    engine.advance(NOW + 10)
    assert engine.scores() == table
    assert solves == 0
    engine.advance(NOW + 50)  # ANN's vouch for GUS expires: the table is solved again
    assert engine.scores()[GUS.identity] == 0.0
    assert solves == 1


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(1, 6), min_size=1, max_size=6),
    st.lists(st.integers(0, 8), min_size=1, max_size=8),
)
def test_expiries_come_off_a_heap_with_the_answers_of_a_fresh_engine(
    lifetimes: list[int], moves: list[int]
) -> None:
    """Vouches expiring at various times, the clock moved forward and back:
    `advance` pops only what expired (superseded heads skipped) and the
    scores are those of an engine built at that time from the same set."""
    pairs = [(ME, ANN), (ANN, BOB), (BOB, CAT), (ME, CAT), (CAT, DAN), (ANN, DAN)]
    attestations = [
        trust(issuer, subject, 80, expires=NOW + 10 * life)
        for (issuer, subject), life in zip(pairs, lifetimes, strict=False)
    ]
    # A superseded head that would have expired first: its heap entry is stale.
    attestations.append(trust(ME, ANN, 60, at=NOW - 500, expires=NOW + 100))
    engine = TrustEngine(ME.identity, now_ms=NOW, attestations=attestations)
    for move in moves:
        now = NOW + 10 * move
        engine.advance(now)
        assert len(engine._expiries) <= len(attestations)
        fresh = TrustEngine(ME.identity, now_ms=now, attestations=attestations)
        for key in KEYS[:5]:
            assert engine.score(key.identity) == pytest.approx(fresh.score(key.identity), abs=1e-12)


def test_one_score_after_an_update_is_its_table_entry_to_the_last_bit() -> None:
    """In the consensus regime (a support of 64 or more), `score` after an
    update reads one column of ranks, not the table: the same number as
    `scores()` then gives, through new vouches, revocations and new members."""
    rng = random.Random(7)
    keys = [IdentityKey.from_seed(n.to_bytes(32, "big")) for n in range(1, 111)]
    pairs = [(u, v) for u in range(1, 100) for v in rng.sample(range(u), min(u, 3))]
    vouches = [trust(keys[a], keys[b], 80) for u, v in pairs for a, b in ((u, v), (v, u))]
    engine = TrustEngine(keys[0].identity, now_ms=NOW, attestations=vouches)
    engine.scores()
    assert len(engine.support()) >= 64
    for step in range(12):
        u, v = rng.sample(range(110), 2)  # members 100-109 are new
        engine.add([trust(keys[u], keys[v], rng.choice([0, 40, 90]), at=NOW - 900 + step)])
        asked = rng.sample(keys, 5)
        one = [engine.score(k.identity) for k in asked]
        assert not engine._score_cache  # (read without building the table)
        table = engine.scores()
        assert one == [table.get(k.identity, 0.0) for k in asked]
