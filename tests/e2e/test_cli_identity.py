"""Files that hold who we are (key.json, api.token) are never remade behind the member's back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def trustnode(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from node.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def community(tmp_path: Path) -> Path:
    folder = tmp_path / "ann"
    made = trustnode("--data-dir", str(folder), "init", "--listen", "127.0.0.1:0")
    assert made.returncode == 0, made.stderr
    return folder


@pytest.mark.parametrize("command", [["status"], ["score", "tn_x"], ["run"], ["invite"]])
def test_a_missing_key_is_refused_not_replaced(community: Path, command: list[str]) -> None:
    (community / "key.json").unlink()
    result = trustnode("--data-dir", str(community), *command)
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1
    assert "key.json" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (community / "key.json").exists()


@pytest.mark.parametrize("command", [["status"], ["run"]])
def test_a_missing_token_is_refused_not_replaced(community: Path, command: list[str]) -> None:
    (community / "api.token").unlink()
    result = trustnode("--data-dir", str(community), *command)
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1
    assert "api.token" in result.stderr
    assert not (community / "api.token").exists()
