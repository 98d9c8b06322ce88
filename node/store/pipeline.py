"""The ingest pipeline: envelopes from anywhere -> verified attestations -> committed store.

Order of work per envelope (STYLE §2.3): size and structure, then signature,
then freshness against our clock, and only then the store. Nothing that fails a
check touches the store. Writes are committed in batches; the returned report
is the acknowledgement, so it is produced only after the last commit.

Signature checks dominate, and libsodium releases the GIL, so with
`verify_threads=2` each batch is verified by two threads at once (1.8x on two
cores, measured) before this thread commits it. We keep the phases apart on
purpose: a verify thread working *while* SQLite commits ran no faster than one
thread, because the Python parts of both sides kept waiting for the GIL.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import Protocol

from node.errors import StoreError
from node.store.interface import AttestationStore
from node.store.records import IngestReport, ItemReport, Outcome
from protocol.attestation import (
    Attestation,
    SignedEnvelope,
    attestation_id,
    check_fresh,
    decode_envelope,
    verify_envelope,
)
from protocol.errors import Reason, RemoteProtocolError
from protocol.identity import IdentityId

__all__ = ["DEFAULT_BATCH_SIZE", "DEFAULT_MAX_SKEW_MS", "Admission", "IngestError", "ingest"]

DEFAULT_MAX_SKEW_MS = 10 * 60 * 1000
DEFAULT_BATCH_SIZE = 2000

_Verified = tuple[list[tuple[int, Attestation]], list[ItemReport]]
# An item after the structural checks: its envelope, and the attestation if the
# simulations' cache already verified these very bytes.
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


class IngestError(StoreError):
    """A batch could not be committed. `acknowledged` holds what was committed before it."""

    def __init__(self, message: str, acknowledged: IngestReport) -> None:
        super().__init__(message)
        self.acknowledged = acknowledged


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
) -> IngestReport:
    """Decode, verify, check freshness and store `envelopes`, committing every `batch_size`.

    `admit`, if given, sees each batch of *verified* attestations and returns,
    for each, None to store it or a reason (e.g. `quota`) to refuse it: this is
    where a relay policy decides what this node is willing to keep. Before the
    signature checks it names the issuers it would refuse anyway; their items
    are refused with `quota` unverified (a forged one among them is then not
    noticed as forged, only refused).

    `verified_cache` maps envelope bytes to their verified attestation, for
    *simulations* that run many nodes in one process: identical bytes always
    decode and verify the same way, so each envelope's signature is checked
    once per process instead of once per node. Freshness is still checked per
    node. The daemon never passes one: a node trusts only its own checks.

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

    def verify(batch: list[_Decoded]) -> _Verified:
        return _verify(batch, now_ms=now_ms, max_skew_ms=max_skew_ms, cache=verified_cache)

    items: list[ItemReport] = []
    # A pool only when it helps: making one costs more than verifying a small batch.
    pool = (
        ThreadPoolExecutor(max_workers=verify_threads, thread_name_prefix="verify")
        if verify_threads > 1
        else None
    )
    with pool or contextlib.nullcontext():
        for whole in _batches(envelopes, batch_size):
            # Cheap checks first: bytes we already hold (same bytes, same id) need
            # no signature check, and gossip delivers many such copies.
            batch = _skip_known(store, whole, items, free=None if admit else verified_cache)
            decoded, rejected = _decode(batch, cache=verified_cache)
            if admit is not None and decoded:
                decoded, refused = _refused_unverified(store, decoded, admit)
                rejected += refused
            if not decoded:
                items.extend(rejected)
                continue
            step = -(-len(decoded) // verify_threads)
            parts = [decoded[i : i + step] for i in range(0, len(decoded), step)]
            if pool is not None and len(parts) > 1:
                results = list(pool.map(verify, parts))
            else:
                results = [verify(parts[0])]
            verified = [item for result in results for item in result[0]]
            rejected += [item for result in results for item in result[1]]
            if admit is not None and verified:
                verified, refused = _admitted(store, verified, admit)
                rejected += refused
            _commit(store, (verified, rejected), items, now_ms=now_ms)
    items.sort(key=lambda item: item.index)
    return IngestReport(items=tuple(items))


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
    for index, data in batch:
        cached = cache.get(data) if cache is not None else None
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


def _verify(
    batch: list[_Decoded], *, now_ms: int, max_skew_ms: int,
    cache: MutableMapping[bytes, Attestation] | None = None,
) -> _Verified:  # fmt: skip
    verified: list[tuple[int, Attestation]] = []
    rejected: list[ItemReport] = []
    for index, envelope, cached in batch:
        try:
            attestation = cached if cached is not None else verify_envelope(envelope)
            if cache is not None and cached is None:
                cache[envelope.data] = attestation
            check_fresh(attestation, now_ms=now_ms, max_skew_ms=max_skew_ms)
        except RemoteProtocolError as exc:
            rejected.append(ItemReport(index=index, outcome=Outcome.REJECTED, reason=exc.reason))
        else:
            verified.append((index, attestation))
    return verified, rejected


def _commit(
    store: AttestationStore, verified: _Verified, items: list[ItemReport], *, now_ms: int
) -> None:
    batch, rejected = verified
    try:
        outcomes = store.apply([attestation for _, attestation in batch], now_ms=now_ms)
    except StoreError as exc:
        done = sorted(items, key=lambda item: item.index)
        raise IngestError(str(exc), IngestReport(items=tuple(done))) from exc
    items.extend(rejected)
    items.extend(
        ItemReport(index=index, outcome=outcome, id=attestation.id)
        for (index, attestation), outcome in zip(batch, outcomes, strict=True)
    )
