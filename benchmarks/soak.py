"""Soak: real nodes on loopback for a while, continuous writes, a hostile peer; does
anything grow or lag?

`--nodes` members (`open_node`: keys, SQLite files with synchronous=FULL, Noise over
TCP, gossip, peer manager, trust engine) run in this process for `--seconds`. Every
`--write-interval` seconds a random member signs a vouch; every 2 s each member's
trust engine answers a score (as the API would). Meanwhile a hostile peer with the
community key connects over and over and sends garbage, forged pushes and
oversized frames. Printed every 10 s: convergence lag (oldest attestation not yet
everywhere), RSS, peers, protocol errors; at the end, errors by reason, the RSS
trend (a linear fit over the second half: it should be flat) and whether every
member holds every attestation.

Run: `python -m benchmarks.soak [--nodes 5] [--seconds 120]`.
"""

from __future__ import annotations

import argparse
import random
import resource
import secrets
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import trio

from node.home.config import NodeConfig
from node.net.transport import open_secure_stream
from node.service import Node, open_node
from protocol.handshake import Role
from protocol.identity import IdentityKey
from protocol.wire import Hello, Push, encode_message

REPORT_EVERY_S = 10.0


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:  # Linux, resident pages
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


async def _hostile(address: str, config: NodeConfig, stop: trio.Event, sent: Counter[str]) -> None:
    """Connects with the community key, then misbehaves in turn."""
    host, port = address.rsplit(":", 1)
    rng = random.Random(7)  # a benchmark's attacker, not a secret
    while not stop.is_set():
        try:
            tcp = await trio.open_tcp_stream(host, int(port))
            secure = await open_secure_stream(
                tcp, role=Role.INITIATOR, community=config.community,
                identity_key=IdentityKey.generate(),
            )  # fmt: skip
            kind = rng.choice(["garbage", "forged", "oversized"])
            await secure.send_all(encode_message(Hello(capabilities=("push",), agent="x")))
            if kind == "garbage":
                await secure.send_all(secrets.token_bytes(rng.randint(1, 4000)))
            elif kind == "forged":
                await secure.send_all(encode_message(Push(envelopes=(secrets.token_bytes(150),))))
            else:
                await secure.send_all((2**24).to_bytes(4, "big") + bytes(1000))
            sent[kind] += 1
            with trio.move_on_after(2):
                while await secure.receive_some():
                    pass
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            sent[f"refused: {type(exc).__name__}"] += 1
        except Exception as exc:  # noqa: BLE001  # the attacker's own errors are expected
            sent[f"refused: {type(exc).__name__}"] += 1
        await trio.sleep(0.2)


async def _queries(nodes: list[Node], stop: trio.Event, latencies: list[float]) -> None:
    while not stop.is_set():
        for node in nodes:
            started = time.perf_counter()
            await node.score(nodes[0].identity)
            latencies.append(time.perf_counter() - started)
        await trio.sleep(2.0)


async def run(node_count: int, seconds: float, write_interval: float, folder: Path) -> int:
    """Run the soak; return 0 if every member converged and RSS stayed flat."""
    community_id, key = secrets.token_bytes(32), secrets.token_bytes(32)
    rng = random.Random(1)
    published: dict[bytes, float] = {}  # not yet known to be everywhere
    count = 0
    rss: list[tuple[float, float]] = []
    sent: Counter[str] = Counter()
    latencies: list[float] = []
    async with trio.open_nursery() as nursery:
        nodes: list[Node] = []
        for n in range(node_count):
            bootstrap = (nodes[0].listen_address or "",) if nodes else ()
            config = NodeConfig(
                data_dir=folder / f"n{n}", community_id=community_id, community_key=key,
                listen="127.0.0.1:0", bootstrap=bootstrap, resync_interval_s=15.0,
            )  # fmt: skip
            nodes.append(await nursery.start(_run_node, config))
        stop = trio.Event()
        nursery.start_soon(_hostile, nodes[0].listen_address or "", nodes[0].config, stop, sent)
        nursery.start_soon(_queries, nodes, stop, latencies)
        started = last_report = time.monotonic()
        print(f"{node_count} nodes, {seconds:.0f} s, a vouch every {write_interval} s")
        print("    t  attestations  lag(s)  RSS(MB)  peers  protocol errors")
        while (now := time.monotonic()) - started < seconds:
            author, subject = rng.choice(nodes), rng.choice(nodes)
            context = f"c{rng.randint(0, 9)}"
            made = await author.trust(subject.identity, rng.randint(10, 100), context=context)
            published[made.id] = now
            count += 1
            await trio.sleep(write_interval)
            if now - last_report >= REPORT_EVERY_S:
                last_report = now
                rss.append((now - started, _rss_mb()))
                statuses = [await node.status() for node in nodes]
                everywhere = min(s.attestations for s in statuses)
                lag = await _lag(nodes, published, now)
                errors = sum(s.protocol_errors for s in statuses)
                peers = statistics.fmean(s.peers for s in statuses)
                print(f"{now - started:5.0f}  {everywhere:12d}  {lag:6.1f}  {rss[-1][1]:7.1f}  "
                      f"{peers:5.1f}  {errors}")  # fmt: skip
        stop.set()
        with trio.move_on_after(30):
            while await _lag(nodes, published, time.monotonic()) > 0:  # noqa: ASYNC110  # polls stores
                await trio.sleep(0.5)
        converged = await _lag(nodes, published, time.monotonic()) == 0
        nursery.cancel_scope.cancel()
    return _summary(rss, sent, latencies, converged=converged, count=count)


async def _run_node(config: NodeConfig, task_status: trio.TaskStatus[Node]) -> None:
    async with open_node(config) as node:
        task_status.started(node)
        await trio.sleep_forever()


async def _lag(nodes: list[Node], published: dict[bytes, float], now: float) -> float:
    """Age of the oldest attestation some member still lacks (0 if none); forgets
    those every member holds, so each check costs only what is still in flight."""
    for attestation_id in sorted(published, key=published.__getitem__):
        for node in nodes:
            if not await node.holds(attestation_id):
                return now - published[attestation_id]
        del published[attestation_id]
    return 0.0


def _summary(rss: list[tuple[float, float]], sent: Counter[str], latencies: list[float],
             *, converged: bool, count: int) -> int:  # fmt: skip
    half = rss[len(rss) // 2 :]
    slope = 0.0
    if len(half) >= 2:
        xs, ys = [t for t, _ in half], [m for _, m in half]
        mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
        slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / max(
            sum((x - mean_x) ** 2 for x in xs), 1e-9
        )
    print(f"attacks sent: {dict(sent)}")
    if latencies:
        ordered = sorted(latencies)
        p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
        print(f"score queries under attack: median {statistics.median(ordered) * 1000:.1f} ms, "
              f"p99 {p99 * 1000:.1f} ms ({len(ordered)} queries)")  # fmt: skip
    print(f"RSS trend over the second half: {slope * 60:+.2f} MB/min")
    print(f"all {count} attestations at every member: {'yes' if converged else 'NO'}")
    flat = abs(slope * 60) < 5.0
    return 0 if converged and flat else 1


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--write-interval", type=float, default=0.2)
    arguments = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        return trio.run(run, arguments.nodes, arguments.seconds, arguments.write_interval,
                        Path(folder))  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
