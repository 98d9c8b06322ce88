"""A fresh node joins a community of N attestations over loopback TCP, with the real stack.

Two real nodes in one process: an established one whose store holds N
attestations (default 100 000, generated beforehand) and an empty one that
dials it. Everything runs for real: TCP on 127.0.0.1, the Noise handshake and
encrypted records, reconciliation, wants and pushes, verification and the
SQLite store (a file, synchronous=FULL), the newcomer's signature checks in
its worker process (node/signatures) as in the daemon. Prints the time until the newcomer
holds everything, attestations verified and stored per second (target >=
5 000/s on this 2-core machine), and the encrypted bytes it received against
the ideal (the bytes of the attestations themselves; target <= 1.05x).
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

import trio

from benchmarks.attestation import make_bodies
from node.gossip.gossip_node import GossipNode, ThreadedStore
from node.gossip.signatures import SignatureChecker
from node.net.transport import SecureStream, open_secure_stream, serve_secure
from node.store import Store
from protocol.attestation import decode_attestation, sign_attestation
from protocol.channel import Community
from protocol.handshake import Role
from protocol.identity import IdentityKey

COMMUNITY = Community(id=bytes(32), keys=(bytes([7]) * 32,))
TARGET_RATE = 5000.0
TARGET_BYTES = 1.05


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


async def run(count: int, folder: Path) -> tuple[float, int, int]:
    """Return (seconds to full sync, bytes received by the newcomer, ideal bytes)."""
    bodies = make_bodies(count, issuers=max(2, count // 20), seed=3)
    envelopes = [sign_attestation(body, key).data for key, body in bodies]
    now_ms = max(body.issued_at_ms for _, body in bodies) + 1
    old = Store.open(folder / "old.db")
    for start in range(0, count, 5000):
        old.apply([decode_attestation(e) for e in envelopes[start : start + 5000]], now_ms=now_ms)
    new = Store.open(folder / "new.db")
    gc.collect()
    gc.freeze()

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
        raise SystemExit(f"only {checker.checked_in_worker} signatures checked in the worker")
    return elapsed, tcp.received, sum(map(len, envelopes))


def main(argv: Sequence[str] | None = None) -> int:
    """Print the figures; exit 1 if a target is missed."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        elapsed, received, ideal = trio.run(run, args.count, Path(folder))
    rate = args.count / elapsed
    ratio = received / ideal
    print(f"fresh node joins {args.count:,} attestations over loopback (real TCP, Noise, SQLite)")
    print(f"  time to hold everything   {elapsed:8.1f} s")
    verdict = "PASS" if rate >= TARGET_RATE else "MISS"
    print(f"  verified and stored       {rate:8,.0f} /s (target >= {TARGET_RATE:,.0f}): {verdict}")
    verdict = "PASS" if ratio <= TARGET_BYTES else "MISS"
    print(f"  bytes received vs ideal   {ratio:8.3f} x (target <= {TARGET_BYTES}): {verdict}")
    return 0 if rate >= TARGET_RATE and ratio <= TARGET_BYTES else 1


if __name__ == "__main__":
    sys.exit(main())
