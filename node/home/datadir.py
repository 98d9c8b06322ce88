"""A community's data directory: the node's key file and its store, side by side.

Layout (mode 0700 directory, owner-only files):

    <data dir>/key.json    the node's identity key (node.home.keyfile), mode 0600
    <data dir>/store.db    the attestation store (node.store), SQLite WAL

We refuse to use a directory that other users can write to or a key file they
can read: the key is the member's identity, and a writable directory would let
another user swap the store or the key under us. Which directory to use (XDG on
Linux) is the configuration's business; this module only checks and opens it.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from node.errors import KeyFileError, StoreError
from node.home.keyfile import INTERACTIVE, KdfCost, load_key, save_key
from node.store import Store
from protocol.identity import IdentityKey

__all__ = ["DataDir"]

KEY_FILE = "key.json"
STORE_FILE = "store.db"


@dataclass(frozen=True, slots=True)
class DataDir:
    """A checked data directory."""

    path: Path

    @classmethod
    def open(cls, path: Path, *, create: bool = True) -> DataDir:
        """Check (and, if `create`, make with mode 0700) the directory at `path`.

        Raises:
            StoreError: it is missing (and `create` is false), not a directory,
                or writable by group or others.
        """
        try:
            if create:
                path.mkdir(mode=0o700, parents=True, exist_ok=True)
            mode = path.stat().st_mode
        except OSError as exc:
            raise StoreError(f"data directory {path}: {exc.strerror}") from exc
        if not stat.S_ISDIR(mode):
            raise StoreError(f"data directory {path} is not a directory")
        if mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise StoreError(
                f"data directory {path} is writable by other users; run: chmod 700 {path}"
            )
        return cls(path)

    @property
    def key_path(self) -> Path:
        """Where the node's key file lives."""
        return self.path / KEY_FILE

    @property
    def store_path(self) -> Path:
        """Where the attestation store lives."""
        return self.path / STORE_FILE

    def load_or_create_key(
        self, *, passphrase: bytes | None = None, cost: KdfCost = INTERACTIVE
    ) -> IdentityKey:
        """The node's key, made (and sealed, with a passphrase) on first use.

        "First use" means a fresh directory: once a store exists, a missing key
        file means the member's identity is gone (deleted, not restored from a
        backup), and silently making another would sign as a stranger over the
        old member's store. We refuse instead (`load_key`).

        Raises:
            KeyFileError: the existing key file is exposed, corrupt, or the
                passphrase is missing or wrong; or the store exists without it.
        """
        if not self.key_path.exists() and not self.store_path.exists():
            save_key(IdentityKey.generate(), self.key_path, passphrase=passphrase, cost=cost)
        return self.load_key(passphrase=passphrase)

    def load_key(self, *, passphrase: bytes | None = None) -> IdentityKey:
        """The node's existing key; never makes one (only `trustnode init` does).

        Raises:
            KeyFileError: missing (with what to do), exposed, corrupt, or the
                passphrase is missing or wrong.
        """
        if not self.key_path.exists():
            raise KeyFileError(
                f"no key file {self.key_path}: this member's identity is missing; restore "
                "key.json from your backup (only `trustnode init` makes a new identity)"
            )
        return load_key(self.key_path, passphrase=passphrase)

    def open_store(self) -> Store:
        """Open (creating if needed) the store; the file is made owner-only."""
        store = Store.open(self.store_path)
        try:
            os.chmod(self.store_path, 0o600)
        except OSError as exc:
            store.close()
            raise StoreError(f"cannot restrict {self.store_path}: {exc.strerror}") from exc
        return store
