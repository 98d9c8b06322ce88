"""The intake pipeline (node.store.pipeline): checks ahead in workers, writes in order,
acknowledges only what committed, and keeps its queue bounded."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.errors import StoreError
from node.gossip.signatures import SignatureChecker, spare_cores, usable_cores
from node.store import IngestError, Outcome, Store, ingest
from node.store.interface import AttestationStore
from node.store.pipeline import Messages
from protocol.attestation import Attestation, AttestationBody, open_signed
from protocol.errors import Reason
from protocol.identity import IdentityId
from protocol.statement import Trust
from tests.strategies import KEYS, sign

NOW = 10**6


def _trust(n: int, *, issuer: int = 0, issued_at_ms: int | None = None) -> Attestation:
    body = AttestationBody(
        issuer=KEYS[issuer].identity,
        issued_at_ms=n if issued_at_ms is None else issued_at_ms,
        statement=Trust(subject=KEYS[1 + n % 3].identity, context=f"c{n % 7}", value=n % 100),
    )
    return sign(body)


def _forged(attestation: Attestation) -> bytes:
    data = bytearray(attestation.data)
    data[-1] ^= 0x55
    return bytes(data)


def _delivery() -> list[bytes]:
    """Good ones (some superseding others), forged, garbage, from our future, copies."""
    good = [_trust(n, issuer=n % 2) for n in range(400)]
    forged = [_forged(a) for a in good[:30]]
    future = [_trust(n, issued_at_ms=NOW + 10**9).data for n in range(5)]
    return [
        *(a.data for a in good[:200]),
        *forged,
        b"",
        b"\x92\x00",
        *future,
        *(a.data for a in good[200:]),
        *(a.data for a in good[:20]),  # copies of what the first batches stored
    ]


@pytest.fixture(scope="module")
def checker() -> Iterator[SignatureChecker]:
    worker = SignatureChecker(workers=2)  # two even on one core: splitting is what is tested
    yield worker
    worker.close()


def test_checks_in_workers_report_exactly_what_checks_here_report(
    tmp_path: Path, checker: SignatureChecker
) -> None:
    delivery = _delivery()
    reports = []
    for name, verifier in (("here", None), ("workers", checker)):
        with Store.open(tmp_path / f"{name}.db") as store:
            report = ingest(store, delivery, now_ms=NOW, batch_size=97, verifier=verifier)
            reports.append((report.items, store.trust_edges("c1", now_ms=NOW)))
    assert reports[0] == reports[1]
    items = reports[0][0]
    assert [i.index for i in items] == list(range(len(delivery)))
    reasons = [i.reason for i in items if i.reason is not None]
    assert reasons.count(Reason.BAD_SIGNATURE) == 30
    assert reasons.count(Reason.FROM_FUTURE) == 5
    assert sum(i.outcome is Outcome.DUPLICATE for i in items) == 20
    assert checker.checked_in_worker >= 300  # the batches with 64 or more to check


class _Recorder:
    """A verifier that checks here, but only when waited for, and records the
    order of starts, waits and commits: the pipeline's schedule."""

    def __init__(
        self, log: list[str], workers: int = 1, shape: Callable[[bytes], bytes] = bytes
    ) -> None:
        self.log = log
        self.workers = workers
        self._shape = shape

    def start(self, messages: Messages) -> Callable[[], bytes]:
        self.log.append("start")

        def wait() -> bytes:
            self.log.append("wait")
            return self._shape(open_signed(messages))

        return wait


class _Logged:
    """A store that records its commits in the same log (and may fail one)."""

    def __init__(self, store: Store, log: list[str], *, fail_at: int | None = None) -> None:
        self._store = store
        self.log = log
        self._fail_at = fail_at

    def apply(self, attestations: Sequence[Attestation], *, now_ms: int) -> list[Outcome]:
        commits = self.log.count("commit")
        if commits == self._fail_at:
            raise StoreError("disk full (simulated)")
        self.log.append("commit")
        return self._store.apply(attestations, now_ms=now_ms)

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)


def _ahead(log: list[str]) -> int:
    """The most batches started and not yet committed at any point of `log`."""
    most = outstanding = 0
    for event in log:
        outstanding += {"start": 1, "commit": -1}.get(event, 0)
        most = max(most, outstanding)
    return most


@settings(max_examples=15, deadline=None)
@given(workers=st.integers(1, 3), batches=st.integers(1, 8))
def test_the_queue_between_checks_and_the_writer_is_bounded(workers: int, batches: int) -> None:
    log: list[str] = []
    envelopes = [_trust(n, issuer=n % 2).data for n in range(batches * 64)]
    with Store.open(":memory:") as inner:
        store = _Logged(inner, log)
        report = ingest(
            store,  # type: ignore[arg-type]  # the store's protocol, by delegation
            envelopes,
            now_ms=NOW,
            batch_size=64,
            verifier=_Recorder(log, workers),
        )
        assert inner.statistics().attestations == len(envelopes)
    assert report.counts[Outcome.REJECTED] == 0
    assert log.count("start") == log.count("commit") == batches
    assert _ahead(log) == min(batches, workers + 2)  # the writer's batch + workers + 1 ahead


def test_under_a_relay_policy_nothing_is_checked_ahead() -> None:
    class Everyone:
        def __call__(
            self, store: AttestationStore, attestations: list[Attestation]
        ) -> list[Reason | None]:
            return [None] * len(attestations)

        def refused_unverified(
            self, store: AttestationStore, issuers: list[IdentityId]
        ) -> list[bool]:
            return [False] * len(issuers)

    log: list[str] = []
    envelopes = [_trust(n).data for n in range(64 * 4)]
    with Store.open(":memory:") as inner:
        ingest(
            _Logged(inner, log),  # type: ignore[arg-type]
            envelopes,
            now_ms=NOW,
            batch_size=64,
            admit=Everyone(),
            verifier=_Recorder(log, workers=3),
        )
    assert log == ["start", "wait", "commit"] * 4


def test_only_committed_batches_are_acknowledged_when_a_commit_fails() -> None:
    log: list[str] = []
    envelopes = [_trust(n).data for n in range(64 * 5)]
    with Store.open(":memory:") as inner:
        store = _Logged(inner, log, fail_at=2)
        with pytest.raises(IngestError) as info:
            ingest(
                store,  # type: ignore[arg-type]
                envelopes,
                now_ms=NOW,
                batch_size=64,
                verifier=_Recorder(log, workers=2),
            )
        acknowledged = info.value.acknowledged
        assert [i.index for i in acknowledged.items] == list(range(128))  # batches 0 and 1
        assert set(acknowledged.stored_ids) == set(inner.existing_ids(acknowledged.stored_ids))
        assert inner.statistics().attestations == 128  # nothing of the failed batch or after


def test_a_verifier_answering_out_of_shape_is_not_believed() -> None:
    forged = [_forged(_trust(n)) for n in range(70)]
    good = [_trust(n + 100).data for n in range(70)]
    everything_verifies = _Recorder([], shape=lambda verdicts: b"\x01" * (len(verdicts) + 1))
    with Store.open(":memory:") as store:
        report = ingest(store, forged + good, now_ms=NOW, verifier=everything_verifies)
    reasons = [i.reason for i in report.items]
    assert reasons == [Reason.BAD_SIGNATURE] * 70 + [None] * 70


def test_a_checker_starts_one_worker_per_spare_core() -> None:
    assert usable_cores() >= 1
    assert spare_cores() == max(1, usable_cores() - 1)
    assert SignatureChecker().workers == spare_cores()
    with pytest.raises(ValueError, match="worker"):
        SignatureChecker(workers=0)


def test_a_dead_pool_under_a_pipeline_loses_nothing(tmp_path: Path) -> None:
    checker = SignatureChecker(workers=2)
    checker.close()  # every later check runs in the waiting thread
    delivery = _delivery()
    with Store.open(tmp_path / "s.db") as store:
        report = ingest(store, delivery, now_ms=NOW, batch_size=97, verifier=checker)
    with Store.open(tmp_path / "here.db") as store:
        expected = ingest(store, delivery, now_ms=NOW, batch_size=97)
    assert report.items == expected.items
    assert checker.checked_in_worker == 0


def test_a_bulk_ingest_collects_less_often_and_restores_the_thresholds(tmp_path: Path) -> None:
    """While a bulk ingest runs the GC's gen-0 threshold is raised (fewer collections
    per record), and afterwards it is what it was, even when the ingest failed."""
    seen: list[int] = []

    class _Watching:
        workers = 1

        def start(self, messages: Messages) -> Callable[[], bytes]:
            seen.append(gc.get_threshold()[0])
            verdicts = open_signed(messages)
            return lambda: verdicts

    before = gc.get_threshold()
    delivery = [_trust(n).data for n in range(600)]  # a bulk ingest (500 or more)
    with Store.open(tmp_path / "gc.db") as store:
        ingest(store, delivery, now_ms=NOW, verifier=_Watching())
        assert gc.get_threshold() == before
        small = [_trust(n).data for n in range(600, 700)]  # 64 or more to check, under 500
        ingest(store, small, now_ms=NOW, verifier=_Watching())
    assert seen[0] >= 50_000
    assert seen[-1] == before[0]
    with Store.open(tmp_path / "gc.db") as store:
        store.close()  # a closed store: the commit fails
        with pytest.raises(StoreError):
            ingest(store, [_trust(n).data for n in range(1000, 1600)], now_ms=NOW)
    assert gc.get_threshold() == before
