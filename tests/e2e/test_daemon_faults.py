"""Faults of a real daemon: kill -9 while it acknowledges writes and while it syncs,
a full disk, a read-only data directory, exposed files. Acknowledged (HTTP 201)
means on disk: after SIGKILL and a restart, every acknowledged attestation is
there and the store is intact."""

from __future__ import annotations

import os
import random
import resource
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from node.home.config import load_config
from node.home.keyfile import load_key
from node.store import Store
from protocol.attestation import AttestationBody, sign_attestation
from protocol.export import encode_export
from protocol.identity import IdentityKey, encode_identity_text
from protocol.statement import Trust
from tests.e2e.test_daemon import COMMAND, Daemon, daemons, free_port, ok, wait_until

__all__ = ["daemons"]  # the fixture, re-exported for pytest

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


def _read_only_mount(folder: Path, command: list[str]) -> list[str]:
    """`command` in a private mount namespace where `folder` is mounted read-only:
    what a read-only disk looks like even to root (who ignores file modes)."""
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", script, str(folder),
            *command]  # fmt: skip


def test_read_only_data_directory_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    folder = tmp_path / "node"
    ok(folder, "init", "--listen", f"127.0.0.1:{free_port()}", "--api-listen",
       f"127.0.0.1:{free_port()}")  # fmt: skip
    token = (folder / "api.token").read_text().strip()
    daemon = Daemon(folder)
    made = [
        httpx.post(f"http://{daemon.api}/v1/trust", headers={"Authorization": f"Bearer {token}"},
                   json={"subject": encode_identity_text(IdentityKey.from_seed(bytes([n]) * 32)
                                                         .identity), "value": 50}).json()["id"]
        for n in range(3)
    ]  # fmt: skip
    daemon.stop()
    command = [*COMMAND, "--data-dir", str(folder), "run"]
    if os.geteuid() == 0:
        probe = subprocess.run(_read_only_mount(folder, ["true"]), capture_output=True,
                               check=False)  # fmt: skip
        if probe.returncode != 0:
            pytest.skip(f"root ignores file modes and mount namespaces are not permitted here: "
                        f"{probe.stderr.decode(errors='replace').strip()}")  # fmt: skip
        command = _read_only_mount(folder, command)
    else:
        os.chmod(folder / "store.db", stat.S_IRUSR)
    run = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 3, run.stderr
    assert "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr  # one clear line
    if os.geteuid() == 0:
        assert "read-only" in run.stderr
    os.chmod(folder / "store.db", stat.S_IRUSR | stat.S_IWUSR)
    with Store.open(folder / "store.db") as store:  # nothing torn, nothing lost
        assert store.integrity_check() == "ok"
        assert all(store.contains(bytes.fromhex(i)) for i in made)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("path", "mode", "message"),
    [
        (".", 0o770, "writable by other users"),
        ("api.token", 0o644, "readable by other users"),
        ("key.json", 0o640, "accessible by other users"),
        ("config.toml", 0o644, "accessible to other users"),  # it holds the community key
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


def _limited_file_size(limit: int) -> Callable[[], None]:
    """A child whose files cannot grow past `limit` bytes: the kernel answers EFBIG,
    as a full disk answers ENOSPC (Python ignores SIGXFSZ, so the write just fails)."""

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_disk_full_is_a_clear_error_and_loses_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "node"
    ok(folder, "init", "--listen", f"127.0.0.1:{free_port()}", "--api-listen",
       f"127.0.0.1:{free_port()}")  # fmt: skip
    token = (folder / "api.token").read_text().strip()
    daemon = Daemon(folder, preexec=_limited_file_size(512 * 1024))
    headers = {"Authorization": f"Bearer {token}"}
    acknowledged: list[str] = []
    refused = None
    subject = ""
    with httpx.Client(base_url=f"http://{daemon.api}", headers=headers, timeout=10) as client:
        for n in range(5000):
            subject = encode_identity_text(IdentityKey.from_seed(n.to_bytes(32, "big")).identity)
            answer = client.post("/v1/trust", json={"subject": subject, "value": 60})
            if answer.status_code != 201:
                refused = answer
                break
            acknowledged.append(answer.json()["id"])
        assert refused is not None, "the file size limit was never reached"
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "store_unavailable"
        assert len(acknowledged) > 10
        # Still alive and answering reads; a later write is refused the same way.
        assert client.get("/v1/status").status_code == 200
        again = client.post("/v1/trust", json={"subject": subject, "value": 61})
        assert again.status_code == 503
    daemon.process.send_signal(signal.SIGKILL)
    daemon.process.communicate(timeout=30)
    with Store.open(folder / "store.db") as store:  # room again: nothing lost, nothing torn
        assert store.integrity_check() == "ok"
        assert all(store.contains(bytes.fromhex(i)) for i in acknowledged)  # type: ignore[arg-type]
        assert store.statistics().attestations == len(acknowledged)
    daemon = Daemon(folder)
    with httpx.Client(base_url=f"http://{daemon.api}", headers=headers, timeout=10) as client:
        assert client.post("/v1/trust", json={"subject": subject, "value": 61}).status_code == 201
    daemon.stop()


SYNCED = 12_000


def _community_with_history(folder: Path, count: int) -> None:
    """`count` attestations of the member at `folder`, imported before it runs."""
    key = load_key(folder / "key.json")
    community = load_config(folder).community_id
    now = int(time.time() * 1000)
    envelopes = []
    for n in range(count):
        subject = IdentityKey.from_seed(n.to_bytes(32, "big")).identity
        body = AttestationBody(issuer=key.identity, issued_at_ms=now - count + n,
                               statement=Trust(subject=subject, value=1 + n % 100))  # fmt: skip
        envelopes.append(sign_attestation(body, key).data)
    (folder.parent / "history.tnx").write_bytes(encode_export(community, envelopes))
    ok(folder, "import", str(folder.parent / "history.tnx"))


def _stored(api: str, token: str) -> int | None:
    try:
        status = httpx.get(f"http://{api}/v1/status", timeout=2,
                           headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    except httpx.HTTPError:
        return None
    return int(status.json()["attestations"]) if status.status_code == 200 else None


def test_sigkill_during_initial_sync_loses_nothing_and_sync_resumes(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    ann, ben = tmp_path / "ann", tmp_path / "ben"
    ok(ann, "init", "--listen", f"127.0.0.1:{free_port()}", "--api-listen",
       f"127.0.0.1:{free_port()}")  # fmt: skip
    _community_with_history(ann, SYNCED)
    daemons.append(Daemon(ann))
    code = ok(ann, "invite").strip()
    ok(ben, "join", code, "--listen", f"127.0.0.1:{free_port()}", "--api-listen",
       f"127.0.0.1:{free_port()}")  # fmt: skip
    token = (ben / "api.token").read_text().strip()
    rng = random.Random(3)
    seen_before_kill, kills = 0, 0
    while kills < KILLS:
        daemon = Daemon(ben)
        daemons.append(daemon)
        deadline = time.monotonic() + 60
        while (stored := _stored(daemon.api, token) or 0) <= seen_before_kill:
            assert time.monotonic() < deadline, "the sync did not resume"
            time.sleep(0.02)
        if stored >= SYNCED:
            break  # synced before we could kill it again: the bar is then the end state
        time.sleep(rng.uniform(0.0, 0.5))
        seen_before_kill = _stored(daemon.api, token) or stored
        daemon.process.send_signal(signal.SIGKILL)
        daemon.process.communicate(timeout=30)
        kills += 1
        with Store.open(ben / "store.db") as store:
            assert store.integrity_check() == "ok"
            # Everything the daemon reported as stored was committed: still there.
            assert store.statistics().attestations >= seen_before_kill
    assert kills >= 1, "the sync finished before the first kill: make it longer"
    if daemons[-1].process.poll() is not None:
        daemons.append(Daemon(ben))
    wait_until(lambda: _stored(daemons[-1].api, token) == SYNCED, timeout_s=90)
    for daemon in (daemons[0], daemons[-1]):
        daemon.stop()
    with Store.open(ben / "store.db") as store:
        assert store.integrity_check() == "ok"
