"""The node's own signing key on disk: a small JSON file readable by its owner only.

The secret seed never leaves this file and the process. We refuse to read a key
file that other users can read (like ssh does), and we create it with mode 0600
from the first byte, never chmod-ing afterwards, so there is no window in which
it is exposed. Writes go to a temporary file that is fsynced and renamed, so a
crash leaves either the old file or the new one, never half a key.

With a passphrase, the seed is sealed with libsodium's `secretbox`
(XSalsa20-Poly1305) under a key derived by Argon2id (`crypto_pwhash`); the
file then holds only the salt, the cost parameters and the sealed seed. The
parameters read back are bounded, so a hostile file cannot make us allocate
gigabytes or spin for minutes.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.utils

from node.errors import KeyFileError
from protocol.errors import DecodeError, LocalProtocolError
from protocol.identity import IdentityKey, decode_identity_text, encode_identity_text

__all__ = [
    "INTERACTIVE",
    "KEY_FILE_FORMAT",
    "KdfCost",
    "PassphraseRequiredError",
    "WrongPassphraseError",
    "load_key",
    "save_key",
    "sync_directory",
]

KEY_FILE_FORMAT = "trustnode-key"
_KEY_FILE_VERSION = 1
_MAX_KEY_FILE_BYTES = 4096
_KDF = "argon2id"


class PassphraseRequiredError(KeyFileError):
    """The key file is encrypted and no passphrase was given."""


class WrongPassphraseError(KeyFileError):
    """The passphrase does not open the key file (or the sealed seed was altered)."""


@dataclass(frozen=True, slots=True)
class KdfCost:
    """Argon2id cost parameters (libsodium's opslimit and memlimit in bytes)."""

    opslimit: int
    memlimit: int

    def check(self) -> None:
        """Refuse costs outside libsodium's range or above our ceiling (1 GiB, 16 passes)."""
        # Types first: a file's "2" or null must be refused, not compared (a TypeError).
        if not (type(self.opslimit) is int and type(self.memlimit) is int):
            raise KeyFileError("key file KDF parameters out of range")
        ops_ok = nacl.pwhash.argon2id.OPSLIMIT_MIN <= self.opslimit <= 16
        mem_ok = nacl.pwhash.argon2id.MEMLIMIT_MIN <= self.memlimit <= 2**30
        if not (ops_ok and mem_ok):
            raise KeyFileError("key file KDF parameters out of range")


# libsodium's "interactive" level: about 0.1-0.5 s and 64 MiB on a small machine.
INTERACTIVE = KdfCost(
    opslimit=nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE,
    memlimit=nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE,
)


def _derive(passphrase: bytes, salt: bytes, cost: KdfCost) -> bytes:
    cost.check()
    return nacl.pwhash.argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE,
        passphrase,
        salt,
        opslimit=cost.opslimit,
        memlimit=cost.memlimit,
    )


def _seal(seed: bytes, passphrase: bytes, cost: KdfCost) -> dict[str, Any]:
    salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
    box = nacl.secret.SecretBox(_derive(passphrase, salt, cost))
    return {
        "kdf": _KDF,
        "opslimit": cost.opslimit,
        "memlimit": cost.memlimit,
        "salt_hex": salt.hex(),
        "sealed_seed_hex": bytes(box.encrypt(seed)).hex(),
    }


def _unseal(sealed: dict[str, Any], passphrase: bytes) -> bytes:
    if sealed.get("kdf") != _KDF:
        raise KeyFileError(f"unsupported key file KDF {str(sealed.get('kdf'))[:16]!r}")
    cost = KdfCost(opslimit=sealed["opslimit"], memlimit=sealed["memlimit"])
    key = _derive(passphrase, bytes.fromhex(sealed["salt_hex"]), cost)
    try:
        return bytes(nacl.secret.SecretBox(key).decrypt(bytes.fromhex(sealed["sealed_seed_hex"])))
    except nacl.exceptions.CryptoError:
        raise WrongPassphraseError("wrong passphrase for the key file") from None


def save_key(
    key: IdentityKey,
    path: Path,
    *,
    passphrase: bytes | None = None,
    cost: KdfCost = INTERACTIVE,
    overwrite: bool = False,
) -> None:
    """Write `key` to `path` with mode 0600, atomically, sealed if a passphrase is given.

    Raises:
        KeyFileError: `path` exists (and `overwrite` is false) or cannot be written.
    """
    if path.exists() and not overwrite:
        raise KeyFileError(f"{path} exists; refusing to overwrite a key")
    document: dict[str, Any] = {
        "format": KEY_FILE_FORMAT,
        "version": _KEY_FILE_VERSION,
        "identity": encode_identity_text(key.identity),
    }
    if passphrase is None:
        document["seed_hex"] = key.seed.hex()
    else:
        document["sealed"] = _seal(key.seed, passphrase, cost)
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # a stale temporary file keeps its own mode through O_CREAT
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(temporary, path)
        else:
            # Sealing takes a while: a key written there meanwhile (say, the daemon's
            # `key commit`) must not be replaced. link() fails if `path` exists.
            try:
                os.link(temporary, path)
            except FileExistsError:
                raise KeyFileError(f"{path} exists; refusing to overwrite a key") from None
            finally:
                os.unlink(temporary)
        sync_directory(path.parent)  # the rename itself must survive a power cut
    except OSError as exc:
        raise KeyFileError(f"cannot write key file {path}: {exc.strerror}") from exc


def sync_directory(path: Path) -> None:
    """fsync a directory, so that a rename or unlink in it is durable (POSIX)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_key(path: Path, *, passphrase: bytes | None = None) -> IdentityKey:
    """Read the key at `path`, refusing exposed, oversized or inconsistent files.

    Raises:
        PassphraseRequiredError: the file is sealed and `passphrase` is None.
        WrongPassphraseError: the passphrase does not open it.
        KeyFileError: anything else, with a message that says what is wrong and
            how to fix it.
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
    return _parse_key(raw, path, passphrase)


def sealing_of(path: Path) -> KdfCost | None:
    """The KDF cost `path`'s seed is sealed with, or None if it is stored in clear.

    A key written beside this one (the next key, SPEC §17) is sealed the same
    way: a sealed key.json next to a next key in clear would protect nothing.

    Raises:
        KeyFileError: the file cannot be read or is not a key file.
    """
    try:
        with path.open("rb") as handle:
            raw = handle.read(_MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from exc
    try:
        document = json.loads(raw) if len(raw) <= _MAX_KEY_FILE_BYTES else None
        if not isinstance(document, dict) or document.get("format") != KEY_FILE_FORMAT:
            raise KeyFileError(f"{path} is not a trustnode key file")
        sealed = document.get("sealed")
        if sealed is None:
            return None
        cost = KdfCost(opslimit=sealed["opslimit"], memlimit=sealed["memlimit"])
    except (ValueError, KeyError, TypeError) as exc:
        raise KeyFileError(f"{path} is corrupt ({type(exc).__name__})") from exc
    cost.check()
    return cost


def _seed(document: dict[str, Any], path: Path, passphrase: bytes | None) -> bytes:
    if "sealed" not in document:
        return bytes.fromhex(document["seed_hex"])
    if passphrase is None:
        raise PassphraseRequiredError(f"{path} is encrypted: a passphrase is needed")
    return _unseal(document["sealed"], passphrase)


def _parse_key(raw: bytes, path: Path, passphrase: bytes | None) -> IdentityKey:
    try:
        document = json.loads(raw)
        if document.get("format") != KEY_FILE_FORMAT:
            raise KeyFileError(f"{path} is not a trustnode key file")
        if document.get("version") != _KEY_FILE_VERSION:
            raise KeyFileError(f"{path}: unsupported key file version {document.get('version')}")
        key = IdentityKey.from_seed(_seed(document, path, passphrase))
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
