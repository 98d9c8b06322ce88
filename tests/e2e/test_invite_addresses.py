"""`init`/`invite`/`join` and the addresses an invite carries (issue 21, defect 6)."""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
from pathlib import Path

import pytest

from node.net.addresses import detect_host_addresses
from protocol.identity import IdentityKey
from protocol.invite import Invite, decode_invite, sign_invite
from tests.e2e.test_cli import trustnode
from tests.e2e.test_daemon import COMMAND

pytestmark = pytest.mark.slow


def _invite(folder: Path, *args: str) -> tuple[Invite, str]:
    made = trustnode("--data-dir", str(folder), "invite", *args)
    assert made.returncode == 0, made.stderr
    return decode_invite(made.stdout.strip()), made.stderr  # stdout is the code alone


def test_a_wildcard_listener_invites_to_this_machines_addresses(tmp_path: Path) -> None:
    made = trustnode("--data-dir", str(tmp_path), "init", "--listen", "0.0.0.0:7999")
    assert made.returncode == 0, made.stderr
    invite, said = _invite(tmp_path)
    detected = detect_host_addresses()
    if not detected:
        pytest.skip("this machine has no address but loopback")
    assert invite.bootstrap == tuple(f"{ip}:7999" for ip in detected[:8])
    assert "0.0.0.0" not in said
    assert "warning" not in said


def test_a_loopback_invite_says_it_only_works_here(tmp_path: Path) -> None:
    assert trustnode("--data-dir", str(tmp_path), "init").returncode == 0
    invite, said = _invite(tmp_path)
    assert invite.bootstrap == ("127.0.0.1:7400",)
    assert "warning: this invite only works on this machine" in said


def test_advertise_on_init_and_on_one_invite(tmp_path: Path) -> None:
    made = trustnode(
        "--data-dir", str(tmp_path), "init", "--listen", "0.0.0.0:7400",
        "--advertise", "198.51.100.7:7400", "--advertise", "[2001:db8::7]:7400",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    config = (tmp_path / "config.toml").read_text()
    assert 'advertise = ["198.51.100.7:7400", "[2001:db8::7]:7400"]' in config
    invite, said = _invite(tmp_path)
    assert invite.bootstrap == ("198.51.100.7:7400", "[2001:db8::7]:7400")
    offline = json.loads(trustnode("--data-dir", str(tmp_path), "status", "--json").stdout)
    assert offline["advertised"] == ["198.51.100.7:7400", "[2001:db8::7]:7400"]
    assert "warning" not in said
    answer = trustnode(
        "--data-dir", str(tmp_path), "invite", "--advertise", "x.example:1", "--json"
    )
    view = json.loads(answer.stdout)
    assert view["addresses"] == ["x.example:1"]
    assert decode_invite(view["code"]).bootstrap == ("x.example:1",)
    refused = trustnode("--data-dir", str(tmp_path / "b"), "init", "--advertise", "0.0.0.0:1")
    assert refused.returncode == 2
    assert "advertise" in refused.stderr


def test_join_refuses_an_invite_no_one_can_dial(tmp_path: Path) -> None:
    key = IdentityKey.from_seed(bytes([9]) * 32)
    old = Invite(
        community_id=secrets.token_bytes(32), community_key=None,
        bootstrap=("0.0.0.0:7400",), inviter=key.identity,
    )  # fmt: skip
    joined = trustnode("--data-dir", str(tmp_path), "join", sign_invite(old, key))
    assert joined.returncode == 1
    assert "no address a neighbour can dial" in joined.stderr
    assert not (tmp_path / "config.toml").exists()
    mixed = Invite(
        community_id=old.community_id, community_key=None,
        bootstrap=("0.0.0.0:7400", "198.51.100.7:7400"), inviter=key.identity,
    )  # fmt: skip
    joined = trustnode("--data-dir", str(tmp_path), "join", sign_invite(mixed, key))
    assert joined.returncode == 0, joined.stderr
    assert 'bootstrap = ["198.51.100.7:7400"]' in (tmp_path / "config.toml").read_text()


def test_a_running_daemon_invites_to_run_advertise(tmp_path: Path) -> None:
    # Defect 10: the daemon put its bound listen address before `[network] advertise`.
    made = trustnode("--data-dir", str(tmp_path), "init", "--listen", "0.0.0.0:0",
                     "--api-listen", "127.0.0.1:0")  # fmt: skip
    assert made.returncode == 0, made.stderr
    daemon = subprocess.Popen(
        [*COMMAND, "--data-dir", str(tmp_path), "run", "--advertise", "198.51.100.9:7400"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert daemon.stdout is not None
        assert daemon.stdout.readline().startswith("ready: ")
        invite, said = _invite(tmp_path)
        assert invite.bootstrap == ("198.51.100.9:7400",)
        assert "warning" not in said
        # status shows what the node advertises, in text and JSON (it did not).
        shown = trustnode("--data-dir", str(tmp_path), "status", "--json")
        assert json.loads(shown.stdout)["advertised"] == ["198.51.100.9:7400"]
        text = trustnode("--data-dir", str(tmp_path), "status").stdout
        assert "advertised" in text
        assert "198.51.100.9:7400" in text
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.communicate(timeout=30)
