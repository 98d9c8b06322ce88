"""Secure channel cost: handshakes/s, and encrypted vs plain throughput on loopback.

Prints complete community handshakes per second (sans-I/O, CPU only, and over
loopback TCP), then the throughput of 300-byte frames (real wire messages, sent
in batches of 64 per `send_all` and parsed one by one by `MessageReader` on
the receiving side, as the baseline measurement did) through a `SecureStream`
over loopback TCP and through plain trio TCP in the same run, and the ratio
`secure_vs_plain` (target >= 0.5 with batching).
Run from the repository root: `python -m benchmarks.transport [--frames N] [--json]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import nacl.utils
import trio

from node.net.transport import SecureStream, new_static_key, open_secure_stream, serve_secure
from protocol.channel import ChannelHandshake, Community
from protocol.events import NeedData
from protocol.handshake import KeyPair, Role
from protocol.identity import IdentityKey
from protocol.wire import MessageReader, Push, encode_message

TARGET_RATIO = 0.5
FRAME_BYTES = 300
BATCH = 64
ALICE, BOB = IdentityKey.from_seed(bytes([1]) * 32), IdentityKey.from_seed(bytes([2]) * 32)
COMMUNITY = Community(id=bytes(32), keys=(bytes([7]) * 32,))
# A real wire message (a push of one 289-byte envelope) of exactly 300 bytes, framed.
FRAME = encode_message(Push(envelopes=(b"\x5a" * 289,)))
assert len(FRAME) == FRAME_BYTES


@dataclass(frozen=True)
class Figures:
    """What one run measured."""

    handshakes_per_s_cpu: float
    handshakes_per_s_tcp: float
    frames: int
    plain_frames_per_s: float
    secure_frames_per_s: float
    plain_mb_per_s: float
    secure_mb_per_s: float
    secure_vs_plain: float
    unparsed_plain_mb_per_s: float
    unparsed_secure_mb_per_s: float
    unparsed_secure_vs_plain: float
    target: float = TARGET_RATIO


def handshakes_cpu(count: int) -> float:
    """Complete handshakes per second, both sides in this process, no I/O."""
    statics = (new_static_key(), new_static_key())
    started = time.perf_counter()
    for _ in range(count):
        initiator = ChannelHandshake(
            role=Role.INITIATOR, community=COMMUNITY, identity_key=ALICE,
            static=statics[0], ephemeral=KeyPair.from_private(nacl.utils.random(32)),
        )  # fmt: skip
        responder = ChannelHandshake(
            role=Role.RESPONDER, community=COMMUNITY, identity_key=BOB,
            static=statics[1], ephemeral=KeyPair.from_private(nacl.utils.random(32)),
        )  # fmt: skip
        responder.receive(initiator.receive(responder.receive(initiator.start())))
    return count / (time.perf_counter() - started)


async def _drain(stream: trio.abc.Stream, count: int, *, parse: bool) -> None:
    """Receive `count` frames, parsing each with the real `MessageReader` if `parse`."""
    reader, received, total = MessageReader(), 0, 0
    while received < count:
        data = await stream.receive_some(1 << 16)
        if not data:
            break
        if parse:
            reader.receive_data(bytes(data))
            while not isinstance(reader.next_event(), NeedData):
                received += 1
        else:
            total += len(data)
            received = total // FRAME_BYTES


async def _throughput(frames: int, *, secure: bool, parse: bool = True) -> float:
    """Frames per second from a client to a server over loopback TCP."""
    batch = FRAME * BATCH
    batches = frames // BATCH
    done = trio.Event()
    elapsed: list[float] = []

    async def server(stream: trio.abc.Stream) -> None:
        await _drain(stream, batches * BATCH, parse=parse)
        elapsed.append(time.perf_counter() - started)
        done.set()

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    async with trio.open_nursery() as nursery:
        if secure:
            nursery.start_soon(
                lambda: serve_secure(listeners[0], server, community=COMMUNITY, identity_key=BOB)
            )
        else:
            nursery.start_soon(trio.serve_listeners, server, listeners)
        client: trio.abc.Stream = await trio.open_tcp_stream("127.0.0.1", port)
        if secure:
            client = await open_secure_stream(
                client, role=Role.INITIATOR, community=COMMUNITY, identity_key=ALICE
            )
        started = time.perf_counter()
        for _ in range(batches):
            await client.send_all(batch)
        await done.wait()
        await client.aclose()
        nursery.cancel_scope.cancel()
    return batches * BATCH / elapsed[0]


async def _handshakes_tcp(count: int) -> float:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]

    async def server(stream: SecureStream) -> None:
        await stream.receive_some()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            lambda: serve_secure(listeners[0], server, community=COMMUNITY, identity_key=BOB)
        )
        static = new_static_key()
        started = time.perf_counter()
        for _ in range(count):
            tcp = await trio.open_tcp_stream("127.0.0.1", port)
            stream = await open_secure_stream(
                tcp, role=Role.INITIATOR, community=COMMUNITY, identity_key=ALICE, static=static
            )
            await stream.aclose()
        rate = count / (time.perf_counter() - started)
        nursery.cancel_scope.cancel()
    return rate


async def run(frames: int, rounds: int, handshakes: int) -> Figures:
    """Interleave plain and secure rounds; report medians."""
    with trio.fail_after(600):
        cpu = handshakes_cpu(handshakes)
        tcp = await _handshakes_tcp(handshakes)
        plain, secure, raw_plain, raw_secure = [], [], [], []
        for _ in range(rounds):
            plain.append(await _throughput(frames, secure=False))
            secure.append(await _throughput(frames, secure=True))
            raw_plain.append(await _throughput(frames, secure=False, parse=False))
            raw_secure.append(await _throughput(frames, secure=True, parse=False))
    plain_rate, secure_rate = statistics.median(plain), statistics.median(secure)
    raw_ratios = [s / p for s, p in zip(raw_secure, raw_plain, strict=True)]
    return Figures(
        handshakes_per_s_cpu=cpu,
        handshakes_per_s_tcp=tcp,
        frames=frames,
        plain_frames_per_s=plain_rate,
        secure_frames_per_s=secure_rate,
        plain_mb_per_s=plain_rate * FRAME_BYTES / 1e6,
        secure_mb_per_s=secure_rate * FRAME_BYTES / 1e6,
        secure_vs_plain=statistics.median(s / p for s, p in zip(secure, plain, strict=True)),
        unparsed_plain_mb_per_s=statistics.median(raw_plain) * FRAME_BYTES / 1e6,
        unparsed_secure_mb_per_s=statistics.median(raw_secure) * FRAME_BYTES / 1e6,
        unparsed_secure_vs_plain=statistics.median(raw_ratios),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Print the figures; exit 1 if the ratio misses the target."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--handshakes", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    figures = trio.run(run, args.frames, args.rounds, args.handshakes)
    if args.json:
        print(json.dumps(asdict(figures), indent=2))
        return 0 if figures.secure_vs_plain >= TARGET_RATIO else 1
    f = figures
    print(f"handshakes, both sides in one process (CPU only) {f.handshakes_per_s_cpu:>9,.0f} /s")
    print(f"handshakes over loopback TCP, sequential          {f.handshakes_per_s_tcp:>9,.0f} /s")
    print(f"{f.frames:,} frames of {FRAME_BYTES} B, {BATCH} per send_all, loopback TCP:")
    for label, rate, mb in (
        ("plain trio TCP", f.plain_frames_per_s, f.plain_mb_per_s),
        ("secure channel", f.secure_frames_per_s, f.secure_mb_per_s),
    ):
        print(f"  {label:<16} {rate:>10,.0f} frames/s {mb:>7.1f} MB/s")
    print(
        f"  bytes only, no parsing: plain {f.unparsed_plain_mb_per_s:,.0f} MB/s, secure "
        f"{f.unparsed_secure_mb_per_s:,.0f} MB/s, ratio {f.unparsed_secure_vs_plain:.3f}"
    )
    verdict = "PASS" if figures.secure_vs_plain >= TARGET_RATIO else "MISS"
    print(f"secure_vs_plain = {figures.secure_vs_plain:.3f} (target >= {TARGET_RATIO}): {verdict}")
    return 0 if figures.secure_vs_plain >= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
