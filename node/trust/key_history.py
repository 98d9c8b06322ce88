"""What `explain` says about keys: succession, devices, vetoed recoveries (SPEC §16-§18).

The engine reasons on members (`node.trust.identity`), so a route in an
explanation reads "Alice -> Bob" even when the vouch that carries it was
signed by Alice's phone or names the key Bob had before he rotated. People
asking "why" deserve to see that: a vouch for an old key still counting is
exactly what succession promises, and a recovery that a veto blocked is
exactly what they need to know when a member's standing did *not* move to a
new key. This module reads it off the engine's heads and the identity book:

* `KeyNote`: one vouch on a listed edge whose signer or subject is another key
  of its member (a device, an earlier root of the chain);
* `KeyStep`: one succession of the subject's chain (rotation or recovery);
* `RecoveryNote`: every recovery naming a key of the subject's chain that a
  custodian of the designation in force signed, with its state (counts, waiting,
  incomplete, vetoed, lost to another).

Pure and read-only: nothing here changes what any score is.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from node.trust.identity import IdentityLayer
from protocol.attestation import Attestation
from protocol.identity import IdentityId
from protocol.recovery import Recovery
from protocol.statement import GENERAL_CONTEXT, Kind, Slot, SlotId
from protocol.succession import IdentityBook

__all__ = [
    "KeyHistory",
    "KeyNote",
    "KeyRole",
    "KeyStep",
    "RecoveryNote",
    "RecoveryState",
    "key_history",
    "role_of",
]


class KeyRole(enum.Enum):
    """What a key is to its member (the value is the stable API code)."""

    CURRENT = "current"  # the member's root key now
    PREVIOUS = "previous"  # an earlier root key of the member's chain
    DEVICE = "device"  # a device bound to a root key of the chain


class RecoveryState(enum.Enum):
    """Where a recovery stands at the engine's clock (the value is the API code)."""

    COUNTS = "counts"  # the new key is the old one's successor
    WAITING = "waiting"  # complete; the waiting period is not over
    INCOMPLETE = "incomplete"  # fewer than k custodians (or no designation in force)
    VETOED = "vetoed"  # a key of the member vetoed it
    OTHER = "other"  # effective, but another recovery or rotation of the key won


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyNote:
    """A vouch behind a listed edge, signed by or naming another key of its member."""

    issuer: IdentityId  # the member who vouches
    subject: IdentityId  # the member vouched for
    signed_by: IdentityId  # the key that signed it
    signer_role: KeyRole
    about: IdentityId  # the key it names
    about_role: KeyRole
    issued_at_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyStep:
    """One succession in the subject's chain of root keys."""

    old: IdentityId
    new: IdentityId
    at_ms: int  # the rotation's time, or the recovery's effective time
    how: str  # "rotation" | "recovery"
    custodians: tuple[IdentityId, ...] = ()  # a recovery's: whose statements made it


@dataclass(frozen=True, slots=True, kw_only=True)
class RecoveryNote:
    """A recovery naming a key of the subject's chain (signed by a custodian), and where
    it stands."""

    old: IdentityId
    new: IdentityId
    state: RecoveryState
    custodians: tuple[IdentityId, ...]
    k: int | None
    complete_at_ms: int | None
    effective_at_ms: int | None
    vetoed_by: tuple[tuple[IdentityId, int], ...]  # (key, veto's time)


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyHistory:
    """The key side of an explanation; empty for a member with one key and no devices."""

    current: IdentityId | None = None  # the subject's root key now (None: not asked)
    chain: tuple[KeyStep, ...] = ()
    devices: tuple[tuple[IdentityId, int, int | None], ...] = ()  # (device, granted, cut-off)
    recoveries: tuple[RecoveryNote, ...] = ()
    notes: tuple[KeyNote, ...] = ()


def key_history(
    layer: IdentityLayer,
    heads: Mapping[SlotId, Attestation],
    *,
    subject: IdentityId,
    edges: Iterable[tuple[IdentityId, IdentityId]],
    context: str,
) -> KeyHistory:
    """The key history of `subject`, and notes on the vouches behind `edges` (members)."""
    book = layer.book
    chain = book.chain(subject)
    current = chain[-1][0] if chain else subject
    recoveries = _recoveries(book, {key for key, _ in chain})
    return KeyHistory(
        current=current,
        chain=_steps(book, chain, recoveries),
        devices=tuple(d for key, _ in chain for d in book.devices.devices(key)),
        recoveries=tuple(_note(book, r) for r in recoveries),
        notes=tuple(_notes(layer, heads, edges, context)),
    )


def _recoveries(book: IdentityBook, keys: set[IdentityId]) -> list[Recovery]:
    # The book keeps its reading of every recovery until it changes (or the clock
    # crosses a lock or a wait): explaining many members reads them once.
    found = book.recoveries_now()
    # Only those some custodian of the designation in force signed: anyone may sign
    # `key:recover` naming any key, and one no custodian signed can never count. So
    # strangers cannot fill an explanation, and it lists at most n per key.
    return [r for r in found if r.old in keys and r.custodians]


def _steps(
    book: IdentityBook, chain: list[tuple[IdentityId, int | None]], recoveries: list[Recovery]
) -> tuple[KeyStep, ...]:
    steps: list[KeyStep] = []
    for (old, at), (new, _) in itertools.pairwise(chain):
        assert at is not None  # every key but the last was succeeded
        made = [r for r in recoveries if (r.old, r.new, r.effective_at_ms) == (old, new, at)]
        if made and not made[0].vetoed_by:
            steps.append(
                KeyStep(old=old, new=new, at_ms=at, how="recovery", custodians=made[0].custodians)
            )
        else:
            steps.append(KeyStep(old=old, new=new, at_ms=at, how="rotation"))
    return tuple(steps)


def _note(book: IdentityBook, recovery: Recovery) -> RecoveryNote:
    now = book.now_ms
    state = RecoveryState.OTHER
    if recovery.vetoed_by:
        state = RecoveryState.VETOED
    elif recovery.effective_at_ms is None:
        state = RecoveryState.INCOMPLETE
    elif now is not None and recovery.effective_at_ms > now:
        state = RecoveryState.WAITING
    elif book.successor(recovery.old) == (recovery.new, recovery.effective_at_ms):
        state = RecoveryState.COUNTS
    return RecoveryNote(
        old=recovery.old, new=recovery.new, state=state, custodians=recovery.custodians,
        k=recovery.k, complete_at_ms=recovery.complete_at_ms,
        effective_at_ms=recovery.effective_at_ms, vetoed_by=recovery.vetoed_by,
    )  # fmt: skip


def role_of(book: IdentityBook, key: IdentityId) -> KeyRole:
    """What `key` is to its member: a device, its current root, or an earlier root."""
    if book.devices.root_of(key) is not None:
        return KeyRole.DEVICE
    return KeyRole.CURRENT if book.successor(key) is None else KeyRole.PREVIOUS


def _notes(
    layer: IdentityLayer,
    heads: Mapping[SlotId, Attestation],
    edges: Iterable[tuple[IdentityId, IdentityId]],
    context: str,
) -> list[KeyNote]:
    notes: list[KeyNote] = []
    seen: set[tuple[IdentityId, IdentityId]] = set()
    for issuer, subject in edges:
        if (issuer, subject) in seen:
            continue
        seen.add((issuer, subject))
        head = _head(heads, issuer, subject, context)
        if head is None:
            continue
        body = head.envelope.body  # as signed: the engine's head shows members
        signer, about = body.issuer, body.statement.subject
        if not isinstance(about, bytes):
            continue
        # A member's id is its inception key, so "names the member's id" is not
        # "names its current key": roles, not equality, decide what is worth saying.
        signer_role = role_of(layer.book, signer)
        about_role = role_of(layer.book, IdentityId(about))
        if signer_role is KeyRole.CURRENT and about_role is KeyRole.CURRENT:
            continue
        notes.append(KeyNote(
            issuer=issuer, subject=subject, signed_by=signer, signer_role=signer_role,
            about=IdentityId(about), about_role=about_role, issued_at_ms=body.issued_at_ms,
        ))  # fmt: skip
    return notes


def _head(
    heads: Mapping[SlotId, Attestation], issuer: IdentityId, subject: IdentityId, context: str
) -> Attestation | None:
    # A context's edge falls back to the general vouch when there is none of its own.
    for scope in dict.fromkeys((context, GENERAL_CONTEXT)):
        found = heads.get(Slot(issuer=issuer, kind=Kind.TRUST, subject=subject, scope=scope).id)
        if found is not None:
            return found
    return None
