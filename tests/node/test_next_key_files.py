"""The next-key files survive a crash between any two steps (node.home.nextkey).

Each test builds the files as a kill -9 between two steps of `rotate` would
leave them, then `settle`s, as the next start does: the outcome is the one
the store's contents call for, and no key a stored statement names is lost.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import nacl.pwhash
import pytest

from node.errors import KeyFileError
from node.home.datadir import DataDir
from node.home.keyfile import (
    KdfCost,
    PassphraseRequiredError,
    WrongPassphraseError,
    save_key,
    sealing_of,
)
from node.home.nextkey import NEXT_KEY_FILE, STAGED_KEY_FILE, KeyFiles
from protocol.identity import IdentityId, IdentityKey


def _files(tmp_path: Path) -> tuple[KeyFiles, IdentityKey]:
    data = DataDir.open(tmp_path / "d")
    current = IdentityKey.generate()
    save_key(current, data.key_path)
    return KeyFiles(data), current


def _never(new: IdentityId, after: IdentityId) -> bool:
    return False


def test_the_next_key_is_made_once_and_kept_owner_only(tmp_path: Path) -> None:
    files, _ = _files(tmp_path)
    made = files.ensure_next()
    assert files.ensure_next().identity == made.identity  # a rerun never makes a second
    mode = os.stat(files.data.path / NEXT_KEY_FILE).st_mode
    assert stat.S_IMODE(mode) == 0o600


def test_a_rotation_never_stored_forgets_only_the_staged_key(tmp_path: Path) -> None:
    files, current = _files(tmp_path)
    nxt = files.ensure_next()
    files.stage()  # crash: staged, the rotation never reached the store
    assert files.settle(_never).identity == current.identity
    assert files.staged() is None
    assert files.next() is not None
    assert files.next().identity == nxt.identity  # type: ignore[union-attr]


def test_a_stored_rotation_is_finished_at_the_next_start(tmp_path: Path) -> None:
    files, _ = _files(tmp_path)
    nxt = files.ensure_next()
    after = files.stage()
    stored = {(nxt.identity, after.identity)}  # crash: stored, files not moved yet
    key = files.settle(lambda new, staged: (new, staged) in stored)
    assert key.identity == nxt.identity
    assert files.current().identity == nxt.identity
    assert files.next().identity == after.identity  # type: ignore[union-attr]
    assert files.staged() is None


def test_a_half_moved_rotation_is_finished(tmp_path: Path) -> None:
    files, _ = _files(tmp_path)
    nxt = files.ensure_next()
    after = files.stage()
    save_key(nxt, files.data.key_path, overwrite=True)  # crash: key.json moved, next not
    assert files.settle(_never).identity == nxt.identity
    assert files.next().identity == after.identity  # type: ignore[union-attr]
    assert files.staged() is None


def test_a_moved_rotation_with_its_staged_file_left_is_tidied(tmp_path: Path) -> None:
    files, _ = _files(tmp_path)
    nxt = files.ensure_next()
    after = files.stage()
    save_key(nxt, files.data.key_path, overwrite=True)
    save_key(after, files.data.path / NEXT_KEY_FILE, overwrite=True)  # crash before unlink
    assert files.settle(_never).identity == nxt.identity
    assert files.next().identity == after.identity  # type: ignore[union-attr]
    assert not (files.data.path / STAGED_KEY_FILE).exists()


@pytest.mark.parametrize("passphrase", [b"correct horse"])
def test_next_keys_are_sealed_with_the_nodes_passphrase(tmp_path: Path, passphrase: bytes) -> None:
    data = DataDir.open(tmp_path / "d")
    save_key(IdentityKey.generate(), data.key_path, passphrase=passphrase)
    files = KeyFiles(data, passphrase)
    made = files.ensure_next()
    assert b'"seed_hex"' not in (data.path / NEXT_KEY_FILE).read_bytes()
    assert KeyFiles(data, passphrase).next().identity == made.identity  # type: ignore[union-attr]


FAST = KdfCost(
    opslimit=nacl.pwhash.argon2id.OPSLIMIT_MIN, memlimit=nacl.pwhash.argon2id.MEMLIMIT_MIN
)


def test_a_restored_next_key_is_sealed_as_key_json_is(tmp_path: Path) -> None:
    data = DataDir.open(tmp_path / "d")
    save_key(IdentityKey.generate(), data.key_path, passphrase=b"pw", cost=FAST)
    assert sealing_of(data.key_path) == FAST
    paper = IdentityKey.generate()
    KeyFiles(data, b"pw", FAST).restore_next(paper)
    path = data.path / NEXT_KEY_FILE
    assert b'"seed_hex"' not in path.read_bytes()
    assert sealing_of(path) == FAST
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert KeyFiles(data, b"pw").next().identity == paper.identity  # type: ignore[union-attr]
    with pytest.raises(PassphraseRequiredError):
        KeyFiles(data).next()


def test_a_restored_next_key_needs_the_passphrase_that_opens_key_json(tmp_path: Path) -> None:
    data = DataDir.open(tmp_path / "d")
    save_key(IdentityKey.generate(), data.key_path, passphrase=b"pw", cost=FAST)
    with pytest.raises(PassphraseRequiredError):
        KeyFiles(data).restore_next(IdentityKey.generate())  # would be written in clear
    with pytest.raises(WrongPassphraseError):
        KeyFiles(data, b"typo", FAST).restore_next(IdentityKey.generate())
    assert not (data.path / NEXT_KEY_FILE).exists()


def test_a_restored_next_key_never_replaces_the_one_kept(tmp_path: Path) -> None:
    files, _ = _files(tmp_path)
    kept = files.ensure_next()
    with pytest.raises(KeyFileError, match="refusing"):
        files.restore_next(IdentityKey.generate())
    assert files.next().identity == kept.identity  # type: ignore[union-attr]
    assert sealing_of(files.data.key_path) is None


def test_a_stored_rotation_of_a_lost_key_is_finished_at_the_next_start(tmp_path: Path) -> None:
    """`key rotate --lost` killed after the rotation was stored, before the files moved:
    the rotation names the lost key, not this node's fresh one. The next start must
    still finish it (the stored rotation commits to the staged key: dropping that key
    would leave the member's next key unknowable, and the node signing as a stranger)."""
    import time

    from node.service.opening import _settled_key
    from protocol.attestation import AttestationBody, sign_attestation
    from protocol.succession import commit_statement, rotation_statement

    files, fresh = _files(tmp_path)
    lost, nxt = IdentityKey.generate(), IdentityKey.generate()
    files.restore_next(nxt)
    after = files.stage()
    now = int(time.time() * 1000)
    signed = [
        sign_attestation(AttestationBody(issuer=k.identity, issued_at_ms=now - d, statement=s), k)
        for k, s, d in (
            (lost, commit_statement(nxt.identity), 5000),
            (nxt, rotation_statement(lost.identity, after.identity), 1000),
        )
    ]
    with files.data.open_store() as store:
        store.apply(signed, now_ms=now)
        key = _settled_key(files, store)
    assert key.identity == nxt.identity
    assert files.current().identity == nxt.identity
    assert files.next().identity == after.identity  # type: ignore[union-attr]
    assert files.staged() is None
    assert fresh.identity != nxt.identity


def test_a_staged_key_no_stored_rotation_commits_to_is_dropped(tmp_path: Path) -> None:
    """A rotation by the next key committing to another key (not the staged one) does
    not keep the staged key: the rotation that would have named it was never stored."""
    import time

    from node.service.opening import _settled_key
    from protocol.attestation import AttestationBody, sign_attestation
    from protocol.succession import rotation_statement

    files, current = _files(tmp_path)
    lost, nxt, other = IdentityKey.generate(), IdentityKey.generate(), IdentityKey.generate()
    files.restore_next(nxt)
    files.stage()
    now = int(time.time() * 1000)
    body = AttestationBody(
        issuer=nxt.identity, issued_at_ms=now,
        statement=rotation_statement(lost.identity, other.identity),
    )  # fmt: skip
    with files.data.open_store() as store:
        store.apply([sign_attestation(body, nxt)], now_ms=now)
        assert _settled_key(files, store).identity == current.identity
    assert files.staged() is None


@pytest.mark.parametrize("opslimit", ["2", [2], None, {"n": 2}, 2.0, True])
def test_a_hostile_sealing_is_a_key_file_error(tmp_path: Path, opslimit: object) -> None:
    """`restore --next` reads key.json's sealing before asking the passphrase: a file
    whose KDF cost is not an integer is refused as a key file, not a crash."""
    import json

    path = tmp_path / "key.json"
    sealed = {"kdf": "argon2id", "opslimit": opslimit, "memlimit": 2**16}
    path.write_text(json.dumps({"format": "trustnode-key", "version": 1, "sealed": sealed}))
    path.chmod(0o600)
    with pytest.raises(KeyFileError):
        sealing_of(path)


def test_a_next_key_written_while_restore_seals_is_never_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`restore --next` checks no next key is kept, then seals (Argon2: a while), then
    writes. A next key the daemon makes meanwhile (`key commit`) may be the one a
    commitment names: the write must refuse, not replace it."""
    from node.home import keyfile

    data = DataDir.open(tmp_path / "d")
    save_key(IdentityKey.generate(), data.key_path, passphrase=b"pw", cost=FAST)
    files = KeyFiles(data, b"pw", FAST)
    made_meanwhile = IdentityKey.generate()
    seal = keyfile._seal

    def slow_seal(seed: bytes, passphrase: bytes, cost: KdfCost) -> dict[str, object]:
        if seed != made_meanwhile.seed:  # the restore's sealing: the daemon writes meanwhile
            save_key(made_meanwhile, data.path / NEXT_KEY_FILE, passphrase=b"pw", cost=FAST)
        return seal(seed, passphrase, cost)

    monkeypatch.setattr(keyfile, "_seal", slow_seal)
    with pytest.raises(KeyFileError, match="refusing to overwrite"):
        files.restore_next(IdentityKey.generate())
    assert files.next().identity == made_meanwhile.identity  # type: ignore[union-attr]
    assert not list(data.path.glob(".*.tmp"))
