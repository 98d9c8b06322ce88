"""`trustnode custodians` and `trustnode recover` in-process against an offline node."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from node.cli import cli
from protocol.identity import IdentityKey, encode_identity_text

pytestmark = pytest.mark.slow
FRIENDS = [encode_identity_text(IdentityKey.from_seed(bytes([n]) * 32).identity) for n in (5, 6, 7)]
LOST = encode_identity_text(IdentityKey.from_seed(bytes([8]) * 32).identity)
NEW = encode_identity_text(IdentityKey.from_seed(bytes([9]) * 32).identity)


def _run(folder: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--data-dir", str(folder), *args])


def _ok(folder: Path, *args: str) -> str:
    result = _run(folder, *args)
    assert result.exit_code == 0, (args, result.output)
    return result.output


def test_custodians_set_list_and_recover_in_the_cli(tmp_path: Path) -> None:
    ann = tmp_path / "ann"
    _ok(ann, "init", "--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:1")
    assert "no custodians in force" in _ok(ann, "custodians")
    assert _run(ann, "custodians", "set", "2", *FRIENDS).exit_code != 0  # not vouched for yet
    for friend in FRIENDS:
        _ok(ann, "trust", friend, "--value", "80")
    assert "any 2 can recover you" in _ok(ann, "custodians", "set", "2", *FRIENDS)
    listed = json.loads(_ok(ann, "custodians", "--json"))
    assert listed["in_force"]["k"] == 2
    assert sorted(listed["in_force"]["custodians"]) == sorted(FRIENDS)
    assert "any 2 of 3" in _ok(ann, "custodians")
    _ok(ann, "recover", "sign", LOST, NEW)
    assert "recovery" in _ok(ann, "recover", "status", LOST)
    _ok(ann, "recover", "veto", listed["in_force"]["digest"])
    assert "vetoed" in _ok(ann, "custodians")


def test_custodians_set_with_a_wait_of_its_own(tmp_path: Path) -> None:
    ann = tmp_path / "ann"
    _ok(ann, "init", "--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:1")
    for friend in FRIENDS:
        _ok(ann, "trust", friend, "--value", "80")
    assert _run(ann, "custodians", "set", "2", *FRIENDS, "--wait", "12h").exit_code != 0
    assert _run(ann, "custodians", "set", "2", *FRIENDS, "--wait", "soon").exit_code != 0
    made = json.loads(_ok(ann, "custodians", "set", "2", *FRIENDS, "--wait", "96h", "--json"))
    assert all(a["claim"].endswith("/96") for a in made)
    listed = json.loads(_ok(ann, "custodians", "--json"))
    assert listed["in_force"]["wait_ms"] == 96 * 3600 * 1000
    assert "a recovery waits 96 h" in _ok(ann, "custodians")
