"""A peer pushes a million valid attestations from freshly made identities at a real daemon.

Identities are free, so signatures do not stop this attack: the relay policy's
budget for unvouched issuers does (`node/gossip/relay.py`: 20 stored per issuer, 200 000
for all of them together; the rest refused with the benign reason `quota`).
This benchmark checks that the budget holds on the real code path and what the
attack costs the victim while an honest member keeps using it:

* the victim and an honest member are two `trustnode run` daemons (subprocesses,
  SQLite files, Noise over loopback TCP); the honest one joined by invite and the
  victim vouches for it;
* the attacker (this process) holds the community key (the worst case), makes
  `--attestations` envelopes from as many fresh identities beforehand (in
  `--workers` processes), then pushes them as fast as the victim reads;
* meanwhile the honest member vouches every few seconds over its HTTP API, and
  we time until the victim stores each vouch (honest sync under attack), and we
  time the victim's HTTP API (`GET /v1/score`) every 50 ms, against the same
  query before the attack.

Printed: push rate, what the victim stored and refused, its CPU time and RSS over
the run, honest-sync delays, API latency (median, p99) idle vs under attack.

Run: `python -m benchmarks.flood [--attestations 1000000] [--workers 2]`.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import trio

from node.home.config import load_config
from node.net.transport import open_secure_stream
from protocol.attestation import AttestationBody, sign_attestation
from protocol.handshake import Role
from protocol.identity import IdentityId, IdentityKey, decode_identity_text, encode_identity_text
from protocol.statement import Trust
from protocol.wire import MAX_PUSH_ENVELOPES, Hello, Push, encode_message

INSTALLED = Path(sys.executable).with_name("trustnode")
COMMAND = [str(INSTALLED)] if INSTALLED.exists() else [sys.executable, "-m", "node.cli"]
PROBE_EVERY_S = 0.05
VOUCH_EVERY_S = 3.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _cli(folder: Path, *args: str) -> str:
    done = subprocess.run(  # noqa: S603  # our own CLI, our own arguments
        [*COMMAND, "--data-dir", str(folder), *args],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return done.stdout


class Daemon:
    """A `trustnode run` subprocess and an HTTP client for its API."""

    def __init__(self, folder: Path) -> None:
        self.log = folder / "daemon.log"
        self.process = subprocess.Popen(  # noqa: S603  # our own CLI
            [*COMMAND, "--data-dir", str(folder), "run"],
            stdout=subprocess.PIPE, stderr=self.log.open("w"), text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        ready = self.process.stdout.readline()
        if not ready.startswith("ready: "):
            raise SystemExit(f"daemon did not start: {ready!r}")
        self.identity = ready.split()[1]
        self.peers_address = ready.split("peers=")[1].split()[0]
        token = (folder / "api.token").read_text().strip()
        self.api = httpx.Client(
            base_url=f"http://{ready.split('api=')[1].strip()}",
            headers={"Authorization": f"Bearer {token}"}, timeout=30,
        )  # fmt: skip

    def cpu_s(self) -> float:
        with open(f"/proc/{self.process.pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        with open(f"/proc/{self.process.pid}/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    def status(self) -> dict[str, Any]:
        answer: dict[str, Any] = self.api.get("/v1/status").json()
        return answer

    def stop(self) -> None:
        self.api.close()
        if self.process.poll() is not None:
            tail = self.log.read_text(errors="replace").splitlines()[-30:]
            print(f"the daemon at {self.log.parent.name} exited ({self.process.returncode}):")
            print("\n".join(tail))
            return
        self.process.terminate()
        self.process.wait(timeout=60)


def _make(start: int, count: int, subject: IdentityId, now_ms: int) -> list[bytes]:
    """`count` attestations, each from its own fresh identity (a worker's share)."""
    made = []
    for n in range(start, start + count):
        key = IdentityKey.from_seed(secrets.token_bytes(32))
        body = AttestationBody(issuer=key.identity, issued_at_ms=now_ms + n % 1000,
                               statement=Trust(subject=subject, value=100))  # fmt: skip
        made.append(sign_attestation(body, key).data)
    return made


def _prepare(count: int, subject: IdentityId, workers: int) -> list[bytes]:
    now_ms = int(time.time() * 1000)
    share = -(-count // (workers * 8))
    with ProcessPoolExecutor(workers) as pool:
        parts = pool.map(
            _make,
            range(0, count, share),
            [min(share, count - s) for s in range(0, count, share)],
            [subject] * len(range(0, count, share)),
            [now_ms] * len(range(0, count, share)),
        )
        return [envelope for part in parts for envelope in part]


@dataclass
class Observed:
    """What the probes saw while the attack ran."""

    api_s: list[float] = field(default_factory=list)
    honest_sync_s: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    pushed: int = 0
    push_s: float = 0.0
    cut_off: str = ""


async def _attack(victim: Daemon, folder: Path, envelopes: list[bytes], seen: Observed) -> None:
    config = load_config(folder)
    host, port = victim.peers_address.rsplit(":", 1)
    tcp = await trio.open_tcp_stream(host, int(port))
    stream = await open_secure_stream(tcp, role=Role.INITIATOR, community=config.community,
                                      identity_key=IdentityKey.generate())  # fmt: skip
    started = time.perf_counter()
    try:
        await stream.send_all(encode_message(Hello(capabilities=("push",), agent="flood")))
        for start in range(0, len(envelopes), MAX_PUSH_ENVELOPES):
            batch = tuple(envelopes[start : start + MAX_PUSH_ENVELOPES])
            await stream.send_all(encode_message(Push(envelopes=batch)))
            seen.pushed += len(batch)
    except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
        seen.cut_off = f"the victim closed the connection: {exc!r}"
    seen.push_s = time.perf_counter() - started
    # Keep the connection open until the victim has worked through what it read
    # (closing with unread data would reset it and discard the rest).
    previous = -1
    while (now := _handled(victim)) != previous:
        previous = now
        await trio.sleep(2)
    await trio.aclose_forcefully(stream)


def _handled(victim: Daemon) -> int:
    status = victim.status()
    return int(status["relay_refused"]) + int(status["attestations"])


def _timed_score(victim: Daemon, subject: str) -> float:
    started = time.perf_counter()
    answer = victim.api.get(f"/v1/score/{subject}")
    answer.raise_for_status()
    return time.perf_counter() - started


async def _probe_api(victim: Daemon, subject: str, into: list[float], done: trio.Event) -> None:
    while not done.is_set():
        into.append(await trio.to_thread.run_sync(_timed_score, victim, subject))
        await trio.sleep(PROBE_EVERY_S)


def _honest_vouch_arrives(honest: Daemon, victim: Daemon, n: int) -> float:
    subject = encode_identity_text(IdentityKey.from_seed(n.to_bytes(32, "big")).identity)
    made = honest.api.post("/v1/trust", json={"subject": subject, "value": 50}).json()["id"]
    started = time.perf_counter()
    while True:
        held = victim.api.get("/v1/attestations", params={"subject": subject}).json()
        if any(item["id"] == made for item in held):
            return time.perf_counter() - started
        if time.perf_counter() - started > 120:
            return float("inf")
        time.sleep(0.05)


async def _probe_honest(honest: Daemon, victim: Daemon, seen: Observed, done: trio.Event) -> None:
    n = 0
    while not done.is_set():
        n += 1
        delay = await trio.to_thread.run_sync(_honest_vouch_arrives, honest, victim, n)
        seen.honest_sync_s.append(delay)
        seen.rss_mb.append(victim.rss_mb())
        await trio.sleep(VOUCH_EVERY_S)


async def _run_attack(victim: Daemon, honest: Daemon, folder: Path,
                      envelopes: list[bytes]) -> Observed:  # fmt: skip
    seen = Observed()
    done = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_probe_api, victim, honest.identity, seen.api_s, done)
        nursery.start_soon(_probe_honest, honest, victim, seen, done)
        await _attack(victim, folder, envelopes, seen)
        done.set()
    return seen


def _quantiles(samples: Sequence[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def run(count: int, workers: int, folder: Path) -> dict[str, float | int | str]:
    victim_dir, honest_dir = folder / "victim", folder / "honest"
    _cli(victim_dir, "init", "--listen", f"127.0.0.1:{_free_port()}",
         "--api-listen", f"127.0.0.1:{_free_port()}")  # fmt: skip
    victim = Daemon(victim_dir)
    code = _cli(victim_dir, "invite").strip()
    _cli(honest_dir, "join", code, "--listen", f"127.0.0.1:{_free_port()}",
         "--api-listen", f"127.0.0.1:{_free_port()}")  # fmt: skip
    honest = Daemon(honest_dir)
    # The victim vouches for the neighbour it invited: its statements are then never
    # subject to the unvouched budget that the farm fills.
    victim.api.post("/v1/trust", json={"subject": honest.identity, "value": 80}).raise_for_status()
    try:
        print(f"making {count:,} attestations from {count:,} fresh identities ...", flush=True)
        started = time.perf_counter()
        envelopes = _prepare(count, decode_identity_text(victim.identity), workers)
        print(f"  {time.perf_counter() - started:.0f} s", flush=True)
        idle = [_timed_score(victim, honest.identity) for _ in range(200)]
        cpu_before, rss_before = victim.cpu_s(), victim.rss_mb()
        seen = trio.run(_run_attack, victim, honest, victim_dir, envelopes)
        status = victim.status()
        figures: dict[str, float | int | str] = {
            "pushed": seen.pushed,
            "push seconds": round(seen.push_s, 1),
            "pushed per second": round(seen.pushed / seen.push_s),
            "victim stored": status["attestations"],
            "victim refused (quota)": status["relay_refused"],
            "victim protocol errors": status["protocol_errors"],
            "victim CPU seconds": round(victim.cpu_s() - cpu_before, 1),
            "victim CPU us per pushed attestation": round(
                (victim.cpu_s() - cpu_before) / max(1, seen.pushed) * 1e6, 1
            ),
            "victim RSS MB before / peak / after": (
                f"{rss_before:.0f} / {max(seen.rss_mb, default=0):.0f} / {victim.rss_mb():.0f}"
            ),
            "honest peers still connected": status["peers"],
            "honest vouches timed": len(seen.honest_sync_s),
            "honest vouch reaches victim, median s": round(
                statistics.median(seen.honest_sync_s), 3
            ),
            "honest vouch reaches victim, max s": round(max(seen.honest_sync_s), 3),
            "API score idle, median / p99 ms": "{:.1f} / {:.1f}".format(
                *(v * 1000 for v in _quantiles(idle))
            ),
            "API score under attack, median / p99 ms": "{:.1f} / {:.1f}".format(
                *(v * 1000 for v in _quantiles(seen.api_s))
            ),
            "API queries under attack": len(seen.api_s),
            "attacker cut off": seen.cut_off or "no (quota refusals are not the peer's fault)",
        }
    finally:
        victim.stop()
        honest.stop()
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    """Print the figures; exit 1 if the budget did not hold or the honest member starved."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--attestations", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        figures = run(args.attestations, args.workers, Path(folder))
    if args.json:
        print(json.dumps(figures, indent=1))
    else:
        for name, value in figures.items():
            print(f"  {name:<45} {value}")
    budget = 200_000 + 1  # the unvouched budget, plus the victim's vouch
    held = int(figures["victim stored"]) <= budget + int(figures["honest vouches timed"])
    return 0 if held and float(figures["honest vouch reaches victim, max s"]) < 60 else 1


if __name__ == "__main__":
    sys.exit(main())
