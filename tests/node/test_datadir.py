"""The data directory: created private, refused when exposed."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import nacl.pwhash
import pytest

from node.errors import KeyFileError, StoreError
from node.home.datadir import DataDir
from node.home.keyfile import KdfCost, PassphraseRequiredError

FAST = KdfCost(
    opslimit=nacl.pwhash.argon2id.OPSLIMIT_MIN, memlimit=nacl.pwhash.argon2id.MEMLIMIT_MIN
)


def test_created_private_with_key_and_store(tmp_path: Path) -> None:
    data = DataDir.open(tmp_path / "community")
    assert stat.S_IMODE(data.path.stat().st_mode) == 0o700
    key = data.load_or_create_key()
    assert data.load_or_create_key().identity == key.identity
    with data.open_store() as store:
        assert store.statistics().attestations == 0
    assert stat.S_IMODE(data.store_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(data.key_path.stat().st_mode) == 0o600


def test_sealed_key_needs_its_passphrase(tmp_path: Path) -> None:
    data = DataDir.open(tmp_path / "c")
    key = data.load_or_create_key(passphrase=b"pw", cost=FAST)
    assert data.load_or_create_key(passphrase=b"pw", cost=FAST).identity == key.identity
    with pytest.raises(PassphraseRequiredError):
        data.load_or_create_key()


def test_exposed_directory_or_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c"
    data = DataDir.open(path)
    data.load_or_create_key()
    os.chmod(data.key_path, 0o644)
    with pytest.raises(KeyFileError):
        data.load_or_create_key()
    os.chmod(path, 0o777)
    with pytest.raises(StoreError, match="chmod 700"):
        DataDir.open(path)


def test_missing_or_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        DataDir.open(tmp_path / "absent", create=False)
    file = tmp_path / "file"
    file.write_text("x")
    with pytest.raises(StoreError):
        DataDir.open(file)


def test_a_store_without_its_key_is_refused_not_given_a_new_identity(tmp_path: Path) -> None:
    data = DataDir.open(tmp_path / "c")
    data.load_or_create_key()
    data.open_store().close()
    data.key_path.unlink()
    with pytest.raises(KeyFileError, match="restore"):
        data.load_or_create_key()
    with pytest.raises(KeyFileError, match="restore"):
        data.load_key()
    assert not data.key_path.exists()
