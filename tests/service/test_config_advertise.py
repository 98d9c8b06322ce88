"""`[network] advertise`: a list of addresses a neighbour can dial (issue 21, defect 6)."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.errors import ConfigError
from node.home.config import CONFIG_FILE, load_config, new_community, render_config, with_overrides


def _write_private(path: Path, text: str) -> None:
    """As `init` writes it: the file holds the community key, so 0600 (else refused)."""
    path.write_text(text)
    path.chmod(0o600)


def _written(tmp_path: Path, advertise_line: str) -> Path:
    text = render_config(new_community("street", data_dir=tmp_path))
    lines = [
        advertise_line if line.startswith("advertise =") else line for line in text.split("\n")
    ]
    _write_private(tmp_path / CONFIG_FILE, "\n".join(lines))
    return tmp_path


def test_a_list_reads_back(tmp_path: Path) -> None:
    config = with_overrides(
        new_community("street", data_dir=tmp_path),
        advertise=("198.51.100.7:7400", "[2001:db8::7]:7400"),
    )
    _write_private(tmp_path / CONFIG_FILE, render_config(config))
    assert load_config(tmp_path, environ={}) == config


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('advertise = ""', ()),  # as files written before the list
        ('advertise = "198.51.100.7:7400"', ("198.51.100.7:7400",)),
        ("advertise = []", ()),
        ('advertise = ["a.example:1", "b.example:2"]', ("a.example:1", "b.example:2")),
    ],
)
def test_old_and_new_forms(tmp_path: Path, line: str, expected: tuple[str, ...]) -> None:
    assert load_config(_written(tmp_path, line), environ={}).advertise == expected


@pytest.mark.parametrize(
    "line",
    [
        'advertise = ["0.0.0.0:7400"]',
        'advertise = ["[::]:7400"]',
        'advertise = ["198.51.100.7:0"]',
        'advertise = ["no-port"]',
        "advertise = [" + ", ".join(f'"h{i}.example:1"' for i in range(9)) + "]",
    ],
)
def test_undialable_addresses_are_refused(tmp_path: Path, line: str) -> None:
    with pytest.raises(ConfigError, match="advertise"):
        load_config(_written(tmp_path, line), environ={})


def test_environment_and_flags(tmp_path: Path) -> None:
    folder = _written(tmp_path, "advertise = []")
    environ = {"TRUSTNODE_NETWORK_ADVERTISE": "198.51.100.7:7400, 198.51.100.8:7400"}
    assert load_config(folder, environ=environ).advertise == (
        "198.51.100.7:7400",
        "198.51.100.8:7400",
    )
    flagged = load_config(folder, environ={}, overrides={"network.advertise": ["x.example:9"]})
    assert flagged.advertise == ("x.example:9",)
