"""The ingest pipeline: envelopes from anywhere -> verified attestations -> committed store.

Every path that stores others' attestations comes through `ingest`: a peer's
push, a sync session's records, `import`, an embedding app. Order of work per
envelope (STYLE §2.3): size and structure, then signature, then freshness
against our clock, and only then the store. Nothing that fails a check touches
the store. Writes are committed in batches, one transaction each; the returned
report is the acknowledgement, so it is produced only after the last commit.

Three stages, bounded between them:

    calling thread            verifier (worker processes)     calling thread
    skip known, decode,  -->  crypto_sign_open per message -->  freshness, admission,
    quota refusals            one byte per message              Store.apply, report

With a `verifier` (`node.gossip.signatures.SignatureChecker`: one worker
process per spare core) the signatures of the next batches are checked while
this thread decodes and writes: on two cores the store's writer and the checks
then run side by side, not in turn. At most `verifier.workers + 1` batches are
checked ahead of the writer, so memory stays bounded whatever the input's
length. When the writer must wait for a batch's verdicts, it checks the parts
of it no worker has started yet itself (`SignatureChecker.start`), so neither
core idles at the end of a call or when the checks are the slower stage.
The writer stays this thread on purpose: the store is single-threaded, and
the cheap checks (known ids, quotas) read it too.

With a relay policy (`admit`) nothing is checked ahead: its refusal of a flood
*before* signatures are checked counts what is committed, so each batch is
committed before the next one is judged (tests/e2e/test_hostile_peers.py).

Without a verifier, signatures are checked here (or, with `verify_threads=2`,
in two threads: libsodium releases the GIL; 1.8x on two cores, measured, when
nothing else competes for the lock).
"""

from __future__ import annotations

import gc
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, Sized
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from typing import Protocol

from node.errors import StoreError
from node.store.interface import AttestationStore
from node.store.records import IngestReport, ItemReport, Outcome
from protocol.attestation import (
    Attestation,
    SignedEnvelope,
    attestation_id,
    decode_envelope,
    open_signed,
    signed_message,
)
from protocol.errors import Reason, RemoteProtocolError
from protocol.identity import IdentityId

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_MAX_SKEW_MS",
    "Admission",
    "IngestError",
    "Verifier",
    "ingest",
]

DEFAULT_MAX_SKEW_MS = 10 * 60 * 1000
DEFAULT_BATCH_SIZE = 2000
# While a bulk ingest runs, the cyclic GC's youngest generation is collected
# after this many allocations instead of 700: a batch allocates some ten
# objects per record (envelopes, bodies, rows, reports), none in a cycle, and
# the default threshold ran a collection every ~70 records, ~4-5 us per record
# measured (py-spy). Refcounting still frees everything at once.
_BULK_GC_THRESHOLD = 50000
# Ingests smaller than this keep the interpreter's thresholds (a push of a few).
_BULK_GC_MIN = 500
_gc_lock = threading.Lock()
_gc_holders = 0
_gc_saved: tuple[int, int, int] = (700, 10, 10)
# Below this many signatures a batch is checked here: a trip to a worker
# process (pickling, a pipe, a wake-up) costs more than checking a few.
MIN_SIGNATURES_FOR_WORKERS = 64

Messages = list[tuple[bytes, bytes]]
# An item after the structural checks: its envelope, and the attestation if the
# simulations' cache (or a check ahead, see GossipNode) already verified these bytes.
_Decoded = tuple[int, SignedEnvelope, Attestation | None]


class Admission(Protocol):
    """What a node agrees to store (the relay policy, `node.gossip.relay.RelayGate`)."""

    def __call__(
        self, store: AttestationStore, attestations: list[Attestation]
    ) -> list[Reason | None]:
        """For each verified attestation: None to store it, or the reason to refuse it."""
        ...

    def refused_unverified(self, store: AttestationStore, issuers: list[IdentityId]) -> list[bool]:
        """For each item's issuer: would the item be refused whatever it says (over quota)?

        Asked *before* the signature checks: refusing costs less than checking,
        which matters when a farm floods us past its budget.
        """
        ...


class Verifier(Protocol):
    """Checks signed messages away from the calling thread (`SignatureChecker`)."""

    @property
    def workers(self) -> int:
        """How many checks run at once: the pipeline keeps that many batches ahead."""
        ...

    def start(self, messages: Messages) -> Callable[[], bytes]:
        """Start checking `messages` (`protocol.attestation.signed_message` pairs).

        Returns a function that waits for the verdicts: `open_signed`'s one byte
        per message, 1 if it verifies. It never raises for a failed worker: the
        verifier then checks in the waiting thread (slower, never wrong).
        """
        ...


class IngestError(StoreError):
    """A batch could not be committed. `acknowledged` holds what was committed before it."""

    def __init__(self, message: str, acknowledged: IngestReport) -> None:
        super().__init__(message)
        self.acknowledged = acknowledged


@dataclass(slots=True)
class _Batch:
    """One transaction's worth of envelopes between the stages."""

    settled: list[ItemReport]  # known already, or refused by the cheap checks
    decoded: list[_Decoded]  # structurally sound, to store if they verify
    unchecked: list[tuple[int, SignedEnvelope]] = field(default_factory=list)
    verdicts: Callable[[], bytes] = bytes  # for `unchecked`, in its order


def ingest(
    store: AttestationStore,
    envelopes: Iterable[bytes],
    *,
    now_ms: int,
    max_skew_ms: int = DEFAULT_MAX_SKEW_MS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    verify_threads: int = 1,
    admit: Admission | None = None,
    verified_cache: MutableMapping[bytes, Attestation] | None = None,
    verifier: Verifier | None = None,
) -> IngestReport:
    """Decode, verify, check freshness and store `envelopes`, committing every `batch_size`.

    `admit`, if given, sees each batch of *verified* attestations and returns,
    for each, None to store it or a reason (e.g. `quota`) to refuse it: this is
    where a relay policy decides what this node is willing to keep. Before the
    signature checks it names the issuers it would refuse anyway; their items
    are refused with `quota` unverified (a forged one among them is then not
    noticed as forged, only refused).

    `verifier` checks signatures in worker processes while this thread decodes
    and writes (see the module's docstring); without one they are checked here,
    in `verify_threads` threads.

    `verified_cache` maps envelope bytes to their verified attestation, for
    *simulations* that run many nodes in one process: identical bytes always
    decode and verify the same way, so each envelope's signature is checked
    once per process instead of once per node. Freshness is still checked per
    node. The daemon passes only what it has just checked itself.

    Returns:
        One `ItemReport` per envelope, in input order. Rejected items carry the
        protocol's reason (`bad_signature`, `from_future`, ...).

    Raises:
        IngestError: a commit failed (disk full, read-only store). Its
            `acknowledged` report covers the batches committed before; the
            failed batch and everything after it were not stored.
    """
    if batch_size < 1 or verify_threads < 1:
        raise ValueError("batch_size and verify_threads must be at least 1")
    with _fewer_collections(isinstance(envelopes, Sized) and len(envelopes) >= _BULK_GC_MIN):
        if verifier is None and verify_threads > 1:
            with ThreadPoolExecutor(verify_threads, thread_name_prefix="verify") as pool:
                threads = _Threads(pool, verify_threads)
                return _run(
                    store, envelopes, now_ms, max_skew_ms, batch_size, admit, verified_cache,
                    threads,
                )  # fmt: skip
        return _run(
            store, envelopes, now_ms, max_skew_ms, batch_size, admit, verified_cache, verifier
        )


@contextmanager
def _fewer_collections(bulk: bool) -> Iterator[None]:
    """Raise the GC's gen-0 threshold for the length of a bulk ingest (`_BULK_GC_THRESHOLD`).

    The thresholds are the process's: nested or concurrent ingests (the store
    thread and a test's) share one raise, and the last one out restores them.
    """
    global _gc_holders, _gc_saved  # one process-wide setting, counted
    if not bulk:
        yield
        return
    with _gc_lock:
        if _gc_holders == 0:
            _gc_saved = gc.get_threshold()
            gc.set_threshold(max(_BULK_GC_THRESHOLD, _gc_saved[0]), *_gc_saved[1:])
        _gc_holders += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_holders -= 1
            if _gc_holders == 0:
                gc.set_threshold(*_gc_saved)


def _run(
    store: AttestationStore, envelopes: Iterable[bytes], now_ms: int, max_skew_ms: int,
    batch_size: int, admit: Admission | None,
    cache: MutableMapping[bytes, Attestation] | None, verifier: Verifier | None,
) -> IngestReport:  # fmt: skip
    # Checked ahead of the writer: a bounded queue. None with a relay policy,
    # whose refusals before checking count what each batch committed.
    ahead = 0 if admit is not None or verifier is None else verifier.workers + 1
    pending: deque[_Batch] = deque()
    items: list[ItemReport] = []
    for whole in _batches(envelopes, batch_size):
        batch = _prepare(store, whole, admit=admit, cache=cache)
        batch.verdicts = _start(batch.unchecked, verifier)
        pending.append(batch)
        while len(pending) > ahead:
            _commit(store, pending.popleft(), items, now_ms, max_skew_ms, admit, cache)
    while pending:
        _commit(store, pending.popleft(), items, now_ms, max_skew_ms, admit, cache)
    items.sort(key=lambda item: item.index)
    return IngestReport(items=tuple(items))


def _prepare(
    store: AttestationStore,
    whole: list[tuple[int, bytes]],
    *,
    admit: Admission | None,
    cache: Mapping[bytes, Attestation] | None,
) -> _Batch:
    """The cheap checks of one batch: known ids, structure, quotas refused unverified."""
    settled: list[ItemReport] = []
    # Bytes we already hold (same bytes, same id) need no signature check, and
    # gossip delivers many such copies.
    todo = _skip_known(store, whole, settled, free=None if admit else cache)
    decoded, rejected = _decode(todo, cache=cache)
    settled += rejected
    if admit is not None and decoded:
        decoded, refused = _refused_unverified(store, decoded, admit)
        settled += refused
    unchecked = [(index, envelope) for index, envelope, known in decoded if known is None]
    return _Batch(settled=settled, decoded=decoded, unchecked=unchecked)


def _start(
    unchecked: list[tuple[int, SignedEnvelope]], verifier: Verifier | None
) -> Callable[[], bytes]:
    messages = [signed_message(envelope) for _, envelope in unchecked]
    if verifier is None or len(messages) < MIN_SIGNATURES_FOR_WORKERS:
        return lambda: open_signed(messages)
    return verifier.start(messages)


class _Threads:
    """`verify_threads` threads as a `Verifier` (libsodium releases the GIL)."""

    def __init__(self, pool: ThreadPoolExecutor, count: int) -> None:
        self._pool = pool
        self.workers = count

    def start(self, messages: Messages) -> Callable[[], bytes]:
        step = -(-len(messages) // self.workers)
        parts = [messages[i : i + step] for i in range(0, len(messages), step)]
        futures = [self._pool.submit(open_signed, part) for part in parts]
        return lambda: b"".join(future.result() for future in futures)


def _skip_known(
    store: AttestationStore,
    batch: list[tuple[int, bytes]],
    items: list[ItemReport],
    *,
    free: Mapping[bytes, Attestation] | None,
) -> list[tuple[int, bytes]]:
    """Report the envelopes we already store as duplicates; return the others.

    Envelopes in `free` (a simulation's cache of verified bytes) cost no
    signature check, so the store is not asked about them: looking them up
    cost more than `Store.apply` finding the rare copy among them itself
    (a fifth of ingesting a gossip batch, measured with 1000 simulated
    stores). With a relay policy everything is asked, as its quotas count
    only what is new.
    """
    asked = batch if not free else [(i, data) for i, data in batch if data not in free]
    if not asked:
        return batch
    ids = [attestation_id(data) for _, data in asked]
    held = store.existing_ids(ids)
    if not held:
        return batch
    known = set()
    for (index, _), identifier in zip(asked, ids, strict=True):
        if identifier in held:
            known.add(index)
            items.append(ItemReport(index=index, outcome=Outcome.DUPLICATE, id=identifier))
    return [item for item in batch if item[0] not in known]


def _admitted(
    store: AttestationStore, verified: list[tuple[int, Attestation]], admit: Admission
) -> tuple[list[tuple[int, Attestation]], list[ItemReport]]:
    decisions = admit(store, [attestation for _, attestation in verified])
    kept, refused = [], []
    for (index, attestation), reason in zip(verified, decisions, strict=True):
        if reason is None:
            kept.append((index, attestation))
        else:
            refused.append(ItemReport(index=index, outcome=Outcome.REJECTED, reason=reason))
    return kept, refused


def _batches(envelopes: Iterable[bytes], size: int) -> Iterator[list[tuple[int, bytes]]]:
    iterator = enumerate(envelopes)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _decode(
    batch: list[tuple[int, bytes]], *, cache: Mapping[bytes, Attestation] | None
) -> tuple[list[_Decoded], list[ItemReport]]:
    """Size and structure (cheap); signatures come later."""
    decoded: list[_Decoded] = []
    rejected: list[ItemReport] = []
    get = cache.get if cache is not None else None
    for index, data in batch:
        cached = get(data) if get is not None else None
        if cached is not None:
            decoded.append((index, cached.envelope, cached))
            continue
        try:
            decoded.append((index, decode_envelope(data), None))
        except RemoteProtocolError as exc:
            rejected.append(ItemReport(index=index, outcome=Outcome.REJECTED, reason=exc.reason))
    return decoded, rejected


def _refused_unverified(
    store: AttestationStore, decoded: list[_Decoded], admit: Admission
) -> tuple[list[_Decoded], list[ItemReport]]:
    refused = admit.refused_unverified(store, [envelope.body.issuer for _, envelope, _ in decoded])
    if not any(refused):
        return decoded, []
    kept = [item for item, no in zip(decoded, refused, strict=True) if not no]
    quota = [
        ItemReport(index=item[0], outcome=Outcome.REJECTED, reason=Reason.QUOTA)
        for item, no in zip(decoded, refused, strict=True)
        if no
    ]
    return kept, quota


def _verified(
    batch: _Batch, now_ms: int, max_skew_ms: int, cache: MutableMapping[bytes, Attestation] | None
) -> tuple[list[tuple[int, Attestation]], list[ItemReport]]:
    """The batch's attestations that verified and are not from our future, in input order."""
    verdicts = batch.verdicts()
    if len(verdicts) != len(batch.unchecked):  # a verifier out of shape: never trust it
        verdicts = open_signed([signed_message(envelope) for _, envelope in batch.unchecked])
    ok = {
        index for (index, _), verdict in zip(batch.unchecked, verdicts, strict=True) if verdict == 1
    }
    latest = now_ms + max_skew_ms
    verified: list[tuple[int, Attestation]] = []
    rejected: list[ItemReport] = []
    for index, envelope, known in batch.decoded:
        if known is not None:
            attestation = known
        elif index in ok:
            # The type is the proof of the check: the verdict was this node's own.
            attestation = Attestation(envelope)
            if cache is not None:
                cache[envelope.data] = attestation
        else:
            rejected.append(
                ItemReport(index=index, outcome=Outcome.REJECTED, reason=Reason.BAD_SIGNATURE)
            )
            continue
        if attestation.issued_at_ms > latest:  # protocol.attestation.check_fresh, inline
            rejected.append(
                ItemReport(index=index, outcome=Outcome.REJECTED, reason=Reason.FROM_FUTURE)
            )
        else:
            verified.append((index, attestation))
    return verified, rejected


def _commit(
    store: AttestationStore, batch: _Batch, items: list[ItemReport], now_ms: int,
    max_skew_ms: int, admit: Admission | None, cache: MutableMapping[bytes, Attestation] | None,
) -> None:  # fmt: skip
    """Settle one batch and store what passed, in one transaction; then report it."""
    verified, rejected = _verified(batch, now_ms, max_skew_ms, cache)
    if admit is not None and verified:
        verified, refused = _admitted(store, verified, admit)
        rejected += refused
    if verified:
        try:
            outcomes = store.apply([attestation for _, attestation in verified], now_ms=now_ms)
        except StoreError as exc:
            done = sorted(items, key=lambda item: item.index)
            raise IngestError(str(exc), IngestReport(items=tuple(done))) from exc
    else:
        outcomes = []
    # Acknowledged only now: the batch's transaction has committed.
    items += batch.settled
    items += rejected
    items.extend(
        ItemReport(index=index, outcome=outcome, id=attestation.id)
        for (index, attestation), outcome in zip(verified, outcomes, strict=True)
    )
