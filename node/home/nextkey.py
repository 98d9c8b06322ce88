"""The node's next root key on disk (SPEC §17): kept, staged and promoted crash-safely.

Pre-rotation only protects a member whose committed next key survives: lose
it and the chain can only move by recovery (§18); publish a rotation whose
key is not on disk and the member is locked out of their own identity. So
the files move in one order, each write atomic and durable (`save_key`:
temporary file, fsync, rename, fsync of the directory) before the next step:

1. `next-key.json` is written **before** the commitment naming it is signed
   (`ensure_next`); a crash in between leaves a next key nobody knows of,
   which the next `key commit` reuses (it never makes a second one: two
   commitments dispute the chain, §17.2).
2. At a rotation, the key after next is written to `next-key.staged.json`
   **before** the rotation (which commits to it) is signed and stored.
3. Only after the rotation is in the store: `key.json` := the next key, then
   `next-key.json` := the staged key, then the staged file goes.

`settle` finishes whatever a kill -9 interrupted, from the files and the one
fact the store knows (whether the rotation was stored): every state between
two steps leads to exactly one outcome, and no key a stored statement names
is ever deleted. Files are sealed with the node's passphrase when it has one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from node.errors import KeyFileError
from node.home.datadir import DataDir
from node.home.keyfile import INTERACTIVE, KdfCost, load_key, save_key, sync_directory
from protocol.identity import IdentityId, IdentityKey

__all__ = ["NEXT_KEY_FILE", "STAGED_KEY_FILE", "KeyFiles"]

NEXT_KEY_FILE = "next-key.json"
STAGED_KEY_FILE = "next-key.staged.json"


@dataclass(frozen=True, slots=True)
class KeyFiles:
    """The current, next and staged key files of one data directory."""

    data: DataDir
    passphrase: bytes | None = None
    cost: KdfCost = INTERACTIVE

    @property
    def next_path(self) -> os.PathLike[str]:
        """Where the committed next key lives (mode 0600, like key.json)."""
        return self.data.path / NEXT_KEY_FILE

    def current(self) -> IdentityKey:
        """The key the node signs with."""
        return self.data.load_key(passphrase=self.passphrase)

    def next(self) -> IdentityKey | None:
        """The next key, if one was made."""
        path = self.data.path / NEXT_KEY_FILE
        return load_key(path, passphrase=self.passphrase) if path.exists() else None

    def staged(self) -> IdentityKey | None:
        """The key after next, while a rotation is under way."""
        path = self.data.path / STAGED_KEY_FILE
        return load_key(path, passphrase=self.passphrase) if path.exists() else None

    def ensure_next(self) -> IdentityKey:
        """The next key: the one on disk, else a new one, durable before it is returned."""
        found = self.next()
        if found is not None:
            return found
        made = IdentityKey.generate()
        self._save(made, NEXT_KEY_FILE)
        return made

    def restore_next(self, key: IdentityKey) -> None:
        """Keep `key` (from its paper backup) as the next key, protected as key.json is.

        The next key can rotate the identity, so it is never written in clear
        beside a sealed key.json: with one there, our passphrase must open it
        (then the next key is sealed with it). It never replaces a next key
        on disk, which may be the one a stored commitment names.

        Raises:
            KeyFileError: a next key is kept already, or key.json is unreadable.
            PassphraseRequiredError: key.json is sealed and we have no passphrase.
            WrongPassphraseError: our passphrase does not open key.json.
        """
        path = self.data.path / NEXT_KEY_FILE
        if path.exists():
            raise KeyFileError(f"{path} exists; refusing to overwrite a key")
        if self.data.key_path.exists():
            self.current()  # the passphrase check: it opens key.json, or it raises
        save_key(key, path, passphrase=self.passphrase, cost=self.cost)

    def stage(self) -> IdentityKey:
        """The key after next: the staged one on disk, else a new one, durable first."""
        found = self.staged()
        if found is not None:
            return found
        made = IdentityKey.generate()
        self._save(made, STAGED_KEY_FILE)
        return made

    def promote(self) -> IdentityKey:
        """After the rotation is stored: next becomes current, staged becomes next.

        Each step is durable before the next; `settle` resumes from any of them.
        """
        nxt, staged = self.next(), self.staged()
        assert nxt is not None  # rotate() wrote it before committing to it
        assert staged is not None  # ... and staged this one before the rotation
        if self.current().identity != nxt.identity:
            self._save(nxt, self.data.key_path.name)
        self._save(staged, NEXT_KEY_FILE)
        self._drop(STAGED_KEY_FILE)
        return nxt

    def settle(self, rotated: Callable[[IdentityId, IdentityId], bool]) -> IdentityKey:
        """Finish (or forget) a rotation a crash interrupted; returns the key to sign with.

        `rotated(new, after)` says whether the store holds a rotation by `new`
        committing to `after`. With a staged key on disk: the current key equal
        to the next one means step 3 stopped half-way (finish it); a stored
        rotation by the next key committing to the staged one means step 3
        never began (do it); neither means the rotation was never stored, so
        the staged key is named nowhere (drop it). The rotation need not name
        the current key: `rotate --lost` names the lost one.
        """
        current, nxt, staged = self.current(), self.next(), self.staged()
        if staged is None or nxt is None:
            return current
        if nxt.identity == current.identity or rotated(nxt.identity, staged.identity):
            return self.promote()
        self._drop(STAGED_KEY_FILE)
        return current

    def _save(self, key: IdentityKey, name: str) -> None:
        save_key(key, self.data.path / name, passphrase=self.passphrase, cost=self.cost,
                 overwrite=True)  # fmt: skip

    def _drop(self, name: str) -> None:
        path = self.data.path / name
        if path.exists():
            path.unlink()
            sync_directory(self.data.path)
