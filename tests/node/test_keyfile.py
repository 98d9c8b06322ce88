"""The node's key file: 0600, atomic, optionally sealed with a passphrase."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import nacl.pwhash
import pytest

from node.errors import KeyFileError
from node.home.keyfile import (
    KdfCost,
    PassphraseRequiredError,
    WrongPassphraseError,
    load_key,
    save_key,
)
from protocol.identity import IdentityKey

FAST = KdfCost(
    opslimit=nacl.pwhash.argon2id.OPSLIMIT_MIN, memlimit=nacl.pwhash.argon2id.MEMLIMIT_MIN
)


def test_plain_round_trip_and_mode(tmp_path: Path) -> None:
    key, path = IdentityKey.generate(), tmp_path / "key"
    save_key(key, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key(path).identity == key.identity
    assert not list(tmp_path.glob(".*.tmp"))


def test_sealed_round_trip(tmp_path: Path) -> None:
    key, path = IdentityKey.generate(), tmp_path / "key"
    save_key(key, path, passphrase=b"correct horse", cost=FAST)
    text = path.read_text()
    assert key.seed.hex() not in text
    assert load_key(path, passphrase=b"correct horse").seed == key.seed
    with pytest.raises(WrongPassphraseError):
        load_key(path, passphrase=b"wrong horse")
    with pytest.raises(PassphraseRequiredError):
        load_key(path)


def test_sealed_seed_tampering_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "key"
    save_key(IdentityKey.generate(), path, passphrase=b"pw", cost=FAST)
    document = json.loads(path.read_text())
    sealed = bytearray.fromhex(document["sealed"]["sealed_seed_hex"])
    sealed[-1] ^= 1
    document["sealed"]["sealed_seed_hex"] = sealed.hex()
    path.write_text(json.dumps(document))
    with pytest.raises(WrongPassphraseError):
        load_key(path, passphrase=b"pw")


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d["sealed"].update(memlimit=2**40),
        lambda d: d["sealed"].update(opslimit=10**6),
        lambda d: d["sealed"].update(opslimit="3"),
        lambda d: d["sealed"].update(kdf="scrypt"),
        lambda d: d["sealed"].update(salt_hex="zz"),
        lambda d: d["sealed"].pop("salt_hex"),
    ],
)
def test_hostile_kdf_parameters_are_refused(tmp_path: Path, edit: object) -> None:
    path = tmp_path / "key"
    save_key(IdentityKey.generate(), path, passphrase=b"pw", cost=FAST)
    document = json.loads(path.read_text())
    assert callable(edit)
    edit(document)
    path.write_text(json.dumps(document))
    with pytest.raises(KeyFileError):
        load_key(path, passphrase=b"pw")


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not json",
        b"[]",
        b'{"format": "trustnode-key", "version": 2}',
        b'{"format": "other"}',
        b'{"format": "trustnode-key", "version": 1, "identity": "tn_x", "seed_hex": "00"}',
        b"x" * 5000,
    ],
)
def test_corrupt_files_are_key_file_errors(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "key"
    path.write_bytes(content)
    os.chmod(path, 0o600)
    with pytest.raises(KeyFileError):
        load_key(path)


def test_identity_must_match_seed(tmp_path: Path) -> None:
    path, other = tmp_path / "key", IdentityKey.generate()
    save_key(IdentityKey.generate(), path)
    document = json.loads(path.read_text())
    document["identity"] = json.loads(json.dumps(document))["identity"]
    from protocol.identity import encode_identity_text

    document["identity"] = encode_identity_text(other.identity)
    path.write_text(json.dumps(document))
    with pytest.raises(KeyFileError, match="does not match"):
        load_key(path)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_exposed_key_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "key"
    save_key(IdentityKey.generate(), path)
    os.chmod(path, mode)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_key(path)


def test_never_overwrites_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "key"
    first, second = IdentityKey.generate(), IdentityKey.generate()
    save_key(first, path)
    with pytest.raises(KeyFileError):
        save_key(second, path)
    save_key(second, path, overwrite=True)
    assert load_key(path).identity == second.identity
