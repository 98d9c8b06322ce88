"""A node's configuration: one TOML file per community, environment overrides, CLI flags.

Precedence, lowest to highest (one rule, everywhere):

    built-in defaults  <  <data dir>/config.toml  <  TRUSTNODE_<SECTION>_<KEY>  <  CLI flags

The data directory holds everything of one community (config, key, API token,
store), so a member backs up, moves or deletes a community as one folder. It is
`--data-dir`, else `$TRUSTNODE_DATA_DIR`, else the platform's user data
directory (`$XDG_DATA_HOME/trustnode/<community>` on Linux, from
`platformdirs`) for the community name given with `--community` (default
`default`).

Every value is validated here, once, and a refusal is one `ConfigError` line
that names the file or variable, the key and the problem: a config file is
input like any other.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import stat
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import platformdirs

from node.errors import ConfigError
from node.net.addresses import MAX_OWN_ADDRESSES, is_wildcard_host
from protocol.channel import Community
from protocol.errors import DecodeError
from protocol.identity import decode_identity_text
from protocol.invite import open_community_key

__all__ = [
    "CONFIG_FILE",
    "NodeConfig",
    "default_data_dir",
    "load_config",
    "parse_address",
    "parse_config",
    "render_config",
]

CONFIG_FILE = "config.toml"
ENV_PREFIX = "TRUSTNODE_"
# TRUSTNODE_ variables that are not settings of config.toml (`node.cli.common`).
NON_CONFIG_VARIABLES = ("TRUSTNODE_DATA_DIR",)
_MAX_CONFIG_BYTES = 64 * 1024


def default_data_dir(community: str = "default") -> Path:
    """Where a community's folder lives by default (XDG on Linux)."""
    if not community or "/" in community or community.startswith("."):
        raise ConfigError(f"community name {community!r} cannot be a folder name")
    return Path(platformdirs.user_data_dir("trustnode")) / community


def parse_address(text: str, *, what: str = "address") -> tuple[str, int]:
    """`host:port` (IPv6 hosts in brackets) -> (host, port); port 0 means any free port."""
    host, sep, port_text = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError(f"{what}: expected host:port, got {text!r}")
    return host, int(port_text)


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeConfig:
    """Everything a node needs to run; see `render_config` for what each field means."""

    data_dir: Path
    name: str = "default"
    community_id: bytes
    community_key: bytes | None = None  # None: an open community (its key is public)
    listen: str = "127.0.0.1:7400"
    advertise: tuple[str, ...] = ()  # where peers should dial us; () = work it out
    bootstrap: tuple[str, ...] = ()
    max_active: int = 8
    resync_interval_s: float = 60.0
    api_listen: str = "127.0.0.1:7401"
    api_allow_remote: bool = False
    cors_origins: tuple[str, ...] = ()
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    unvouched_quota: int = 20
    relay_anchors: tuple[str, ...] = ()  # tn_ identities whose vouches we also follow
    max_skew_s: int = 600
    lan_discovery: bool = False  # announce on / listen to the LAN (SPEC §15)
    lan_group: str = "239.255.76.78:7402"  # the beacons' IPv4 multicast group and UDP port
    reachability_checks: bool = False  # ask peers to dial us back, answer theirs (SPEC §15.2)
    circuits: bool = False  # relay circuits for members we vouch for; accept ours (SPEC §15.3)
    port_mapping: bool = False  # ask the home router (UPnP-IGD) to forward `listen`'s port
    punch: bool = False  # move relayed sessions to direct connections (SPEC §15.4)

    @property
    def community(self) -> Community:
        """The community this node connects to."""
        key = self.community_key
        if key is None:
            key = open_community_key(self.community_id)
        return Community(id=self.community_id, keys=(key,))


# -- the schema: (section, key) -> (field, parser) ------------------------------------

Parser = Callable[[object], object]


def _string(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return value


def _hex32(value: object) -> bytes:
    text = _string(value)
    try:
        data = bytes.fromhex(text)
    except ValueError:
        raise ValueError("expected 64 hexadecimal digits") from None
    if len(data) != 32:
        raise ValueError("expected 64 hexadecimal digits (32 bytes)")
    return data


def _optional_hex32(value: object) -> bytes | None:
    return None if value in ("", None) else _hex32(value)


def _address(value: object) -> str:
    text = _string(value)
    if text.startswith("unix:") and len(text) > len("unix:"):
        return text
    try:
        parse_address(text)
    except ConfigError:
        raise ValueError(f"expected host:port, got {text!r}") from None
    return text


def _peer_address(value: object) -> str:
    text = _address(value)
    if text.startswith("unix:"):
        raise ValueError("peers connect over TCP: expected host:port")
    return text


def _advertised_address(value: object) -> str:
    text = _peer_address(value)
    host, port = parse_address(text)
    if port == 0:
        raise ValueError(f"{text!r}: a neighbour needs a real port, not 0")
    if is_wildcard_host(host):
        raise ValueError(f"{text!r}: {host} is where to listen, not an address to dial")
    return text


def _advertise(value: object) -> tuple[object, ...]:  # -> tuple[str, ...]
    # A single "host:port" string is what files written before the list read.
    if value in ("", None):
        return ()
    addresses = _string_list(_advertised_address)(value)
    assert isinstance(addresses, tuple)
    if len(addresses) > MAX_OWN_ADDRESSES:
        raise ValueError(f"at most {MAX_OWN_ADDRESSES} addresses (an invite carries 8)")
    return addresses


def _multicast_group(value: object) -> str:
    """An IPv4 multicast `group:port` for LAN beacons (224.0.0.0/4)."""
    text = _string(value)
    host, _ = parse_address(text, what="lan_group")
    try:
        multicast = ipaddress.IPv4Address(host).is_multicast
    except ValueError:
        multicast = False
    if not multicast:
        raise ConfigError(f"lan_group must be an IPv4 multicast address:port, not {text!r:.80}")
    return text


def _string_list(item: Parser) -> Parser:
    def parse(value: object) -> tuple[object, ...]:
        if isinstance(value, str):  # from the environment: comma-separated
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list):
            raise ValueError("expected a list")
        return tuple(item(v) for v in value)

    return parse


def _integer(low: int, high: int) -> Parser:
    def parse(value: object) -> int:
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if type(value) is not int or not low <= value <= high:
            raise ValueError(f"expected a whole number from {low} to {high}")
        return value

    return parse


def _number(low: float, high: float) -> Parser:
    def parse(value: object) -> float:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ValueError("expected a number") from None
        if type(value) not in (int, float) or not low <= float(value) <= high:  # type: ignore[arg-type]
            raise ValueError(f"expected a number from {low} to {high}")
        return float(value)  # type: ignore[arg-type]

    return parse


def _boolean(value: object) -> bool:
    if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
        return value.lower() in ("true", "1", "yes")
    if type(value) is not bool:
        raise ValueError("expected true or false")
    return value


def _choice(*options: str) -> Parser:
    def parse(value: object) -> str:
        if value not in options:
            raise ValueError(f"expected one of {', '.join(options)}")
        return str(value)

    return parse


def _name(value: object) -> str:
    text = _string(value)
    default_data_dir(text)  # raises ConfigError for names that cannot be folders
    return text


def _identity_text(value: object) -> str:
    text = _string(value)
    try:
        decode_identity_text(text)
    except DecodeError as exc:
        raise ValueError(f"not an identity ({exc.reason.value})") from None
    return text


SCHEMA: dict[tuple[str, str], tuple[str, Parser]] = {
    ("community", "name"): ("name", _name),
    ("community", "id"): ("community_id", _hex32),
    ("community", "key"): ("community_key", _optional_hex32),
    ("network", "listen"): ("listen", _peer_address),
    ("network", "advertise"): ("advertise", _advertise),
    ("network", "bootstrap"): ("bootstrap", _string_list(_peer_address)),
    ("network", "max_active"): ("max_active", _integer(1, 64)),
    ("network", "resync_interval_s"): ("resync_interval_s", _number(1, 86_400)),
    ("network", "max_skew_s"): ("max_skew_s", _integer(0, 86_400)),
    ("network", "lan_discovery"): ("lan_discovery", _boolean),
    ("network", "lan_group"): ("lan_group", _multicast_group),
    ("network", "reachability_checks"): ("reachability_checks", _boolean),
    ("network", "circuits"): ("circuits", _boolean),
    ("network", "port_mapping"): ("port_mapping", _boolean),
    ("network", "punch"): ("punch", _boolean),
    ("api", "listen"): ("api_listen", _address),
    ("api", "allow_remote"): ("api_allow_remote", _boolean),
    ("api", "cors_origins"): ("cors_origins", _string_list(_string)),
    ("log", "format"): ("log_format", _choice("text", "json")),
    ("log", "level"): ("log_level", _choice("debug", "info", "warning", "error")),
    ("relay", "unvouched_quota"): ("unvouched_quota", _integer(0, 1_000_000)),
    ("relay", "anchors"): ("relay_anchors", _string_list(_identity_text)),
}
_BY_FIELD = {name: (section, key) for (section, key), (name, _) in SCHEMA.items()}


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            _check_private(path, os.fstat(handle.fileno()).st_mode)
            data = handle.read(_MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(
            f"{path} not found: run `trustnode init` (or `trustnode join CODE`) first"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    return _toml(data, path)


def _check_private(path: Path, mode: int) -> None:
    """Refuse a config file that others may read or write, as `key.json` is refused:
    it holds the community key, and whoever may write it chooses our peers."""
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{path} is accessible to other users (mode {stat.S_IMODE(mode):04o}) and holds "
            f"the community key; run: chmod 600 {path}"
        )


def _toml(data: bytes, path: Path) -> dict[str, Any]:
    if len(data) > _MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than {_MAX_CONFIG_BYTES} bytes")
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    except RecursionError:  # pathologically nested arrays or tables
        raise ConfigError(f"{path}: nested too deeply") from None


def parse_config(data: bytes, *, data_dir: Path) -> NodeConfig:
    """A config file's bytes -> `NodeConfig` (no environment, no flags): the decoder
    that `load_config` uses, exposed for checks and fuzzing.

    Raises:
        ConfigError: anything wrong, in one line.
    """
    path = data_dir / CONFIG_FILE
    return _build(data_dir, path, _from_file(path, _toml(data, path)))


def _build(data_dir: Path, path: Path, values: dict[str, object]) -> NodeConfig:
    if "community_id" not in values:
        raise ConfigError(f"{path}: [community] id is required")
    if values.get("punch") and not values.get("circuits"):
        # It would do nothing but share the listening port (SO_REUSEPORT) for no punch.
        raise ConfigError(
            f"{path}: [network] punch needs [network] circuits = true "
            "(a punch moves a session that runs over a circuit, SPEC §15.4)"
        )
    return NodeConfig(data_dir=data_dir, **values)  # type: ignore[arg-type]


def _from_file(path: Path, document: Mapping[str, Any]) -> dict[str, object]:
    values: dict[str, object] = {}
    for section, table in document.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: {section!r} must be a [section]")
        for key, raw in table.items():
            entry = SCHEMA.get((section, key))
            if entry is None:
                raise ConfigError(f"{path}: unknown key [{section}] {key}")
            name, parse = entry
            values[name] = _parse(parse, raw, f"{path}: [{section}] {key}")
    return values


def _from_environment(environ: Mapping[str, str]) -> dict[str, object]:
    values: dict[str, object] = {}
    known = set(NON_CONFIG_VARIABLES)
    for (section, key), (name, parse) in SCHEMA.items():
        variable = f"{ENV_PREFIX}{section.upper()}_{key.upper()}"
        known.add(variable)
        if variable in environ:
            values[name] = _parse(parse, environ[variable], variable)
    # A misspelt variable is refused as a misspelt file key is, not silently ignored.
    unknown = sorted(v for v in environ if v.startswith(ENV_PREFIX) and v not in known)
    if unknown:
        raise ConfigError(
            f"unknown environment variable {unknown[0]} (settings are "
            f"{ENV_PREFIX}<SECTION>_<KEY> for the keys of config.toml, e.g. "
            f"{ENV_PREFIX}NETWORK_LISTEN; unset it)"
        )
    return values


def _parse(parse: Parser, raw: object, where: str) -> object:
    try:
        return parse(raw)
    except (ValueError, ConfigError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def load_config(
    data_dir: Path,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> NodeConfig:
    """Read `<data_dir>/config.toml`, then apply environment variables and `overrides`.

    `overrides` maps `section.key` (e.g. `network.listen`) to a value, as the
    CLI's flags give them; they are validated like everything else.

    Raises:
        ConfigError: a missing or unreadable file, bad TOML, an unknown key or
            a bad value; the message names where and which.
    """
    path = data_dir / CONFIG_FILE
    values = _from_file(path, _read_file(path))
    values.update(_from_environment(os.environ if environ is None else environ))
    for dotted, raw in (overrides or {}).items():
        section, _, key = dotted.partition(".")
        name, parse = SCHEMA[(section, key)]
        values[name] = _parse(parse, raw, f"--{key.replace('_', '-')}")
    return _build(data_dir, path, values)


def check_config(config: NodeConfig) -> None:
    """Validate a config made in code (e.g. from CLI flags) as if read from its file.

    Raises:
        ConfigError: naming the flag's key and the problem.
    """
    _from_file(Path("the given options"), tomllib.loads(render_config(config)))


def new_community(name: str, *, data_dir: Path, is_open: bool = False) -> NodeConfig:
    """A fresh community: a random id and (closed by default) a random key."""
    return NodeConfig(
        data_dir=data_dir,
        name=name,
        community_id=secrets.token_bytes(32),
        community_key=None if is_open else secrets.token_bytes(32),
    )


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return f'"{value.hex()}"'
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, int | float):
        return repr(value)
    if value is None:
        return '""'
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


_COMMENTS = {
    "name": "a local label for this community (names the default data directory)",
    "community_id": "the community's public id (32 bytes, hex); every member has the same",
    "community_key": 'the key that admits members (secret; "" = an open community)',
    "listen": "where this node accepts peers (host:port; port 0 = any free port)",
    "advertise": (
        'where peers should dial us, e.g. ["198.51.100.7:7400"] (at most 8); [] = the listen '
        "address, or this machine's interface addresses when listening on 0.0.0.0 or ::"
    ),
    "bootstrap": 'peers to dial at start, e.g. ["192.0.2.7:7400"]',
    "max_active": "how many peers to keep connected (HyParView active view)",
    "resync_interval_s": "seconds between anti-entropy reconciliations with each peer",
    "lan_discovery": "find members on this network segment by sealed multicast beacons",
    "circuits": "relay circuits between members we vouch for (both behind NAT), and take ours",
    "punch": "hole-punch relayed sessions into direct TCP connections (needs circuits)",
    "reachability_checks": "ask peers to dial us back (and dial theirs): advertise what works",
    "port_mapping": (
        "ask the router (UPnP-IGD) to forward our port; peers' dial-backs confirm it works"
    ),
    "lan_group": "the multicast group:port of LAN beacons (every member of a segment the same)",
    "max_skew_s": "how far in the future an attestation's time may be (clock skew)",
    "api_listen": 'the local HTTP API: host:port or "unix:/path/to/socket"',
    "api_allow_remote": "allow the API on a non-loopback address (it is token-protected)",
    "cors_origins": "browser origins allowed to call the API (none by default)",
    "log_format": '"text" for people, "json" for log collectors',
    "log_level": "debug, info, warning or error",
    "unvouched_quota": "attestations stored per issuer that no one we follow vouches for",
    "relay_anchors": "identities (tn_...) whose vouching the relay policy follows besides ours",
}


def render_config(config: NodeConfig) -> str:
    """The commented TOML file `trustnode init` writes; `load_config` reads it back."""
    lines = [
        f"# trustnode configuration of community {config.name!r}.",
        "# Precedence: built-in defaults < this file < TRUSTNODE_<SECTION>_<KEY> environment",
        "# variables (e.g. TRUSTNODE_NETWORK_LISTEN) < command-line flags.",
    ]
    section = ""
    for (table, key), (name, _) in SCHEMA.items():  # grouped by section
        if table != section:
            lines += ["", f"[{table}]"]
            section = table
        lines.append(f"# {_COMMENTS[name]}")
        lines.append(f"{key} = {_toml_value(getattr(config, name))}")
    return "\n".join(lines) + "\n"


def with_overrides(config: NodeConfig, **changes: object) -> NodeConfig:
    """A copy of `config` with fields changed (for tests and `trustnode demo`)."""
    return replace(config, **changes)  # type: ignore[arg-type]
