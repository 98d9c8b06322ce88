"""Signature checks for bulk intake (a join, a catch-up, an import) in worker processes.

Why a process and not a thread: libsodium's `crypto_sign_open` runs without
the interpreter lock, but everything around it (decoding, the store's Python,
the connection's records) needs the lock, and on two cores they take turns
with the checking thread. Measured on a 100 000-attestation join
(benchmarks/join.py): the checking thread spent 198 us per attestation beside
the store's thread against 127 us alone, and the join ran at 4 500/s; with the
checks in a process it runs at about 5 450/s.

What crosses to the worker is plain bytes: the parent decodes every envelope
first (sizes, canonical form: all parsing of a peer's bytes stays here) and
sends only (signed message, public key) pairs; the worker answers one byte per
pair (`protocol.attestation.open_signed`). The workers are ours and never see a
peer, so their verdicts are as good as a check in this process. They start on
first use, so a node that never bulk-syncs never starts one. If one dies or
cannot start, the checker checks in the calling thread from then on (logged
once): slower, never wrong.

How many: one per *spare* core (`spare_cores`): the node's own process keeps
one core for decoding, the store's writer and the connections, which is where
the rest of intake's time goes. Pickling what crosses costs under a
microsecond per message, against some 60 for the check itself.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor

from protocol.attestation import (
    Attestation,
    SignedEnvelope,
    decode_envelope,
    open_signed,
    signed_message,
    verified_by,
)
from protocol.errors import RemoteProtocolError

__all__ = ["SignatureChecker", "check_in_thread", "spare_cores", "usable_cores"]

log = logging.getLogger("trustnode.signatures")
_PARENT_POLL_S = 0.25
# A part sent to a worker is at least this many messages: fewer cost more in
# the trip (pickling, a pipe, a wake-up) than checking them in parallel saves.
_MIN_PART = 64
# What the store's pipeline sends (`start`) goes in parts of this many, so that
# the thread that waits can take back those no worker has started and check
# them itself (`_shared_verdicts`): on two cores the writer's thread then
# checks signatures whenever it would otherwise wait, instead of one core
# idling while the other finishes the batch (the last batches of a call above
# all). A part is some 15 ms of checking: its trip costs well under 1 %.
_SHARED_PART = 250

Messages = list[tuple[bytes, bytes]]


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask, not the machine's count)."""
    count = getattr(os, "process_cpu_count", None)  # Python 3.13
    if count is not None:
        return int(count() or 1)
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def spare_cores() -> int:
    """Worker processes worth starting: every usable core but the node's own, at least one."""
    return max(1, usable_cores() - 1)


def check_in_thread(envelopes: Sequence[bytes]) -> dict[bytes, Attestation]:
    """The envelopes that decode and verify, checked here; the others are left
    out (the store's `ingest` rejects them with their reasons)."""
    return _check(envelopes, open_signed)


def _check(
    envelopes: Sequence[bytes], verify: Callable[[list[tuple[bytes, bytes]]], bytes]
) -> dict[bytes, Attestation]:
    """Decode here, then `verify` the signed messages (`open_signed`, here or in the worker)."""
    return _begin(envelopes, lambda messages: lambda: verify(messages))()


def _begin(
    envelopes: Sequence[bytes], start: Callable[[Messages], Callable[[], bytes]]
) -> Callable[[], dict[bytes, Attestation]]:
    """Decode here and `start` the checks; return the wait for what verified."""
    decoded: list[SignedEnvelope] = []
    for data in envelopes:
        with contextlib.suppress(RemoteProtocolError):
            decoded.append(decode_envelope(data))
    verdicts = start([signed_message(e) for e in decoded])
    return lambda: {a.data: a for a in verified_by(decoded, verdicts())}


def _start_worker(parent: int) -> None:
    """In the worker: leave Ctrl-C to the daemon (it closes the checker), and
    exit when the daemon is gone.

    A pool's worker outlives a parent killed with SIGKILL (it holds both ends
    of its own task queue, so it never sees the end of it), keeping the
    daemon's stdout and stderr open; it watches its parent instead.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def _exit_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(_PARENT_POLL_S)
    os._exit(0)


class SignatureChecker:
    """Checks batches of envelopes, decoding here and verifying in worker processes.

    `check` blocks: call it from a worker thread (`trio.to_thread.run_sync`).
    It is also the store's `Verifier` (`node.store.pipeline`): `ingest(...,
    verifier=checker)` checks the next batches' signatures in the workers while
    it writes the previous ones. `workers` defaults to `spare_cores()`.
    """

    def __init__(self, workers: int | None = None) -> None:
        if workers is not None and workers < 1:
            raise ValueError("a checker needs at least one worker")
        self.workers = spare_cores() if workers is None else workers
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        self._failed = False
        self._closed = False
        self.checked_in_worker = 0  # messages: lets tests and benchmarks see the path taken
        self.checked_here = 0  # messages of `start`'s parts the waiting thread took back

    def check(self, envelopes: Sequence[bytes]) -> dict[bytes, Attestation]:
        """The envelopes that decode and verify (as `check_in_thread`)."""
        return self.begin(envelopes)()

    def begin(self, envelopes: Sequence[bytes]) -> Callable[[], dict[bytes, Attestation]]:
        """Decode `envelopes` here and start checking their signatures in the
        workers; return the wait for the envelopes that verified (as `check`).

        Between the two this thread is free: a bulk intake decodes the next
        delivery while the workers check this one (node/gossip/intake).
        """
        return _begin(envelopes, self.start)

    def start(self, messages: Messages) -> Callable[[], bytes]:
        """Start checking `messages` in the workers, split among them; return
        the wait for their verdicts (`open_signed`'s bytes, in order).

        A batch of `2 * _SHARED_PART` or more goes in parts of `_SHARED_PART`,
        and the wait checks here the parts no worker has started yet (counted
        in `checked_here`): the store's pipeline (and the bulk intake's wait)
        waits only when it has nothing else to do, so its core checks instead
        of idling while the workers catch up.
        The wait never raises: a part whose worker failed is checked in the
        waiting thread, and so is everything from then on.
        """
        executor = self._worker()
        if executor is None:
            return lambda: open_signed(messages)
        share = len(messages) >= 2 * _SHARED_PART
        if share:
            step = _SHARED_PART
        else:
            count = max(1, min(self.workers, len(messages) // _MIN_PART))
            step = max(1, -(-len(messages) // count))
        parts = [messages[i : i + step] for i in range(0, len(messages), step)] or [messages]
        futures: list[Future[bytes] | None] = []
        for part in parts:
            try:
                futures.append(executor.submit(open_signed, part))
            except RuntimeError as exc:  # shut down or broken under us
                self._give_up(f"{type(exc).__name__}: {exc}")
                futures.append(None)
        if share:
            return lambda: self._shared_verdicts(parts, futures)
        return lambda: b"".join(
            self._verdicts(part, future) for part, future in zip(parts, futures, strict=True)
        )

    def _shared_verdicts(self, parts: list[Messages], futures: list[Future[bytes] | None]) -> bytes:
        """The verdicts of `parts`, checking here those still waiting for a worker.

        A future the pool has not handed to a worker yet can be cancelled
        (`Future.cancel`); one handed over runs there. The first part always
        stays with the workers.
        """
        taken = [
            n > 0 and future is not None and future.cancel() for n, future in enumerate(futures)
        ]
        here = {n: open_signed(parts[n]) for n, took in enumerate(taken) if took}
        if here:
            with self._lock:
                self.checked_here += sum(len(parts[n]) for n in here)
        return b"".join(
            here[n] if taken[n] else self._verdicts(part, future)
            for n, (part, future) in enumerate(zip(parts, futures, strict=True))
        )

    def _verdicts(self, messages: Messages, future: Future[bytes] | None) -> bytes:
        if future is not None:
            try:
                verdicts = future.result()
            except Exception as exc:  # noqa: BLE001 - a dead or broken worker: check here
                self._give_up(f"{type(exc).__name__}: {exc}")
            else:
                if type(verdicts) is bytes and len(verdicts) == len(messages):
                    with self._lock:  # the gossip's check thread and the store's may both wait
                        self.checked_in_worker += len(messages)
                    return verdicts
                self._give_up("the worker answered out of shape")
        return open_signed(messages)

    def _worker(self) -> ProcessPoolExecutor | None:
        with self._lock:
            if self._failed or self._closed:
                return None
            if self._executor is None:
                # Spawned, not forked: the parent runs threads (trio's, the store's).
                context = multiprocessing.get_context("spawn")
                self._executor = ProcessPoolExecutor(
                    self.workers,
                    mp_context=context,
                    initializer=_start_worker,
                    initargs=(os.getpid(),),
                )
            return self._executor

    def _give_up(self, why: str) -> None:
        with self._lock:
            if self._failed or self._closed:  # closed under a check: not a failure
                return
            self._failed = True
            executor, self._executor = self._executor, None
        log.warning("signature worker failed (%s); checking signatures in-process", why)
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the worker (a check in flight finishes in the calling thread)."""
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
