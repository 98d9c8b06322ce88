"""Configuration: one precedence rule, and one clear line for every bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.errors import ConfigError
from node.home.config import (
    CONFIG_FILE,
    NodeConfig,
    check_config,
    default_data_dir,
    load_config,
    new_community,
    render_config,
    with_overrides,
)


def write(folder: Path, text: str) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / CONFIG_FILE).write_text(text)
    (folder / CONFIG_FILE).chmod(0o600)
    return folder


def fresh(tmp_path: Path) -> NodeConfig:
    config = new_community("street", data_dir=tmp_path)
    write(tmp_path, render_config(config))
    return config


def test_rendered_config_reads_back_identically(tmp_path: Path) -> None:
    config = with_overrides(
        fresh(tmp_path), bootstrap=("192.0.2.7:7400", "[2001:db8::1]:7400"), max_active=5,
        cors_origins=("http://localhost:3000",), log_format="json",
    )  # fmt: skip
    write(tmp_path, render_config(config))
    assert load_config(tmp_path, environ={}) == config


def test_open_community_renders_an_empty_key(tmp_path: Path) -> None:
    config = new_community("open", data_dir=tmp_path, is_open=True)
    write(tmp_path, render_config(config))
    loaded = load_config(tmp_path, environ={})
    assert loaded.community_key is None
    assert loaded.community.key != bytes(32)  # derived, public


def test_precedence_file_then_environment_then_flags(tmp_path: Path) -> None:
    fresh(tmp_path)
    text = (tmp_path / CONFIG_FILE).read_text().replace('"127.0.0.1:7400"', '"127.0.0.1:7500"')
    write(tmp_path, text)
    assert load_config(tmp_path, environ={}).listen == "127.0.0.1:7500"
    environ = {"TRUSTNODE_NETWORK_LISTEN": "127.0.0.1:7600", "TRUSTNODE_NETWORK_MAX_ACTIVE": "3"}
    from_env = load_config(tmp_path, environ=environ)
    assert (from_env.listen, from_env.max_active) == ("127.0.0.1:7600", 3)
    flagged = load_config(tmp_path, environ=environ, overrides={"network.listen": "127.0.0.1:7700"})
    assert (flagged.listen, flagged.max_active) == ("127.0.0.1:7700", 3)


def test_environment_lists_are_comma_separated(tmp_path: Path) -> None:
    fresh(tmp_path)
    environ = {"TRUSTNODE_NETWORK_BOOTSTRAP": "10.0.0.1:7400, 10.0.0.2:7400"}
    assert load_config(tmp_path, environ=environ).bootstrap == ("10.0.0.1:7400", "10.0.0.2:7400")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("[network]", "[network]\nsurprise = 1"), "unknown key [network] surprise"),
        (
            ('listen = "127.0.0.1:7400"', 'listen = "nowhere"'),
            "[network] listen: expected host:port",
        ),
        (("max_active = 8", "max_active = 0"), "[network] max_active: expected a whole number"),
        (("max_active = 8", 'max_active = "8x"'), "[network] max_active"),
        (('format = "text"', 'format = "xml"'), "[log] format: expected one of text, json"),
        (("[community]", "stray = 3\n[community]"), "must be a [section]"),
        (("anchors = []", 'anchors = ["tn_nope"]'), "[relay] anchors: not an identity"),
        (("[community]", "[community"), "not valid TOML"),
    ],
)
def test_bad_config_is_one_line_naming_the_key(
    tmp_path: Path, edit: tuple[str, str], message: str
) -> None:
    fresh(tmp_path)
    text = (tmp_path / CONFIG_FILE).read_text()
    assert edit[0] in text
    write(tmp_path, text.replace(edit[0], edit[1], 1))
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")) as info:
        load_config(tmp_path, environ={})
    assert "\n" not in str(info.value)
    assert str(tmp_path / CONFIG_FILE) in str(info.value)


def test_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    fresh(tmp_path)
    with pytest.raises(ConfigError, match="TRUSTNODE_API_ALLOW_REMOTE: expected true or false"):
        load_config(tmp_path, environ={"TRUSTNODE_API_ALLOW_REMOTE": "perhaps"})


def test_missing_config_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="trustnode init"):
        load_config(tmp_path / "nothing", environ={})


def test_binary_and_huge_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE).write_bytes(b"\xff\xfe" * 10)
    (tmp_path / CONFIG_FILE).chmod(0o600)
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(tmp_path, environ={})
    (tmp_path / CONFIG_FILE).write_bytes(b"#" * (70 * 1024))
    with pytest.raises(ConfigError, match="larger than"):
        load_config(tmp_path, environ={})


def test_flags_are_checked_like_the_file(tmp_path: Path) -> None:
    config = new_community("x", data_dir=tmp_path)
    check_config(config)
    with pytest.raises(ConfigError, match="listen"):
        check_config(with_overrides(config, listen="no-port"))


def test_default_data_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_data_dir("street") == tmp_path / "trustnode" / "street"
    for bad in ("", "../up", ".hidden", "a/b"):
        with pytest.raises(ConfigError):
            default_data_dir(bad)


def test_a_config_file_others_can_read_is_refused(tmp_path: Path) -> None:
    fresh(tmp_path)
    (tmp_path / CONFIG_FILE).chmod(0o644)  # it holds the community key
    with pytest.raises(ConfigError, match="chmod 600"):
        load_config(tmp_path, environ={})
    (tmp_path / CONFIG_FILE).chmod(0o620)
    with pytest.raises(ConfigError):
        load_config(tmp_path, environ={})
    (tmp_path / CONFIG_FILE).chmod(0o600)
    load_config(tmp_path, environ={})


def test_an_unknown_environment_variable_is_refused_like_an_unknown_key(tmp_path: Path) -> None:
    fresh(tmp_path)
    with pytest.raises(ConfigError, match="TRUSTNODE_NETWORK_LISTN"):
        load_config(tmp_path, environ={"TRUSTNODE_NETWORK_LISTN": "127.0.0.1:1"})
    documented = {"TRUSTNODE_DATA_DIR": str(tmp_path), "TRUSTNODE_LOG_LEVEL": "debug",
                  "OTHER_VARIABLE": "x"}  # fmt: skip
    assert load_config(tmp_path, environ=documented).log_level == "debug"


def test_punch_without_circuits_is_refused(tmp_path: Path) -> None:
    """Punching moves sessions that run over circuits (SPEC §15.4): without circuits it
    would do nothing but share the listening port (SO_REUSEPORT) for no punch."""
    fresh(tmp_path)
    with pytest.raises(ConfigError, match=r"punch needs \[network\] circuits"):
        load_config(tmp_path, environ={"TRUSTNODE_NETWORK_PUNCH": "true"})
    both = {"TRUSTNODE_NETWORK_PUNCH": "true", "TRUSTNODE_NETWORK_CIRCUITS": "true"}
    assert load_config(tmp_path, environ=both).punch
