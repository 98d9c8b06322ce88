"""A fresh node joins a community of N attestations over loopback TCP, with the real stack.

Two real nodes in one process: an established one whose store holds N
attestations (default 100 000, generated beforehand) and an empty one that
dials it. Everything runs for real: TCP on 127.0.0.1, the Noise handshake and
encrypted records, reconciliation, wants and pushes, verification and the
SQLite store (a file, synchronous=FULL), the newcomer's signature checks in
its worker processes (node/gossip/signatures, one per spare core) as in the
daemon. Prints the cores used, the time until the newcomer holds everything,
attestations verified and stored per second against one core's raw
`crypto_sign_open` rate on the same messages (issue 28: >= 0.85x on 2 cores,
>= 1.6x on 4), and the encrypted bytes it received against the ideal (the
bytes of the attestations themselves; target <= 1.05x).
Run from the repository root: `python -m benchmarks.join [--count N]`.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import nacl.bindings
import trio

from benchmarks.attestation import make_bodies
from node.gossip.gossip_node import GossipNode, ThreadedStore
from node.gossip.signatures import SignatureChecker, usable_cores
from node.net.transport import SecureStream, open_secure_stream, serve_secure
from node.store import Store
from protocol.attestation import (
    decode_attestation,
    decode_envelope,
    sign_attestation,
    signed_message,
)
from protocol.channel import Community
from protocol.handshake import Role
from protocol.identity import IdentityKey

COMMUNITY = Community(id=bytes(32), keys=(bytes([7]) * 32,))
TARGET_BYTES = 1.05
_RAW_SAMPLE = 5000  # messages timed for the raw rate, before and after the join


def target_ratio(cores: int) -> float:
    """Issue 28's goal against one core's raw verify: 0.85 on 2 cores, 1.6 on 4
    (3 cores: halfway; 1 core: no worker to spread the checks on, the 2-core goal)."""
    if cores >= 4:
        return 1.6
    return 1.225 if cores == 3 else 0.85


def raw_verify_per_s(envelopes: Sequence[bytes]) -> float:
    """One core's raw `crypto_sign_open` rate on these envelopes' signed messages."""
    messages = [signed_message(decode_envelope(data)) for data in envelopes]
    open_ = nacl.bindings.crypto_sign_open
    started = time.perf_counter()
    for signed, key in messages:
        open_(signed, key)
    return len(messages) / (time.perf_counter() - started)


class _CountingStream(trio.abc.Stream):
    """Counts the bytes a stream receives (what crossed the wire, encrypted)."""

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner
        self.received = 0

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        data = await self.inner.receive_some(max_bytes)
        self.received += len(data)
        return data

    async def aclose(self) -> None:
        await self.inner.aclose()


async def run(count: int, folder: Path) -> tuple[float, int, int, float, int]:
    """Return (seconds to full sync, bytes received by the newcomer, ideal bytes,
    one core's raw verify rate, signature workers)."""
    bodies = make_bodies(count, issuers=max(2, count // 20), seed=3)
    envelopes = [sign_attestation(body, key).data for key, body in bodies]
    now_ms = max(body.issued_at_ms for _, body in bodies) + 1
    old = Store.open(folder / "old.db")
    for start in range(0, count, 5000):
        old.apply([decode_attestation(e) for e in envelopes[start : start + 5000]], now_ms=now_ms)
    new = Store.open(folder / "new.db")
    gc.collect()
    gc.freeze()
    raw_before = raw_verify_per_s(envelopes[:_RAW_SAMPLE])

    def clock() -> int:
        return now_ms

    # As the daemon (node/service/assemble.py) runs them: the newcomer checks its
    # join's signatures in a worker process (node/signatures).
    checker = SignatureChecker()
    veteran = GossipNode(store=ThreadedStore(old), wall_clock_ms=clock, verify_ahead=True)
    newcomer = GossipNode(
        store=ThreadedStore(new), wall_clock_ms=clock, verify_ahead=True, signature_checker=checker
    )
    keys = IdentityKey.generate(), IdentityKey.generate()
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]

    async def serve(stream: SecureStream) -> None:
        await veteran.run_session(stream, initiator=False)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            lambda: serve_secure(listeners[0], serve, community=COMMUNITY, identity_key=keys[0])
        )
        started = time.perf_counter()
        tcp = _CountingStream(await trio.open_tcp_stream("127.0.0.1", port))
        secure = await open_secure_stream(
            tcp, role=Role.INITIATOR, community=COMMUNITY, identity_key=keys[1]
        )
        nursery.start_soon(lambda: newcomer.run_session(secure, initiator=True))
        while newcomer.stored_from_peers < count:
            await newcomer.wait_progress()
        elapsed = time.perf_counter() - started
        nursery.cancel_scope.cancel()
    checker.close()
    if checker.checked_in_worker < count:
        raise SystemExit(f"only {checker.checked_in_worker} signatures checked in the workers")
    # Before and after: a loaded machine's rate drifts; the mean of the two.
    raw = (raw_before + raw_verify_per_s(envelopes[-_RAW_SAMPLE:])) / 2
    return elapsed, tcp.received, sum(map(len, envelopes)), raw, checker.workers


def main(argv: Sequence[str] | None = None) -> int:
    """Print the figures; exit 1 if a target is missed."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        elapsed, received, ideal, raw, workers = trio.run(run, args.count, Path(folder))
    rate = args.count / elapsed
    ratio = received / ideal
    cores = usable_cores()
    target = target_ratio(cores)
    print(f"fresh node joins {args.count:,} attestations over loopback (real TCP, Noise, SQLite)")
    print(f"  cores used                {cores:8d} (the node + {workers} signature worker(s))")
    print(f"  time to hold everything   {elapsed:8.1f} s")
    print(f"  verified and stored       {rate:8,.0f} /s")
    print(f"  raw crypto_sign_open      {raw:8,.0f} /s on one core, same messages")
    verdict = "PASS" if rate >= target * raw else "MISS"
    print(
        f"join_vs_raw_verify = {rate / raw:.3f} (target >= {target:.2f} x one core's raw verify "
        f"on {cores} cores): {verdict}"
    )
    verdict = "PASS" if ratio <= TARGET_BYTES else "MISS"
    print(f"  bytes received vs ideal   {ratio:8.3f} x (target <= {TARGET_BYTES}): {verdict}")
    return 0 if rate >= target * raw and ratio <= TARGET_BYTES else 1


if __name__ == "__main__":
    sys.exit(main())
