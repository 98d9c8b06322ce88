"""Petnames: my own names for identities, kept in the data directory, never sent.

A petname is the one kind of name nobody else can forge, so it wins over every
other (node.names.resolver). They live in `<data dir>/petnames.json`, written
atomically (a temporary file, fsync, rename), so a crash leaves the old or the
new file, never half of one. Petnames are labels (SPEC §3.4: bounded, NFC, no
control, bidi or format character) and unique per node: a second identity
under the same name, or one that reads alike (a confusable skeleton), is refused.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from node.errors import RequestError, StoreError
from node.names.skeleton import are_confusable
from protocol.errors import DecodeError, FieldError
from protocol.identity import IdentityId, decode_identity_text, encode_identity_text
from protocol.label import MAX_NAME_LABEL_BYTES, MAX_NAME_LABEL_CODE_POINTS, check_label

__all__ = ["PETNAMES_FILE", "PetnameBook", "check_petname"]

PETNAMES_FILE = "petnames.json"
_FORMAT = "trustnode-petnames"
_MAX_FILE_BYTES = 4 * 1024 * 1024  # ample for 10 000 petnames; a bigger file is not ours


def check_petname(name: str) -> None:
    """Refuse a petname that is not a label (SPEC §3.4).

    Raises:
        RequestError: `bad_value`, saying which rule (never echoing the text).
    """
    try:
        limits = {"max_code_points": MAX_NAME_LABEL_CODE_POINTS, "max_bytes": MAX_NAME_LABEL_BYTES}
        check_label(name, "a name", **limits)
    except FieldError as exc:
        raise RequestError("bad_value", str(exc).removeprefix("out_of_range: ")) from None
    if name.startswith("tn_"):  # where an identity is read, tn_ starts an identity
        raise RequestError("bad_value", "a petname cannot start with tn_")


class PetnameBook:
    """The petnames of one node, in memory and in its file (None: memory only)."""

    def __init__(self, path: Path | None, names: Mapping[IdentityId, str] | None = None) -> None:
        self.path = path
        self._names: dict[IdentityId, str] = dict(names or {})
        self.revision = 0  # counts changes: a cached name book of an older one is stale

    @classmethod
    def load(cls, path: Path) -> PetnameBook:
        """Read `path` (missing: no petnames yet).

        Raises:
            StoreError: the file is not a petname file we wrote (we never guess).
        """
        try:
            with path.open("rb") as file:
                data = file.read(_MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            return cls(path)
        if len(data) > _MAX_FILE_BYTES:
            raise StoreError(f"{path} is too large for a petname file")
        try:
            document = json.loads(data)
            if document.get("format") != _FORMAT or not isinstance(document.get("petnames"), dict):
                raise ValueError("not a petname file")
            names = {decode_identity_text(k): v for k, v in document["petnames"].items()}
            for name in names.values():
                check_petname(name)
        except (ValueError, AttributeError, DecodeError, RequestError) as exc:
            raise StoreError(f"{path} is not a valid petname file: {exc}") from None
        return cls(path, names)

    def as_dict(self) -> dict[IdentityId, str]:
        """A copy of every petname."""
        return dict(self._names)

    def holder(self, name: str, *, besides: IdentityId | None = None) -> IdentityId | None:
        """The identity (other than `besides`) whose petname is `name` or reads like it."""
        for who, held in self._names.items():
            if who != besides and (held == name or are_confusable(held, name)):
                return who
        return None

    def set(self, identity: IdentityId, name: str) -> None:
        """Name `identity` `name` (replacing its old petname) and save.

        Raises:
            RequestError: `bad_value` (not a label), `conflict` (another identity
                has that petname, or one that reads alike).
        """
        check_petname(name)
        other = self.holder(name, besides=identity)
        if other is not None:
            raise RequestError(
                "conflict",
                f"{encode_identity_text(other)} already has the petname "
                f"{self._names[other]!r} (or one that reads alike); unname it first",
            )
        self._names[identity] = name
        self.revision += 1
        self._save()

    def remove(self, identity: IdentityId) -> str | None:
        """Forget `identity`'s petname (returned; None if it had none) and save."""
        removed = self._names.pop(identity, None)
        if removed is not None:
            self.revision += 1
            self._save()
        return removed

    def _save(self) -> None:
        if self.path is None:
            return
        document = {
            "format": _FORMAT,
            "version": 1,
            "petnames": {encode_identity_text(k): v for k, v in sorted(self._names.items())},
        }
        data = json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"
        temporary = self.path.with_name(self.path.name + ".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self.path)
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself survives a crash
        finally:
            os.close(directory)
