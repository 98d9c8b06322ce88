"""`kill -9` during ingest loses nothing acknowledged and never shows half a batch."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from node.store import Store
from protocol.attestation import attestation_id
from tests.e2e.crash_worker import batch_envelopes

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
TRIALS = 8


def _run_until_killed(db: Path, first: int, delay_s: float) -> list[int]:
    """Start the worker, let it run `delay_s` after its first ack, kill -9 it; return acks."""
    with subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.crash_worker", str(db), str(first)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    ) as worker:
        assert worker.stdout is not None
        acked = [int(worker.stdout.readline().split()[1])]
        time.sleep(delay_s)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
        # Acks printed before the kill are in the pipe; an ack is only ever
        # printed after its batch was committed.
        acked += [int(line.split()[1]) for line in worker.stdout.read().splitlines() if line]
    assert worker.returncode == -signal.SIGKILL
    return acked


def test_kill_9_loses_nothing_acknowledged(tmp_path: Path) -> None:
    rng = random.Random(20261122)  # the seed of every kill moment; failures replay
    db = tmp_path / "crash.db"
    acknowledged: set[int] = set()
    next_batch = 0
    for _trial in range(TRIALS):
        acked = _run_until_killed(db, next_batch, delay_s=rng.uniform(0.0, 0.4))
        acknowledged.update(acked)
        with Store.open(db) as store:
            assert store.integrity_check() == "ok"
            last = max(acked) + 2
            for batch in range(next_batch, last):
                ids = [attestation_id(data) for data in batch_envelopes(batch)]
                present = sum(store.contains(i) for i in ids)
                assert present in (0, len(ids)), f"batch {batch}: {present}/{len(ids)} visible"
                if batch in acknowledged:
                    assert present == len(ids), f"acknowledged batch {batch} lost"
        next_batch = last + 1
    assert len(acknowledged) >= TRIALS
