"""Signature checks for bulk intake (a join, a catch-up) in a worker process.

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
pair (`protocol.attestation.open_signed`). The worker is ours and never sees a
peer, so its verdicts are as good as a check in this process. It starts on
first use, so a node that never bulk-syncs never starts it. If it dies or
cannot start, the checker checks in the calling thread from then on (logged
once): slower, never wrong.
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
from concurrent.futures import ProcessPoolExecutor

from protocol.attestation import (
    Attestation,
    SignedEnvelope,
    decode_envelope,
    open_signed,
    signed_message,
    verified_by,
)
from protocol.errors import RemoteProtocolError

__all__ = ["SignatureChecker", "check_in_thread"]

log = logging.getLogger("trustnode.signatures")
_PARENT_POLL_S = 0.25


def check_in_thread(envelopes: Sequence[bytes]) -> dict[bytes, Attestation]:
    """The envelopes that decode and verify, checked here; the others are left
    out (the store's `ingest` rejects them with their reasons)."""
    return _check(envelopes, open_signed)


def _check(
    envelopes: Sequence[bytes], verify: Callable[[list[tuple[bytes, bytes]]], bytes]
) -> dict[bytes, Attestation]:
    """Decode here, then `verify` the signed messages (`open_signed`, here or in the worker)."""
    decoded: list[SignedEnvelope] = []
    for data in envelopes:
        with contextlib.suppress(RemoteProtocolError):
            decoded.append(decode_envelope(data))
    verdicts = verify([signed_message(e) for e in decoded])
    return {a.data: a for a in verified_by(decoded, verdicts)}


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
    """Checks batches of envelopes, decoding here and verifying in a worker process.

    `check` blocks: call it from a worker thread (`trio.to_thread.run_sync`).
    One worker process: the node's other core is for the store and the
    connections; more would take turns with them.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        self._failed = False
        self._closed = False
        self.checked_in_worker = 0  # envelopes: lets tests and benchmarks see the path taken

    def check(self, envelopes: Sequence[bytes]) -> dict[bytes, Attestation]:
        """The envelopes that decode and verify (as `check_in_thread`)."""
        return _check(envelopes, self._verify)

    def _verify(self, messages: list[tuple[bytes, bytes]]) -> bytes:
        verdicts = self._verify_in_worker(messages)
        if verdicts is None:
            return open_signed(messages)
        self.checked_in_worker += len(messages)
        return verdicts

    def _verify_in_worker(self, messages: list[tuple[bytes, bytes]]) -> bytes | None:
        executor = self._worker()
        if executor is None:
            return None
        try:
            verdicts = executor.submit(open_signed, messages).result()
        except Exception as exc:  # noqa: BLE001 - a dead or broken worker: check here
            self._give_up(f"{type(exc).__name__}: {exc}")
            return None
        if type(verdicts) is not bytes or len(verdicts) != len(messages):
            self._give_up("the worker answered out of shape")
            return None
        return verdicts

    def _worker(self) -> ProcessPoolExecutor | None:
        with self._lock:
            if self._failed or self._closed:
                return None
            if self._executor is None:
                # Spawned, not forked: the parent runs threads (trio's, the store's).
                context = multiprocessing.get_context("spawn")
                self._executor = ProcessPoolExecutor(
                    1, mp_context=context, initializer=_start_worker, initargs=(os.getpid(),)
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
