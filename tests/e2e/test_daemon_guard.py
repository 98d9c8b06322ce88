"""What a real daemon refuses at start: a second daemon on its data directory and a
corrupted store (issue 21, defects 4 and 5)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from protocol.identity import IdentityKey, encode_identity_text
from tests.e2e.test_daemon import COMMAND, Daemon, cli, daemons, free_port, ok
from tests.node.store_damage import ISSUER, damage, fill_store

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


def _issuer_url(api: str) -> str:
    return f"http://{api}/v1/attestations?issuer={encode_identity_text(ISSUER.identity)}"


def test_a_damaged_store_is_refused_at_start_in_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "node"
    _init(folder)
    fill_store(folder / "store.db", 1500)
    damage(folder / "store.db", start=0.75, length=0.0)
    started = time.monotonic()
    run = _run(folder)
    assert run.returncode == 3, run.stderr
    assert "ready" not in run.stdout
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert "export" in run.stderr  # what to do
    assert time.monotonic() - started < 30
    # What can be read is saved, into a fresh store, as the README says.
    saved = tmp_path / "saved.txt"
    ok(folder, "export", "--out", str(saved))
    (folder / "store.db").rename(tmp_path / "store.db.damaged")
    ok(folder, "import", str(saved))
    Daemon(folder).stop()  # and the daemon starts on it


def test_damage_found_while_running_stops_the_daemon(tmp_path: Path, daemons: list[Daemon]) -> None:
    folder = tmp_path / "node"
    _init(folder)
    fill_store(folder / "store.db", 1500)
    daemon = Daemon(folder)
    daemons.append(daemon)
    damage(folder / "store.db", start=0.2, length=0.5)  # under the running daemon
    token = (folder / "api.token").read_text().strip()
    with contextlib.suppress(httpx.HTTPError):  # it may close the connection as it stops
        answer = httpx.get(_issuer_url(daemon.api), headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 503
    _, err = daemon.process.communicate(timeout=30)  # it stops on its own
    assert daemon.process.returncode == 3
    assert "damaged" in err.strip().splitlines()[-1]
    assert err.count(" is damaged") <= 2  # once logged, once as the exit line: no loop


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _post_chunked(api: str, token: str, *, total_bytes: int) -> tuple[bytes, int]:
    """POST a chunked body of `total_bytes` to /v1/trust on a raw socket, until the daemon
    answers or closes; returns its answer and how many body bytes it let us send."""
    host, port = api.rsplit(":", 1)
    chunk = b"x" * 65536
    frame = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    sent = 0
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(
            b"POST /v1/trust HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + token.encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        connection.settimeout(2)
        try:
            while sent < total_bytes:
                connection.sendall(frame)
                sent += len(chunk)
        except OSError:
            pass  # the daemon answered and closed: it read no more
        connection.settimeout(10)
        answer = b""
        with contextlib.suppress(OSError):
            while data := connection.recv(65536):
                answer += data
    return answer, sent


def test_a_huge_streamed_body_is_refused_early_and_memory_stays_flat(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    folder = tmp_path / "node"
    _init(folder)
    daemon = Daemon(folder)
    daemons.append(daemon)
    token = (folder / "api.token").read_text().strip()
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"http://{daemon.api}/v1/status", headers=headers).status_code == 200
    before = _rss_bytes(daemon.process.pid)
    answer, sent = _post_chunked(daemon.api, token, total_bytes=50 * 2**20)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"payload_too_large" in answer
    grown = _rss_bytes(daemon.process.pid) - before
    assert grown < 16 * 2**20, f"grew by {grown / 2**20:.1f} MiB after {sent / 2**20:.0f} MiB sent"
    host, port = daemon.api.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(
            b"POST /v1/trust HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token.encode()
            + b"\r\nContent-Length: %d\r\n\r\n{" % (300 * 2**20)
        )  # fmt: skip
        assert connection.recv(65536).startswith(b"HTTP/1.1 413")  # at once, from the length
    assert httpx.get(f"http://{daemon.api}/v1/status", headers=headers).status_code == 200
    daemon.stop()


def test_an_unknown_variable_and_an_exposed_config_are_one_line_each(tmp_path: Path) -> None:
    folder = tmp_path / "node"
    _init(folder)
    misspelt = subprocess.run(
        [*COMMAND, "--data-dir", str(folder), "status"], capture_output=True, text=True,
        timeout=60, check=False, env={**os.environ, "TRUSTNODE_NETWORK_LISTN": "127.0.0.1:1"},
    )  # fmt: skip
    assert misspelt.returncode == 3
    assert "TRUSTNODE_NETWORK_LISTN" in misspelt.stderr
    assert len(misspelt.stderr.strip().splitlines()) == 1
    (folder / "config.toml").chmod(0o644)
    exposed = cli(folder, "status")
    assert exposed.returncode == 3
    assert "chmod 600" in exposed.stderr
    assert len(exposed.stderr.strip().splitlines()) == 1
