"""A real daemon rotates its own key (SPEC §17), and survives kill -9 around it.

`trustnode key commit` / `key rotate` on a running `trustnode run`; a second
daemon sees the chain as one member. Then, for each state a kill -9 between
two of rotate's writes can leave on disk (node.home.nextkey), the test builds
that state, starts a real daemon on it and checks what it signs with and
that the key its published commitment names is still there.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from node.home.datadir import DataDir
from node.home.keyfile import save_key
from node.home.nextkey import KeyFiles
from node.store import Store
from protocol.attestation import Attestation, AttestationBody, sign_attestation
from protocol.identity import IdentityKey, encode_identity_text
from protocol.statement import Statement
from protocol.succession import commit_statement, rotation_statement
from tests.e2e.test_daemon import Daemon, as_json, cli, daemons, free_port, ok, wait_until

pytestmark = pytest.mark.slow
__all__ = ["daemons"]  # the fixture, imported


def _init(folder: Path) -> None:
    ok(folder, "init", "--listen", f"127.0.0.1:{free_port()}", "--api-listen",
       f"127.0.0.1:{free_port()}")  # fmt: skip


def test_a_daemon_rotates_and_its_peer_sees_one_member(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    ann, ben = tmp_path / "ann", tmp_path / "ben"
    _init(ann)
    daemons.append(Daemon(ann))
    ok(ben, "join", ok(ann, "invite").strip(), "--listen", f"127.0.0.1:{free_port()}",
       "--api-listen", f"127.0.0.1:{free_port()}")  # fmt: skip
    daemons.append(Daemon(ben))
    old = as_json(ben, "status")["identity"]
    ok(ann, "trust", old, "--value", "80")
    refused = cli(ben, "key", "rotate")  # nothing committed: a rotation would not count
    assert refused.returncode != 0
    assert "key commit" in refused.stderr
    committed = as_json(ben, "key", "commit")
    assert committed["committed"] is True
    assert (ben / "next-key.json").stat().st_mode & 0o077 == 0
    assert as_json(ben, "key", "commit")["statement"] is None  # once: never a second one
    before = as_json(ann, "score", old)["score"]
    rotated = as_json(ben, "key", "rotate")
    new = rotated["key"]
    assert new == committed["next_key"]
    assert rotated["next_key"] not in (None, new, old)
    assert as_json(ben, "status")["identity"] == new  # signs with the new key at once
    ok(ben, "trust", as_json(ann, "status")["identity"], "--value", "70")
    wait_until(lambda: as_json(ann, "explain", new)["keys"]["chain"] != [])
    why = as_json(ann, "explain", new)
    assert why["subject"] == old  # the chain's member
    assert [(s["old"], s["new"], s["how"]) for s in why["keys"]["chain"]] == [
        (old, new, "rotation")
    ]
    assert why["keys"]["notes"][0]["about_role"] == "previous"
    assert "rotated from" in ok(ann, "explain", new)
    assert as_json(ann, "score", new)["score"] == pytest.approx(before, rel=0.01)
    # kill -9 right after: everything acknowledged is durable, the next key included.
    daemons[1].process.send_signal(signal.SIGKILL)
    daemons[1].process.communicate(timeout=30)  # reaps it and closes its pipes
    daemons.append(Daemon(ben))
    after = as_json(ben, "key")
    assert (after["key"], after["next_key"], after["committed"]) == (
        new, rotated["next_key"], True,
    )  # fmt: skip
    assert as_json(ben, "status")["identity"] == new
    daemons[-1].stop()
    daemons[0].stop()


def _signed(key: IdentityKey, statement: Statement, at: int) -> Attestation:
    body = AttestationBody(issuer=key.identity, issued_at_ms=at, statement=statement)
    return sign_attestation(body, key)


def _offline_state(folder: Path, *, stored: bool, moved: str) -> tuple[str, str, str]:
    """Build, offline, what a kill -9 in `rotate` leaves; returns (old, next, after) texts."""
    files = KeyFiles(DataDir.open(folder))
    current = files.current()
    nxt = files.ensure_next()
    after = files.stage()
    now = int(time.time() * 1000)
    # `key commit` ran before: the commitment to the next key is published.
    made = [_signed(current, commit_statement(nxt.identity), now - 1000)]
    if stored:
        made.append(_signed(nxt, rotation_statement(current.identity, after.identity), now))
    store = Store.open(files.data.store_path)
    try:
        store.apply(made, now_ms=now)
    finally:
        store.close()
    if moved in ("key", "both"):
        save_key(nxt, files.data.key_path, overwrite=True)
    if moved == "both":
        save_key(after, files.data.path / "next-key.json", overwrite=True)
    return tuple(encode_identity_text(k.identity) for k in (current, nxt, after))  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("stored", "moved", "signs_with"),
    [
        (False, "none", "old"),  # killed after staging, before the rotation was stored
        (True, "none", "next"),  # killed after storing, before any file moved
        (True, "key", "next"),  # killed after key.json moved
        (True, "both", "next"),  # killed before the staged file was removed
    ],
)
def test_a_daemon_started_after_a_kill_mid_rotation_settles(
    tmp_path: Path, daemons: list[Daemon], stored: bool, moved: str, signs_with: str
) -> None:
    ben = tmp_path / "ben"
    _init(ben)
    old, nxt, after = _offline_state(ben, stored=stored, moved=moved)
    daemons.append(Daemon(ben))
    key = as_json(ben, "key")
    expected = {"old": old, "next": nxt}[signs_with]
    assert key["key"] == expected
    assert as_json(ben, "status")["identity"] == expected
    assert not (ben / "next-key.staged.json").exists()
    # The key the newest published commitment names is on disk: the next rotation can happen.
    assert key["next_key"] == (after if stored else nxt)
    assert key["committed"] is True
    daemons[-1].stop()
