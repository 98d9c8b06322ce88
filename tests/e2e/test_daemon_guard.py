"""What a real daemon refuses at start: a second daemon on its data directory and a
corrupted store (issue 21, defects 4 and 5)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from protocol.identity import IdentityKey, encode_identity_text
from tests.e2e.test_daemon import COMMAND, Daemon, cli, daemons, free_port, ok

__all__ = ["daemons"]  # the fixture, re-exported for pytest

pytestmark = pytest.mark.slow
BOB = encode_identity_text(IdentityKey.from_seed(bytes([2]) * 32).identity)


def _init(folder: Path) -> None:
    ok(folder, "init", "--listen", f"127.0.0.1:{free_port()}", "--api-listen",
       f"127.0.0.1:{free_port()}")  # fmt: skip


def _run(folder: Path, *, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, "--data-dir", str(folder), "run"],
        capture_output=True, text=True, timeout=timeout_s, check=False,
    )  # fmt: skip


def test_a_second_daemon_is_refused_and_the_first_keeps_its_files(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    folder = tmp_path / "node"
    _init(folder)
    first = Daemon(folder)
    daemons.append(first)
    second = _run(folder)
    assert second.returncode == 3, second.stderr
    assert len(second.stderr.strip().splitlines()) == 1, second.stderr
    assert str(first.process.pid) in second.stderr
    # The second one did not remove the first one's address: the CLI still finds it.
    assert (folder / "api.address").read_text().strip() == first.api
    token = (folder / "api.token").read_text().strip()
    answer = httpx.get(f"http://{first.api}/v1/status",
                       headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert answer.status_code == 200
    # A CLI that cannot reach the daemon does not write to the store behind its back.
    (folder / "api.address").unlink()
    (folder / "config.toml").write_text(
        (folder / "config.toml").read_text().replace(first.api, f"127.0.0.1:{free_port()}")
    )
    offline = cli(folder, "trust", BOB)
    assert offline.returncode == 3, offline.stderr
    assert str(first.process.pid) in offline.stderr
    first.stop()
    assert "stopped" in _run_briefly_after(folder)


def _run_briefly_after(folder: Path) -> str:
    """Once the first daemon stopped, another may start: the lock died with it."""
    daemon = Daemon(folder)
    return daemon.stop()
