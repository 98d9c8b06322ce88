"""Three real `trustnode run` daemons on loopback, driven by the real CLI and the HTTP API.

init -> run -> invite/join -> attest -> converge -> score/explain (CLI and HTTP)
-> SIGTERM -> restart -> state intact.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow
INSTALLED = Path(sys.executable).with_name("trustnode")
COMMAND = [str(INSTALLED)] if INSTALLED.exists() else [sys.executable, "-m", "node.cli"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cli(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, "--data-dir", str(folder), *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def ok(folder: Path, *args: str) -> str:
    result = cli(folder, *args)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result.stdout


def as_json(folder: Path, *args: str) -> Any:
    return json.loads(ok(folder, *args, "--json"))


class Daemon:
    def __init__(self, folder: Path, *, preexec: Callable[[], None] | None = None) -> None:
        self.folder = folder
        self.process = subprocess.Popen(
            [*COMMAND, "--data-dir", str(folder), "run", "--log-format", "json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=preexec,
        )  # fmt: skip
        assert self.process.stdout is not None
        self.ready = self.process.stdout.readline()
        assert self.ready.startswith("ready: "), self.ready + self.process.stderr.read()  # type: ignore[union-attr]
        self.api = self.ready.split("api=")[1].strip()

    def stop(self) -> str:
        self.process.send_signal(signal.SIGTERM)
        out, err = self.process.communicate(timeout=30)
        assert self.process.returncode == 0, err
        for line in err.splitlines():  # structured logs: every line is a JSON object
            assert {"ts", "level", "logger", "message"} <= json.loads(line).keys()
        return out


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for daemon in started:
        if daemon.process.poll() is None:
            daemon.process.kill()
            daemon.process.wait()


def wait_until(check: Any, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_three_daemons_converge_answer_and_survive_a_restart(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    ann, ben, cat = (tmp_path / name for name in ("ann", "ben", "cat"))
    ok(ann, "init", "--listen", f"127.0.0.1:{free_port()}", "--api-listen",
       f"127.0.0.1:{free_port()}")  # fmt: skip
    daemons.append(Daemon(ann))
    code = ok(ann, "invite").strip()
    for folder in (ben, cat):
        ok(folder, "join", code, "--listen", f"127.0.0.1:{free_port()}", "--api-listen",
           f"127.0.0.1:{free_port()}")  # fmt: skip
        daemons.append(Daemon(folder))
    ids = {f.name: as_json(f, "status")["identity"] for f in (ann, ben, cat)}

    assert "committed and sent to the peers" in ok(ann, "trust", ids["ben"], "--value", "80")
    ok(ben, "trust", ids["cat"], "--value", "60", "--context", "carpool")
    ok(ben, "trust", ids["cat"], "--value", "60")
    certified = as_json(cat, "certify", ids["ben"], "resident:rue-des-lilas", "--private-value",
                        "12 rue des Lilas")  # fmt: skip
    assert len(certified["salt"]) == 64
    ok(cat, "distrust", ids["ann"], "--context", "lending")
    ok(ann, "rate", ids["cat"], "90", "--context", "lending", "--reference", "ladder")
    wait_until(lambda: all(as_json(f, "status")["attestations"] == 6 for f in (ann, ben, cat)))

    score = as_json(ann, "score", ids["cat"])["score"]
    assert score > 0  # ann -> ben -> cat
    carpool = as_json(ann, "score", ids["cat"], "--context", "carpool")["score"]
    assert 0 < carpool < score  # only ben's carpool vouch (ann's general vouch counts half)
    why = as_json(ann, "explain", ids["cat"])
    assert why["paths"][0]["route"] == [ids["ann"], ids["ben"], ids["cat"]]
    assert "strongest routes" in ok(ann, "explain", ids["cat"])
    assert as_json(ann, "claims", ids["ben"], "resident:rue-des-lilas", "--independent", "1")[
        "accepted"
    ]
    assert as_json(cat, "score", ids["ann"])["score"] == 0
    assert len(as_json(ann, "peers")) == 2

    token = (ann / "api.token").read_text().strip()
    headers = {"Authorization": f"Bearer {token}"}
    over_http = httpx.get(f"http://{daemons[0].api}/v1/score/{ids['cat']}", headers=headers)
    assert over_http.json()["score"] == score
    assert httpx.get(f"http://{daemons[0].api}/v1/status").status_code == 401
    metrics = httpx.get(f"http://{daemons[0].api}/metrics", headers=headers).text
    assert "trustnode_attestations 6.0" in metrics

    for daemon in daemons:
        assert "stopped; everything acknowledged is on disk" in daemon.stop()
    assert not (ann / "api.address").exists()
    offline = as_json(ann, "score", ids["cat"])  # no daemon: answered from the store
    assert offline["score"] == score

    daemons.append(Daemon(ann))
    assert as_json(ann, "status")["attestations"] == 6
    assert as_json(ann, "score", ids["cat"])["score"] == score
    exported = ok(ann, "export")
    assert len(exported.splitlines()) == 1 + 6
    daemons[-1].stop()


def test_a_second_daemon_on_the_same_ports_fails_cleanly(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    ann = tmp_path / "ann"
    ok(ann, "init", "--listen", f"127.0.0.1:{free_port()}", "--api-listen",
       f"127.0.0.1:{free_port()}")  # fmt: skip
    daemons.append(Daemon(ann))
    copy = tmp_path / "copy"
    shutil.copytree(ann, copy)
    os.chmod(copy, 0o700)
    (copy / "api.address").unlink()
    second = subprocess.run(
        [*COMMAND, "--data-dir", str(copy), "run"], capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert second.returncode == 3
    assert "cannot listen" in second.stderr
    assert "Traceback" not in second.stderr
    daemons[0].stop()
