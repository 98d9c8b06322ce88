"""Faults of a real daemon: kill -9 while it acknowledges writes, a read-only data
directory, clock jumps. Acknowledged (HTTP 201) means on disk: after SIGKILL and a
restart, every acknowledged attestation is there and the store is intact."""

from __future__ import annotations

import os
import random
import signal
import stat
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from node.store import Store
from protocol.identity import IdentityKey, encode_identity_text
from tests.e2e.test_daemon import COMMAND, Daemon, free_port, ok

pytestmark = pytest.mark.slow
KILLS = 3


def _write_until_killed(
    api: str, token: str, acknowledged: list[str], stop: threading.Event
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=f"http://{api}", headers=headers, timeout=5) as client:
        n = 0
        while not stop.is_set():
            subject = encode_identity_text(IdentityKey.from_seed(n.to_bytes(32, "big")).identity)
            try:
                answer = client.post("/v1/trust", json={"subject": subject, "value": 60})
            except httpx.HTTPError:
                return  # the daemon died under us: that request was never acknowledged
            if answer.status_code == 201:
                acknowledged.append(answer.json()["id"])
            n += 1


def test_sigkill_during_writes_loses_nothing_acknowledged(tmp_path: Path) -> None:
    folder = tmp_path / "node"
    ok(folder, "init", "--listen", f"127.0.0.1:{free_port()}", "--api-listen",
       f"127.0.0.1:{free_port()}")  # fmt: skip
    rng = random.Random(9)
    acknowledged: list[str] = []
    token = (folder / "api.token").read_text().strip()
    for _ in range(KILLS):
        daemon = Daemon(folder)
        stop = threading.Event()
        writer = threading.Thread(target=_write_until_killed,
                                  args=(daemon.api, token, acknowledged, stop))  # fmt: skip
        writer.start()
        time.sleep(rng.uniform(0.5, 2.0))
        daemon.process.send_signal(signal.SIGKILL)
        daemon.process.communicate(timeout=30)  # reaps it and closes its pipes
        stop.set()
        writer.join()
        with Store.open(folder / "store.db") as store:
            assert store.integrity_check() == "ok"
            missing = [i for i in acknowledged if not store.contains(bytes.fromhex(i))]  # type: ignore[arg-type]
        assert missing == [], f"{len(missing)} acknowledged attestations lost"
    assert len(acknowledged) > 10  # the writes really raced the kills
    daemon = Daemon(folder)  # and it starts again on what the kills left
    status = httpx.get(f"http://{daemon.api}/v1/status",
                       headers={"Authorization": f"Bearer {token}"}).json()  # fmt: skip
    assert status["attestations"] >= len(acknowledged)
    daemon.stop()


def test_read_only_data_directory_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    folder = tmp_path / "node"
    ok(folder, "init", "--listen", f"127.0.0.1:{free_port()}", "--api-listen",
       f"127.0.0.1:{free_port()}")  # fmt: skip
    if os.geteuid() == 0:
        pytest.skip("root ignores file permissions")
    os.chmod(folder / "store.db", stat.S_IRUSR)
    run = subprocess.run([*COMMAND, "--data-dir", str(folder), "run"], capture_output=True,
                         text=True, timeout=60, check=False)  # fmt: skip
    assert run.returncode == 3
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize(
    ("path", "mode", "message"),
    [
        (".", 0o770, "writable by other users"),
        ("api.token", 0o644, "readable by other users"),
        ("key.json", 0o640, "accessible by other users"),
    ],
)
def test_exposed_files_are_refused_at_start(
    tmp_path: Path, path: str, mode: int, message: str
) -> None:
    folder = tmp_path / "node"
    ok(folder, "init", "--listen", f"127.0.0.1:{free_port()}", "--api-listen",
       f"127.0.0.1:{free_port()}")  # fmt: skip
    os.chmod(folder / path, mode)
    run = subprocess.run([*COMMAND, "--data-dir", str(folder), "run"], capture_output=True,
                         text=True, timeout=60, check=False)  # fmt: skip
    assert run.returncode == 3, run.stderr
    assert message in run.stderr
    assert "Traceback" not in run.stderr
