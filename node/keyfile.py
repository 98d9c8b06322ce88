"""The node's own signing key on disk: a small JSON file readable by its owner only.

The secret seed never leaves this file and the process. We refuse to read a key
file that other users can read (like ssh does), and we create it with mode 0600
from the first byte, never chmod-ing afterwards, so there is no window in which
it is exposed. Writes go to a temporary file that is fsynced and renamed, so a
crash leaves either the old file or the new one, never half a key.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from node.errors import KeyFileError
from protocol.errors import DecodeError, LocalProtocolError
from protocol.identity import IdentityKey, decode_identity_text, encode_identity_text

__all__ = ["KEY_FILE_FORMAT", "load_key", "save_key"]

KEY_FILE_FORMAT = "trustnode-key"
_KEY_FILE_VERSION = 1
_MAX_KEY_FILE_BYTES = 4096


def save_key(key: IdentityKey, path: Path, *, overwrite: bool = False) -> None:
    """Write `key` to `path` with mode 0600, atomically.

    Raises:
        KeyFileError: `path` exists (and `overwrite` is false) or cannot be written.
    """
    if path.exists() and not overwrite:
        raise KeyFileError(f"{path} exists; refusing to overwrite a key")
    document = {
        "format": KEY_FILE_FORMAT,
        "version": _KEY_FILE_VERSION,
        "identity": encode_identity_text(key.identity),
        "seed_hex": key.seed.hex(),
    }
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        raise KeyFileError(f"cannot write key file {path}: {exc.strerror}") from exc


def load_key(path: Path) -> IdentityKey:
    """Read the key at `path`, refusing exposed, oversized or inconsistent files.

    Raises:
        KeyFileError: with a message that says what is wrong and how to fix it.
    """
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyFileError(
                f"{path} is accessible by other users (mode {stat.filemode(mode)}); "
                f"run: chmod 600 {path}"
            )
        with path.open("rb") as handle:
            raw = handle.read(_MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from exc
    if len(raw) > _MAX_KEY_FILE_BYTES:
        raise KeyFileError(f"{path} is too large to be a key file")
    return _parse_key(raw, path)


def _parse_key(raw: bytes, path: Path) -> IdentityKey:
    try:
        document = json.loads(raw)
        if document.get("format") != KEY_FILE_FORMAT:
            raise KeyFileError(f"{path} is not a trustnode key file")
        if document.get("version") != _KEY_FILE_VERSION:
            raise KeyFileError(f"{path}: unsupported key file version {document.get('version')}")
        key = IdentityKey.from_seed(bytes.fromhex(document["seed_hex"]))
        claimed = decode_identity_text(document["identity"])
    except (
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        LocalProtocolError,
        DecodeError,
    ) as exc:
        raise KeyFileError(f"{path} is corrupt ({type(exc).__name__})") from exc
    if claimed != key.identity:
        raise KeyFileError(f"{path} is corrupt: its identity does not match its seed")
    return key
