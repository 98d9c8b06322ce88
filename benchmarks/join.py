"""A fresh node joins a community of N attestations over loopback TCP, with the real stack.

Two real nodes, each in its own process as on two machines: an established
one whose store holds N attestations (default 100 000, generated beforehand)
and an empty one that dials it. Both share this machine's cores, so the
sender's work counts against the same cores as the newcomer's. Everything
runs for real: TCP on 127.0.0.1, the Noise handshake and encrypted records,
reconciliation, wants and pushes, verification and the SQLite store (a file,
synchronous=FULL), the newcomer's signature checks in its worker processes
(node/gossip/signatures, one per spare core, started on first use) as in
the daemon. Prints the cores used, the time until the newcomer holds everything,
attestations verified and stored per second against one core's raw
`crypto_sign_open` rate on the same messages (issue 28: >= 0.85x on 2 cores,
>= 1.6x on 4), the encrypted bytes it received against the ideal (the
bytes of the attestations themselves; target <= 1.05x), and the CPU time
per attestation of each process (the newcomer's own, its signature workers',
the veteran's): unlike the rate, those barely move when other work shares
the machine.
Run from the repository root: `python -m benchmarks.join [--count N]`.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
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


_CPU_FIELDS = ("newcomer", "workers", "veteran")


def _cpu_s(who: int = resource.RUSAGE_SELF) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _veteran(path: str, now_ms: int, control: Connection) -> None:
    """The established node, in its own process: serve `path`'s store until told to stop.

    Sends its port, then (on any message) the CPU seconds it spent serving.
    """
    trio.run(_serve_veteran, path, now_ms, control)


async def _serve_veteran(path: str, now_ms: int, control: Connection) -> None:
    veteran = GossipNode(
        store=ThreadedStore(Store.open(path)), wall_clock_ms=lambda: now_ms, verify_ahead=True
    )
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    key = IdentityKey.generate()

    async def serve(stream: SecureStream) -> None:
        await veteran.run_session(stream, initiator=False)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            lambda: serve_secure(listeners[0], serve, community=COMMUNITY, identity_key=key)
        )
        gc.collect()
        gc.freeze()
        started = _cpu_s()
        control.send(listeners[0].socket.getsockname()[1])
        await trio.to_thread.run_sync(control.recv)
        control.send(_cpu_s() - started)
        nursery.cancel_scope.cancel()


@dataclass(frozen=True)
class Result:
    """What one join measured."""

    elapsed_s: float
    received_bytes: int
    ideal_bytes: int
    raw_per_s: float
    workers: int
    cpu_s: dict[str, float]  # per process, over the join: see _CPU_FIELDS


async def run(count: int, folder: Path) -> Result:
    """Join `count` attestations from a veteran process; time it and count its CPU."""
    bodies = make_bodies(count, issuers=max(2, count // 20), seed=3)
    envelopes = [sign_attestation(body, key).data for key, body in bodies]
    now_ms = max(body.issued_at_ms for _, body in bodies) + 1
    with Store.open(folder / "old.db") as old:
        for start in range(0, count, 5000):
            chunk = envelopes[start : start + 5000]
            old.apply([decode_attestation(e) for e in chunk], now_ms=now_ms)
    new = Store.open(folder / "new.db")
    control, theirs = multiprocessing.get_context("spawn").Pipe()
    veteran = multiprocessing.get_context("spawn").Process(
        target=_veteran, args=(str(folder / "old.db"), now_ms, theirs), daemon=True
    )
    veteran.start()
    port = await trio.to_thread.run_sync(control.recv)
    gc.collect()
    gc.freeze()
    raw_before = raw_verify_per_s(envelopes[:_RAW_SAMPLE])

    def clock() -> int:
        return now_ms

    # As the daemon (node/service/assemble.py) runs them: the newcomer checks its
    # join's signatures in a worker process (node/signatures), started on first use.
    checker = SignatureChecker()
    newcomer = GossipNode(
        store=ThreadedStore(new), wall_clock_ms=clock, verify_ahead=True, signature_checker=checker
    )
    async with trio.open_nursery() as nursery:
        cpu_before = _cpu_s(), _cpu_s(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        tcp = _CountingStream(await trio.open_tcp_stream("127.0.0.1", port))
        secure = await open_secure_stream(
            tcp, role=Role.INITIATOR, community=COMMUNITY, identity_key=IdentityKey.generate()
        )
        nursery.start_soon(lambda: newcomer.run_session(secure, initiator=True))
        while newcomer.stored_from_peers < count:
            await newcomer.wait_progress()
        elapsed = time.perf_counter() - started
        newcomer_s = _cpu_s() - cpu_before[0]
        nursery.cancel_scope.cancel()
    control.send("stop")
    veteran_s = await trio.to_thread.run_sync(control.recv)
    checker.close()  # the workers exit and are reaped: their CPU time is ours now
    workers_s = _cpu_s(resource.RUSAGE_CHILDREN) - cpu_before[1]
    veteran.join()
    new.close()
    # The waiting thread may check the parts no worker had started (SignatureChecker.start).
    checked = checker.checked_in_worker + checker.checked_here
    if checker.checked_in_worker == 0 or checked < count:
        raise SystemExit(f"only {checker.checked_in_worker} signatures checked in the workers")
    # Before and after: a loaded machine's rate drifts; the mean of the two.
    raw = (raw_before + raw_verify_per_s(envelopes[-_RAW_SAMPLE:])) / 2
    cpu = dict(zip(_CPU_FIELDS, (newcomer_s, workers_s, veteran_s), strict=True))
    return Result(elapsed, tcp.received, sum(map(len, envelopes)), raw, checker.workers, cpu)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the figures; exit 1 if a target is missed."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        result = trio.run(run, args.count, Path(folder))
    rate = args.count / result.elapsed_s
    ratio = result.received_bytes / result.ideal_bytes
    raw = result.raw_per_s
    cores = usable_cores()
    target = target_ratio(cores)
    print(f"fresh node joins {args.count:,} attestations over loopback (real TCP, Noise, SQLite)")
    print(
        f"  cores used                {cores:8d} (the node + {result.workers} signature worker(s))"
    )
    print(f"  load average              {os.getloadavg()[0]:8.2f} (1 min, at the end)")
    print(f"  time to hold everything   {result.elapsed_s:8.1f} s")
    print(f"  verified and stored       {rate:8,.0f} /s")
    print(f"  raw crypto_sign_open      {raw:8,.0f} /s on one core, same messages")
    verdict = "PASS" if rate >= target * raw else "MISS"
    print(
        f"join_vs_raw_verify = {rate / raw:.3f} (target >= {target:.2f} x one core's raw verify "
        f"on {cores} cores): {verdict}"
    )
    verdict = "PASS" if ratio <= TARGET_BYTES else "MISS"
    print(f"  bytes received vs ideal   {ratio:8.3f} x (target <= {TARGET_BYTES}): {verdict}")
    per = {name: seconds / args.count * 1e6 for name, seconds in result.cpu_s.items()}
    print(
        "  CPU per attestation       "
        + ", ".join(f"{name} {us:.1f} us" for name, us in per.items())
        + f"; raw verify {1e6 / raw:.1f} us"
    )
    return 0 if rate >= target * raw and ratio <= TARGET_BYTES else 1


if __name__ == "__main__":
    sys.exit(main())
