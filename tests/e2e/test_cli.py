"""The `trustnode` command line, run as a real subprocess."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import click
import pytest

from protocol.identity import IdentityKey, encode_identity_text

pytestmark = pytest.mark.slow
BOB = encode_identity_text(IdentityKey.from_seed(bytes([2]) * 32).identity)


def trustnode(
    *args: str, stdin: str = "", cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from node.cli import main; main()", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=False,
    )


def test_keygen_attest_verify_pipeline(tmp_path: Path) -> None:
    key = tmp_path / "alice.key"
    made = trustnode("keygen", "--out", str(key))
    assert made.returncode == 0, made.stderr
    identity = made.stdout.strip()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert trustnode("whoami", "--key", str(key)).stdout.strip() == identity

    signed = trustnode(
        "attest",
        "trust",
        BOB,
        "--value",
        "80",
        "--context",
        "carpool",
        "--key",
        str(key),
        "--issued-at-ms",
        "1700000000000",
    )
    assert signed.returncode == 0, signed.stderr
    checked = trustnode("verify", "--json", stdin=signed.stdout)
    assert checked.returncode == 0, checked.stderr
    view = json.loads(checked.stdout)
    assert view["issuer"] == identity
    assert view["subject"] == BOB
    assert (view["kind"], view["context"], view["value"]) == ("trust", "carpool", 80)
    assert view["issued_at_ms"] == 1_700_000_000_000


def test_every_attest_kind_verifies(tmp_path: Path) -> None:
    key = tmp_path / "k"
    trustnode("keygen", "--out", str(key))
    commands = [
        ["certify", BOB, "--claim", "resident:rue-des-lilas", "--private-value", "12"],
        ["rate", "urn:tool:drill-7", "--value", "-20", "--reference", "loan-1"],
        ["rate", BOB, "--value", "20", "--expires-in", "3600"],
        ["revoke", "trust", BOB, "carpool"],
    ]
    for command in commands:
        signed = trustnode("attest", *command, "--key", str(key), "--json")
        assert signed.returncode == 0, (command, signed.stderr)
        envelope = json.loads(signed.stdout)["envelope"]
        assert trustnode("verify", envelope).returncode == 0


@pytest.mark.parametrize(
    ("args", "stdin", "code"),
    [
        (["verify", "zz"], "", 2),
        (["verify", "-"], "9300", 1),
        (["verify", "-"], "", 1),
        (["whoami", "--key", "/nonexistent/key"], "", 2),
        (["attest", "trust", "tn_nope", "--value", "1", "--key", "/nonexistent"], "", 2),
    ],
)
def test_bad_input_is_one_line_and_an_exit_code(args: list[str], stdin: str, code: int) -> None:
    result = trustnode(*args, stdin=stdin)
    assert result.returncode == code
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("trustnode: ")


def test_out_of_range_value_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "k"
    trustnode("keygen", "--out", str(key))
    result = trustnode("attest", "trust", BOB, "--value", "101", "--key", str(key))
    assert result.returncode == 2
    assert "out_of_range" in result.stderr


def test_exposed_key_file_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "k"
    trustnode("keygen", "--out", str(key))
    os.chmod(key, 0o644)
    result = trustnode("whoami", "--key", str(key))
    assert result.returncode == 2
    assert "chmod 600" in result.stderr


def test_keygen_never_overwrites(tmp_path: Path) -> None:
    key = tmp_path / "k"
    first = trustnode("keygen", "--out", str(key)).stdout
    assert trustnode("keygen", "--out", str(key)).returncode == 2
    assert trustnode("whoami", "--key", str(key)).stdout == first


def test_walkthrough_demo_runs_the_real_code() -> None:
    result = trustnode("demo", "--walkthrough")
    assert result.returncode == 0, result.stderr
    assert "refused: bad_signature" in result.stdout
    assert "matches" in result.stdout
    assert "empty (revoked" in result.stdout
    assert "Why erin has" in result.stdout
    assert "route alice -> " in result.stdout
    assert ": no_path" in result.stdout
    assert "frank 0.000, the farm at most 0.000" in result.stdout


def test_community_demo_runs_real_nodes_and_converges() -> None:
    result = trustnode("demo")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "All 6 stores hold the same 24 attestations" in out
    assert "Why alice trusts grace" in out
    # Names come from the nodes: alice's petnames, dave's name for grace, profiles.
    assert 'of it along you -> Erin -> "Grace (new at no. 12)" per ~Dave' in out
    assert "warning about ~Gr\u0430ce: goes by Gr\u0430ce, like your Grace" in out
    assert "yes (2/2 chains)" in out  # alice: two independent certifiers
    assert "0.000 (no path)" in out  # mallory, after the revocation
    assert "Stopped every node cleanly" in out


def test_invite_and_join(tmp_path: Path) -> None:
    ann, ben = str(tmp_path / "ann"), str(tmp_path / "ben")
    made = trustnode("--data-dir", ann, "init", "--listen", "127.0.0.1:7999")
    assert made.returncode == 0, made.stderr
    status = json.loads(trustnode("--data-dir", ann, "status", "--json").stdout)
    code = trustnode("--data-dir", ann, "invite", "--expires-in", "3600", "--single-use").stdout
    code = code.strip()
    assert code.startswith("tninvite1_")
    shown = trustnode("join", code, "--dry-run", "--json")
    assert shown.returncode == 0, shown.stderr
    view = json.loads(shown.stdout)
    assert view["inviter"] == status["identity"]
    assert view["bootstrap"] == ["127.0.0.1:7999"]
    assert (view["open"], view["single_use"]) == (False, True)
    joined = trustnode("--data-dir", ben, "join", code, "--listen", "127.0.0.1:7998")
    assert joined.returncode == 0, joined.stderr
    config = (tmp_path / "ben" / "config.toml").read_text()
    assert 'bootstrap = ["127.0.0.1:7999"]' in config
    assert f'anchors = ["{status["identity"]}"]' in config
    assert stat.S_IMODE((tmp_path / "ben" / "config.toml").stat().st_mode) == 0o600
    again = trustnode("--data-dir", ben, "join", code)
    assert again.returncode == 2
    assert "already initialised" in again.stderr
    tampered = code[:-3] + ("a" if code[-3] != "a" else "b") + code[-2:]
    refused = trustnode("join", tampered, "--dry-run")
    assert refused.returncode == 1
    assert refused.stderr.startswith("trustnode: invalid invite")


def test_bad_flags_and_missing_communities_are_one_line(tmp_path: Path) -> None:
    bad = trustnode("--data-dir", str(tmp_path / "x"), "init", "--listen", "nowhere")
    assert bad.returncode == 2
    assert "listen: expected host:port" in bad.stderr
    assert not (tmp_path / "x" / "config.toml").exists()
    missing = trustnode("--data-dir", str(tmp_path / "none"), "score", BOB)
    assert missing.returncode == 3
    assert "trustnode init" in missing.stderr
    assert "Traceback" not in missing.stderr + bad.stderr


def test_help_lists_the_summaries_of_the_commands() -> None:
    from node.cli import COMMANDS, cli

    for name, (_, summary) in COMMANDS.items():
        command = cli.get_command(click.Context(cli), name)
        assert command is not None
        assert (command.help or "").split("\n")[0] == summary, name


def test_simulate_writes_a_report_and_lists_scenarios(tmp_path: Path) -> None:
    listed = trustnode("simulate", "--list")
    assert listed.returncode == 0, listed.stderr
    assert "convergence" in listed.stdout
    assert "whitewash" in listed.stdout
    out = tmp_path / "run"
    result = trustnode(
        "simulate", "convergence", "--nodes", "16", "--seed", "2", "--param", "attestations=2",
        "--param", "burst=5", "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "every single attestation reached every node" in result.stdout
    assert json.loads((out / "results.json").read_text())["nodes"] == 16
    assert (out / "spread.png").exists()
    bad = trustnode("simulate", "convergence", "--param", "nope=1")
    assert bad.returncode == 2
    assert "nope: convergence has no such parameter" in bad.stderr
