"""A node rotates its own root key (SPEC §17): commit to the next key, then reveal it.

`Node` delegates here (`node.keys`). The secrets live in the data directory
(`node.home.nextkey.KeyFiles`); this module decides the order in which they
and the statements naming them become durable, so that a kill -9 at any
point leaves a state `KeyFiles.settle` turns into exactly one outcome:

* **commit**: the next key is on disk (fsynced) before the commitment naming
  its digest is signed; re-running reuses it, and a second, different
  commitment is refused (two commitments dispute the chain, §17.2);
* **rotate**: the key after next is on disk before the rotation committing to
  it is signed by the next key and stored; only then do the files move
  (`KeyFiles.promote`) and the node switch the key it signs with.

The node's transport identity and source tree keep the old key until the
next start (they are read when the network starts), and so do the invites
it makes meanwhile (a joiner presents a single-use invite to the identity its
handshake meets); every statement the node signs from the rotation on is
signed by the new key, and every node reads both keys as one member.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import trio

from node.errors import RequestError
from node.home.nextkey import KeyFiles
from node.store import AttestationStore, IngestReport, Outcome
from protocol.attestation import Attestation, AttestationBody, sign_attestation
from protocol.devices import DeviceBook
from protocol.identity import IdentityId, IdentityKey, encode_identity_text
from protocol.statement import Certify, Statement
from protocol.succession import (
    COMMIT_CLAIM,
    ROTATE_CLAIM,
    IdentityBook,
    commit_statement,
    next_key_digest,
    rotation_statement,
)

__all__ = ["KeyRotation", "RotationReport", "commitments_of", "has_rotation"]

T = TypeVar("T")


class _StoreRunner(Protocol):
    async def run(self, operation: Callable[[AttestationStore], T]) -> T: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class RotationReport:
    """Where this node's key stands: the key, the committed next key, and the statement."""

    key: IdentityId
    next_key: IdentityId | None  # on disk (None: never made)
    committed: bool  # the store holds exactly one commitment, to `next_key`
    statement: Attestation | None = None  # what this call published, if anything


def commitments_of(bindings: Sequence[Attestation], key: IdentityId) -> set[bytes]:
    """The digests `key` committed to (key:next statements and rotations it signed)."""
    found: set[bytes] = set()
    for attestation in bindings:
        statement = attestation.statement
        if attestation.issuer != key or not isinstance(statement, Certify):
            continue
        if statement.claim == COMMIT_CLAIM:
            found.add(bytes(statement.subject))
        elif statement.claim == ROTATE_CLAIM and statement.commitment is not None:
            found.add(statement.commitment)
    return found


def has_rotation(bindings: Sequence[Attestation], new: IdentityId, after: IdentityId) -> bool:
    """Whether a rotation signed by `new` committing to `after` is among `bindings`.

    Whichever key it names (this node's, or a lost one: `rotate --lost`): what a
    restart must know is whether a stored statement names the staged key.
    """
    digest = next_key_digest(after)
    return any(
        a.issuer == new and isinstance(s := a.statement, Certify)
        and s.claim == ROTATE_CLAIM and s.commitment == digest
        for a in bindings
    )  # fmt: skip


class KeyRotation:
    """Commit and rotate this node's key (see the module doc)."""

    def __init__(
        self,
        *,
        files: KeyFiles | None,
        key: Callable[[], IdentityKey],
        store: _StoreRunner,
        issue: Callable[[Statement], Awaitable[Attestation]],
        ingest: Callable[[Sequence[bytes]], Awaitable[IngestReport]],
        replace_key: Callable[[IdentityKey], None],
        clock: Callable[[], int],
        retire_ticket: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._files = files
        self._key = key
        self._store = store
        self._issue = issue
        self._ingest = ingest
        self._replace_key = replace_key
        self._clock = clock
        # After a lost key's rotation: our invite ticket names a key we no longer prove.
        self._retire_ticket = retire_ticket
        self._lock = trio.Lock()  # one commit or rotation at a time

    def _need_files(self) -> KeyFiles:
        if self._files is None:
            raise RequestError("unavailable", "this node keeps no key files (in memory)")
        return self._files

    async def _commitments(self, key: IdentityId) -> set[bytes]:
        """`key`'s commitments; refuses a device key (only roots rotate, SPEC §17.2)."""
        bindings = await self._store.run(lambda s: s.key_bindings())
        devices = DeviceBook()
        for attestation in bindings:
            devices.add(attestation)
        if devices.root_of(key) is not None:
            raise RequestError("bad_value", "a device key does not rotate: its root key does")
        return commitments_of(bindings, key)

    async def _refuse_rotated(self, old: IdentityId) -> None:
        """Refuse to rotate a key a rotation or a recovery succeeded already (§17.2, §18.3).

        Rotating it again would sign a second rotation: by the same next key, a
        second commitment of that key (what `commit` refuses: it disputes the
        chain); after a recovery, a rotation that does not count, and this node
        would then sign with a key that speaks for no one.
        """
        bindings = await self._store.run(lambda s: s.key_bindings())
        book = IdentityBook(now_ms=self._clock())
        for attestation in bindings:
            book.add(attestation)
        found = book.successor(old)
        if found is not None:
            raise RequestError(
                "conflict",
                f"{encode_identity_text(old)} was already rotated to "
                f"{encode_identity_text(found[0])}: a second rotation would not count "
                "(if this node made that one and stopped half-way, restart it: the start "
                "finishes it); without that key's own next key, recover with custodians "
                "(SPEC §18)",
            )

    async def report(self) -> RotationReport:
        """This node's key, its next key on disk and whether it is the one committed."""
        files = self._need_files()
        key = self._key().identity
        nxt = await trio.to_thread.run_sync(files.next)
        committed = await self._commitments(key)
        ok = nxt is not None and committed == {next_key_digest(nxt.identity)}
        return RotationReport(key=key, next_key=None if nxt is None else nxt.identity,
                              committed=ok)  # fmt: skip

    async def commit(self) -> RotationReport:
        """Make (or reuse) the next key and publish the commitment to it, once.

        Raises:
            RequestError: `conflict` when the key already committed to another
                next key (a second commitment would dispute the chain).
        """
        files = self._need_files()
        async with self._lock:
            key = self._key().identity
            nxt = await trio.to_thread.run_sync(files.ensure_next)  # durable first
            digest = next_key_digest(nxt.identity)
            committed = await self._commitments(key)
            if committed - {digest}:
                raise RequestError(
                    "conflict",
                    "this key already committed to another next key; a second commitment "
                    "would dispute the chain (SPEC §17.2): recover with custodians instead",
                )
            made = (
                None if digest in committed else await self._issue(commit_statement(nxt.identity))
            )
            return RotationReport(key=key, next_key=nxt.identity, committed=True, statement=made)

    async def rotate(self, *, lost: IdentityId | None = None) -> RotationReport:
        """Reveal the next key: it signs the rotation, commits to a new one, and signs from now.

        `lost` is for a member whose machine, and current key, are gone: on a
        new node (a fresh key of its own, the community's statements synced or
        imported) with the paper next key restored (`restore --next`), the
        next key rotates `lost` instead of this node's key. The fresh key is
        then replaced, so it should not have signed anything that matters.

        Raises:
            RequestError: `conflict` when there is no next key, or the store does
                not hold exactly one commitment of the key rotated, naming it, or
                that key was rotated (or recovered) already; `bad_value` when
                `lost` is this node's own key.
        """
        files = self._need_files()
        async with self._lock:
            own = self._key().identity
            if lost == own:
                raise RequestError("bad_value", "that is this node's key: rotate without --lost")
            old = own if lost is None else lost
            nxt = await trio.to_thread.run_sync(files.next)
            committed = await self._commitments(old)
            if nxt is None or committed != {next_key_digest(nxt.identity)}:
                raise RequestError("conflict", _why_not(nxt is None, committed, lost))
            await self._refuse_rotated(old)
            after = await trio.to_thread.run_sync(files.stage)  # durable before it is named
            body = AttestationBody(
                issuer=nxt.identity, issued_at_ms=self._clock(),
                statement=rotation_statement(old, after.identity),
            )  # fmt: skip
            rotation = sign_attestation(body, nxt)
            report = await self._ingest([rotation.data])  # committed to the store, then pushed
            if report.items[0].outcome not in (Outcome.NEW, Outcome.DUPLICATE):
                raise RequestError("refused", f"the store refused the rotation: {report.items[0]}")
            await trio.to_thread.run_sync(files.promote)
            self._replace_key(nxt)
            if lost is not None and self._retire_ticket is not None:
                await self._retire_ticket()
            return RotationReport(key=nxt.identity, next_key=after.identity, committed=True,
                                  statement=rotation)  # fmt: skip


def _why_not(no_next_key: bool, committed: set[bytes], lost: IdentityId | None) -> str:
    """Why a rotation would not count, in the member's words."""
    if lost is not None and not committed:
        return (
            "this node's store holds no commitment of the lost key: sync with the community "
            "(or import an export) first; without one, only custodians can recover it (SPEC §18)"
        )
    if not committed:
        return "no next key committed to (run `trustnode key commit` first)"
    if no_next_key:
        return "no next key kept here (restore it: trustnode restore --next)"
    return (
        "the published commitment does not name exactly the next key kept here: a rotation "
        "would not count (SPEC §17.2)"
    )
