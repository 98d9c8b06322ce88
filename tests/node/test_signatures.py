"""The signature checker of bulk intake: a real worker process, and what happens when it dies."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.gossip.signatures import SignatureChecker, check_in_thread
from protocol.attestation import (
    AttestationBody,
    attestation_id,
    decode_envelope,
    open_signed,
    sign_attestation,
    signed_message,
)
from protocol.errors import RemoteProtocolError
from protocol.statement import Trust
from tests.strategies import KEYS


def _mixed_delivery() -> tuple[list[bytes], set[bytes]]:
    """300 envelopes: good ones, forged signatures, garbage; and the good ones' bytes."""
    good: list[bytes] = []
    for n in range(250):
        body = AttestationBody(
            issuer=KEYS[n % 3].identity,
            issued_at_ms=1_000 + n,
            statement=Trust(subject=KEYS[3].identity, context=f"c{n}", value=n % 100),
        )
        good.append(sign_attestation(body, KEYS[n % 3]).data)
    forged = [bytearray(data) for data in good[:40]]
    for data in forged:
        data[-1] ^= 0x55
    garbage = [b"", b"\x92", b"\xc1" * 40, *(data[:-3] for data in good[40:50])]
    delivery = [*good[:100], *map(bytes, forged), *good[100:], *garbage]
    return delivery, set(good)


@pytest.fixture
def checker() -> Iterator[SignatureChecker]:
    worker = SignatureChecker()
    yield worker
    worker.close()


def test_the_worker_keeps_exactly_what_verifies(checker: SignatureChecker) -> None:
    delivery, good = _mixed_delivery()
    checked = checker.check(delivery)
    assert set(checked) == good
    assert checked == check_in_thread(delivery)
    assert all(checked[data].id == attestation_id(data) for data in checked)
    assert checker.checked_in_worker == len(good) + 40  # what decoded went to the worker


def test_the_waiting_thread_checks_the_parts_no_worker_started(checker: SignatureChecker) -> None:
    """A large batch goes in parts; waiting at once takes back those still queued
    (checked here, counted in `checked_here`), and the verdicts are the same bytes."""
    delivery, _ = _mixed_delivery()
    decoded = []
    for data in delivery:
        try:
            decoded.append(decode_envelope(data))
        except RemoteProtocolError:
            continue
    messages = [signed_message(envelope) for envelope in decoded] * 4  # 1160: 5 parts
    expected = open_signed(messages)
    assert checker.start(messages)() == expected
    assert checker.checked_in_worker >= 250  # the first part always goes to a worker
    assert checker.checked_in_worker + checker.checked_here == len(messages)
    assert checker.start(messages[:400])() == expected[:400]  # small: one part, no sharing
    assert checker.checked_in_worker + checker.checked_here == len(messages) + 400


def _kill_worker(checker: SignatureChecker) -> None:
    executor = checker._executor
    assert executor is not None
    for pid in list(executor._processes):  # the pool's own record of its workers
        os.kill(pid, signal.SIGKILL)


def test_a_dead_worker_means_checking_here_not_losing_records(
    checker: SignatureChecker, caplog: pytest.LogCaptureFixture
) -> None:
    delivery, good = _mixed_delivery()
    assert set(checker.check(delivery)) == good  # the worker is up
    _kill_worker(checker)
    with caplog.at_level(logging.WARNING, logger="trustnode.signatures"):
        assert set(checker.check(delivery)) == good
        assert set(checker.check(delivery)) == good
    assert checker.checked_in_worker == len(good) + 40  # the later checks ran here
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings  # said once, not per batch


def test_a_closed_checker_still_checks(checker: SignatureChecker) -> None:
    delivery, good = _mixed_delivery()
    checker.close()
    assert set(checker.check(delivery)) == good
    assert checker.checked_in_worker == 0


def test_the_worker_exits_when_its_parent_is_killed(tmp_path: Path) -> None:
    """A daemon killed with SIGKILL must not leave its worker behind (holding its
    stdout open, and its memory)."""
    script = tmp_path / "parent.py"
    script.write_text(
        "import os\n"
        "from node.gossip.signatures import SignatureChecker\n"
        "if __name__ == '__main__':\n"  # the worker is spawned: it imports this file
        "    checker = SignatureChecker()\n"
        "    checker.check([])\n"
        "    print(*checker._executor._processes, flush=True)\n"
        "    os.kill(os.getpid(), 9)\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    parent = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=60
    )  # returns only once every holder of its stdout is gone
    assert parent.returncode == -signal.SIGKILL
    (pid,) = map(int, parent.stdout.split())
    deadline = time.monotonic() + 10
    while _alive(pid):
        assert time.monotonic() < deadline, "the worker outlived its parent"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_checks_begun_together_each_keep_exactly_what_verifies(
    checker: SignatureChecker,
) -> None:
    """A bulk intake begins the next delivery before it waits for this one
    (node/gossip/intake): each wait gives its own delivery's result."""
    first, _ = _mixed_delivery()
    second = list(reversed(first[:200]))
    waits = [checker.begin(first), checker.begin(second)]
    assert waits[1]() == check_in_thread(second)
    assert waits[0]() == check_in_thread(first)
