"""The inviter's book of single-use invites (`invites.json`, SPEC §12.2) and the
atomic JSON files the invite desk keeps.

Each write is atomic (a temporary file, fsync, rename, fsync of the folder) and
happens before the step it records is acknowledged, so a kill -9 never forgets
an invite it handed out or a redemption it accepted.

The book stays small: an invite *settles* when it is redeemed (bound to its
joiner) or expires unused, and `KEEP_SETTLED_MS` (30 days) later it is
forgotten, at the next write. Until then a late `redeem` is still answered as
SPEC §12.2 says (`invite_used`, `invite_expired`, or welcome for its joiner);
after, it is a nonce we never made: ignored, granting nothing. So the joiner's
admission (no unvouched quota at the inviter's node) lasts 30 days after the
redemption, until the inviter's next start; by then someone should vouch.
Unused invites that never expire do not settle: `MAX_INVITES` bounds them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from node.errors import RequestError, StoreError
from protocol.errors import DecodeError
from protocol.identity import IdentityId, decode_identity_text, encode_identity_text
from protocol.invite import IssuedInvite

__all__ = ["INVITES_FILE", "KEEP_SETTLED_MS", "MAX_INVITES", "InviteBook", "read_document",
           "write_atomically"]  # fmt: skip

INVITES_FILE = "invites.json"
KEEP_SETTLED_MS = 30 * 86_400_000
# Far more than a person hands out (each is a code given to someone), far less than
# the 16 MiB a book may take on disk (about 150 bytes a record).
MAX_INVITES = 10_000
_BOOK_FORMAT = "trustnode-invites"
_MAX_FILE_BYTES = 16 << 20


def write_atomically(path: Path, document: object) -> None:
    """Write `document` as JSON to `path` (mode 0600), whole or not at all, durably."""
    data = json.dumps(document, indent=2, sort_keys=True).encode("utf-8") + b"\n"
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a crash
    finally:
        os.close(directory)


def read_document(path: Path, what: str) -> object | None:
    """The JSON document at `path` (None: there is none).

    Raises:
        StoreError: larger than 16 MiB, or not JSON.
    """
    try:
        with path.open("rb") as file:
            data = file.read(_MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return None
    if len(data) > _MAX_FILE_BYTES:
        raise StoreError(f"{path} is too large for {what}")
    try:
        document: object = json.loads(data)
    except ValueError as exc:
        raise StoreError(f"{path} is not {what}: {exc}") from None
    return document


class InviteBook:
    """The single-use invites this node made, by nonce (`path` None: in memory)."""

    def __init__(
        self, path: Path | None, records: dict[bytes, IssuedInvite] | None = None,
        used_at_ms: dict[bytes, int] | None = None,
    ) -> None:  # fmt: skip
        self.path = path
        self._records = dict(records or {})
        self._used_at_ms = dict(used_at_ms or {})  # when each bound record was bound

    @classmethod
    def load(cls, path: Path) -> InviteBook:
        """Read `path` (missing: no invites made yet).

        Raises:
            StoreError: the file is not an invite book we wrote (we never guess).
        """
        document = read_document(path, "an invite book")
        if document is None:
            return cls(path)
        records, used_at_ms = {}, {}
        try:
            if not isinstance(document, dict) or document.get("format") != _BOOK_FORMAT:
                raise ValueError("not an invite book")
            for entry in document["invites"]:
                record = _record_of(entry)
                records[record.nonce] = record
                used = entry.get("used_at_ms")  # absent in books written before pruning
                if type(used) is int and record.used_by is not None:
                    used_at_ms[record.nonce] = used
                elif used is not None:
                    raise ValueError("a bad redemption time")
        except (ValueError, KeyError, TypeError, AttributeError, DecodeError) as exc:
            raise StoreError(f"{path} is not a valid invite book: {exc}") from None
        return cls(path, records, used_at_ms)

    def __len__(self) -> int:
        return len(self._records)

    def get(self, nonce: bytes) -> IssuedInvite | None:
        """The record of the invite with `nonce`, None if this node never made it (or
        forgot it, `KEEP_SETTLED_MS` after it settled)."""
        return self._records.get(nonce)

    def put(self, record: IssuedInvite, *, now_ms: int) -> None:
        """Record `record` (a new invite, or its redemption at `now_ms`), durably before
        returning; the write leaves out the invites settled `KEEP_SETTLED_MS` ago.

        Raises:
            RequestError: `conflict`, a new invite while `MAX_INVITES` are kept.
        """
        self._forget_settled(now_ms)
        if record.nonce not in self._records and len(self._records) >= MAX_INVITES:
            raise RequestError(
                "conflict",
                f"this node keeps {MAX_INVITES} single-use invites not yet used: "
                "make one that expires, or a multi-use invite",
            )
        if record.used_by is None:
            self._used_at_ms.pop(record.nonce, None)
        else:
            self._used_at_ms.setdefault(record.nonce, now_ms)
        self._records[record.nonce] = record
        self._save()

    def forget_settled(self, now_ms: int) -> int:
        """Forget (durably) the invites settled `KEEP_SETTLED_MS` before `now_ms`; how many."""
        forgotten = self._forget_settled(now_ms)
        if forgotten:
            self._save()
        return forgotten

    def redeemed_by(self) -> frozenset[IdentityId]:
        """The identities our invites are bound to."""
        return frozenset(r.used_by for r in self._records.values() if r.used_by is not None)

    def _settled_at_ms(self, record: IssuedInvite) -> int | None:
        if record.used_by is not None:
            return self._used_at_ms.get(record.nonce)
        return record.expires_at_ms

    def _forget_settled(self, now_ms: int) -> int:
        for record in self._records.values():
            if record.used_by is not None:  # bound in a book without times: from now on
                self._used_at_ms.setdefault(record.nonce, now_ms)
        settled = [
            nonce for nonce, record in self._records.items()
            if (at := self._settled_at_ms(record)) is not None and now_ms - at >= KEEP_SETTLED_MS
        ]  # fmt: skip
        for nonce in settled:
            del self._records[nonce]
            self._used_at_ms.pop(nonce, None)
        return len(settled)

    def _save(self) -> None:
        if self.path is None:
            return
        entries = [
            {
                "nonce": r.nonce.hex(),
                "expires_at_ms": r.expires_at_ms,
                "used_by": None if r.used_by is None else encode_identity_text(r.used_by),
                "used_at_ms": self._used_at_ms.get(r.nonce),
            }
            for r in sorted(self._records.values(), key=lambda r: r.nonce)
        ]
        write_atomically(self.path, {"format": _BOOK_FORMAT, "version": 1, "invites": entries})


def _record_of(entry: dict[str, object]) -> IssuedInvite:
    nonce = bytes.fromhex(str(entry["nonce"]))
    expires = entry["expires_at_ms"]
    used = entry["used_by"]
    if len(nonce) != 16 or not (expires is None or type(expires) is int):
        raise ValueError("a bad invite record")
    if used is not None and not isinstance(used, str):
        raise ValueError("a bad joiner")
    return IssuedInvite(
        nonce=nonce,
        expires_at_ms=expires,
        used_by=None if used is None else decode_identity_text(used),
    )
