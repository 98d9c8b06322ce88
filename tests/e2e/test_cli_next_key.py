"""`trustnode key`, `backup --next` and `restore --next` in-process against an offline node."""

from __future__ import annotations

import json
import stat
import tomllib
from pathlib import Path

import nacl.pwhash
import pytest
from click.testing import CliRunner, Result

from node.cli import cli
from node.home.backup import words_of
from node.home.keyfile import KdfCost, load_key, save_key, sealing_of
from protocol.identity import IdentityKey, encode_identity_text

pytestmark = pytest.mark.slow


def _run(folder: Path, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["--data-dir", str(folder), *args], input=stdin)


def _ok(folder: Path, *args: str, stdin: str | None = None) -> str:
    result = _run(folder, *args, stdin=stdin)
    assert result.exit_code == 0, (args, result.output)
    return result.output


def _words(output: str) -> str:
    lines = output.splitlines()[1:]
    return " ".join(w for line in lines for w in line.split() if not w.endswith("."))


def test_the_next_key_is_backed_up_restored_and_rotated_to(tmp_path: Path) -> None:
    ann = tmp_path / "ann"
    _ok(ann, "init", "--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:1")
    assert _run(ann, "backup", "--next").exit_code != 0  # nothing kept yet
    committed = json.loads(_ok(ann, "key", "commit", "--json"))
    printed = _ok(ann, "backup", "--next")
    heading = f"next key (it can rotate you: keep it offline): {committed['next_key']}"
    assert printed.startswith(heading)
    words = _words(printed)
    assert len(words.split()) == 24
    assert "never on the machine that holds the current key" in _ok(ann, "backup", "--help")
    # The machine loses the next key file; the paper brings it back.
    (ann / "next-key.json").unlink()
    assert "none kept" in _ok(ann, "key")
    restored = _ok(ann, "restore", "--next", "--words", words)
    assert restored.splitlines()[0] == committed["next_key"]
    assert json.loads(_ok(ann, "key", "--json"))["committed"] is True
    assert _run(ann, "restore", "--next", "--words", words).exit_code != 0  # never overwrites
    rotated = json.loads(_ok(ann, "key", "rotate", "--json"))
    assert rotated["key"] == committed["next_key"]
    assert json.loads(_ok(ann, "status", "--json"))["identity"] == committed["next_key"]
    assert _run(ann, "restore", "--words", words).exit_code != 0  # where to? refused


def test_a_lost_machine_is_replaced_with_the_paper_next_key(tmp_path: Path) -> None:
    """The laptop is gone with its current key; the next key's words were on paper.
    A new machine restores them and rotates the lost key: it signs as the successor."""
    ann, laptop = tmp_path / "ann", tmp_path / "laptop"
    _ok(ann, "init", "--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:1")
    old = json.loads(_ok(ann, "key", "--json"))["key"]
    committed = json.loads(_ok(ann, "key", "commit", "--json"))
    words = _words(_ok(ann, "backup", "--next"))
    exported = tmp_path / "community.tnx"
    _ok(ann, "export", "--out", str(exported))  # what the community's peers hold of ann
    community = tomllib.loads((ann / "config.toml").read_text())["community"]
    _ok(laptop, "init", "--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:1",
        "--community-id", community["id"], "--community-key", community["key"])  # fmt: skip
    fresh = json.loads(_ok(laptop, "key", "--json"))["key"]
    _ok(laptop, "restore", "--next", "--words", words)
    # Not synced yet: the new node cannot know the lost key's commitment.
    refused = _run(laptop, "key", "rotate", "--lost", old)
    assert refused.exit_code != 0
    assert "no commitment of the lost key" in refused.output
    assert _run(laptop, "key", "rotate", "--lost", fresh).exit_code != 0  # its own key
    assert _run(laptop, "key", "rotate", "--lost", "tn_nonsense").exit_code != 0
    _ok(laptop, "import", str(exported))
    rotated = json.loads(_ok(laptop, "key", "rotate", "--lost", old, "--json"))
    assert rotated["key"] == committed["next_key"]
    assert rotated["next_key"] is not None
    assert json.loads(_ok(laptop, "status", "--json"))["identity"] == committed["next_key"]
    chain = json.loads(_ok(laptop, "device", "chain", old, "--json"))
    assert json.dumps(chain).index(old) < json.dumps(chain).index(committed["next_key"])
    # The rotation is a statement like any other: ann's old node accepts it too.
    again = tmp_path / "laptop.tnx"
    _ok(laptop, "export", "--out", str(again))
    _ok(ann, "import", str(again))
    chain_at_ann = json.loads(_ok(ann, "device", "chain", committed["next_key"], "--json"))
    assert committed["next_key"] in json.dumps(chain_at_ann)


def test_a_next_key_restored_beside_a_sealed_key_is_sealed_too(tmp_path: Path) -> None:
    ann = tmp_path / "ann"
    _ok(ann, "init", "--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:1")
    fast = KdfCost(
        opslimit=nacl.pwhash.argon2id.OPSLIMIT_MIN, memlimit=nacl.pwhash.argon2id.MEMLIMIT_MIN
    )
    current = load_key(ann / "key.json")
    save_key(current, ann / "key.json", passphrase=b"pw", cost=fast, overwrite=True)
    paper = IdentityKey.generate()
    words = " ".join(words_of(paper))
    assert _run(ann, "restore", "--next", "--words", words, stdin="typo\n").exit_code != 0
    assert not (ann / "next-key.json").exists()
    restored = _ok(ann, "restore", "--next", "--words", words, stdin="pw\n")
    assert encode_identity_text(paper.identity) in restored
    path = ann / "next-key.json"
    assert b'"seed_hex"' not in path.read_bytes()
    assert sealing_of(path) == fast
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key(path, passphrase=b"pw").identity == paper.identity
