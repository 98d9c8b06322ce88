"""Pre-committed rotation of root keys, and the whole key-to-member reading (SPEC §17).

KERI-style pre-rotation (Smith, *Key Event Receipt Infrastructure*, 2019): a
root key `K` publishes the digest of its *next* key, `H(next)`; rotating
reveals that key, which signs the rotation and commits to the key after it.
A thief who holds only `K` cannot rotate: the rotation must be signed by a
key whose digest `K` committed to before the theft. Both statements are v1
certifications with reserved claims (§16.1 explains why):

* commitment, by `K`: `certify(subject=H(next), claim="key:next")`;
* rotation, by the new key `N`: `certify(subject=K, claim="key:rotate",
  commitment=H(the key after N) or nil)`.

`IdentityBook` combines this with device keys (`protocol.devices`) into the
one reading every view applies: which member a key speaks for, and whether a
signature dated t by that key counts. Like `DeviceBook`, it is a function of
the set of identity statements, never of their order.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from protocol.attestation import Attestation
from protocol.devices import DeviceBook, is_identity_statement
from protocol.identity import IdentityId
from protocol.recovery import Recovery, RecoveryBook
from protocol.statement import Certify, Trust

__all__ = [
    "COMMIT_CLAIM",
    "ROTATE_CLAIM",
    "IdentityBook",
    "commit_statement",
    "member_trust_heads",
    "next_key_digest",
    "rotation_statement",
]

COMMIT_CLAIM = "key:next"
ROTATE_CLAIM = "key:rotate"
_NEXT_KEY_DOMAIN = b"trustnode/next-key/v1\x00"
_MAX_CHAIN = 1024  # rotations followed back to the inception key (a bound, not a rule)


def next_key_digest(key: IdentityId) -> bytes:
    """`H("trustnode/next-key/v1\\0" || key)`: what a commitment publishes (SPEC §17.1)."""
    return hashlib.blake2b(_NEXT_KEY_DOMAIN + key, digest_size=32).digest()


def commit_statement(next_key: IdentityId) -> Certify:
    """What a root signs to pre-commit to `next_key` (SPEC §17.1)."""
    return Certify(subject=IdentityId(next_key_digest(next_key)), claim=COMMIT_CLAIM)


def rotation_statement(old: IdentityId, after_next: IdentityId | None) -> Certify:
    """What the revealed next key signs to succeed `old`, committing to `after_next`."""
    commitment = None if after_next is None else next_key_digest(after_next)
    return Certify(subject=old, claim=ROTATE_CLAIM, commitment=commitment)


@dataclass(slots=True)
class IdentityBook:
    """Devices and rotations: whom each key speaks for, and until when (SPEC §16-§17)."""

    devices: DeviceBook = field(default_factory=DeviceBook)
    # Custodian recovery (SPEC §18): time-dependent, read at `now_ms` (None: never counts).
    recovery: RecoveryBook = field(default_factory=RecoveryBook)
    now_ms: int | None = None
    # key -> digests it committed to (key:next statements, and rotations it signed).
    _commitments: dict[IdentityId, set[bytes]] = field(default_factory=dict)
    # (old, new) -> earliest issued_at_ms of a rotation by `new` naming `old`.
    _rotations: dict[tuple[IdentityId, IdentityId], int] = field(default_factory=dict)
    _seen: set[bytes] = field(default_factory=set)
    # Derived on demand, dropped on every change (`_forget_derived`).
    _successor: dict[IdentityId, tuple[IdentityId, int]] | None = None
    _recoveries_now: tuple[Recovery, ...] | None = None

    def add(self, attestation: Attestation) -> bool:
        """Take one attestation; True when it is an identity statement not seen before."""
        if self.devices.add(attestation):
            self._forget_derived()
            return True
        if self.recovery.add(attestation):
            self._forget_derived()
            return True
        statement = attestation.statement
        if not isinstance(statement, Certify) or attestation.id in self._seen:
            return False
        if statement.claim == COMMIT_CLAIM:
            self._commitments.setdefault(attestation.issuer, set()).add(statement.subject)
        elif statement.claim == ROTATE_CLAIM:
            pair = (IdentityId(statement.subject), attestation.issuer)
            at = attestation.issued_at_ms
            self._rotations[pair] = min(self._rotations.get(pair, at), at)
            if statement.commitment is not None:
                self._commitments.setdefault(attestation.issuer, set()).add(statement.commitment)
        else:
            return False
        self._seen.add(attestation.id)
        self._forget_derived()
        return True

    def set_now(self, now_ms: int) -> bool:
        """Read recoveries at `now_ms` from now on; True when that may change an answer."""
        before, self.now_ms = self.now_ms, now_ms
        if now_ms == before or not self.recovery:
            return False
        if before is not None and not self.recovery.changes_between(before, now_ms):
            return False
        self._forget_derived()
        return True

    def _forget_derived(self) -> None:
        self._successor = None
        self._recoveries_now = None

    def recoveries_now(self) -> tuple[Recovery, ...]:
        """Every recovery some custodian names, read at `now_ms` (SPEC §18.3; none
        without a clock), kept until the book changes or the clock crosses an
        instant where the reading may (`set_now`), as the successors are."""
        if self._recoveries_now is None:
            found: tuple[Recovery, ...] = ()
            if self.recovery and self.now_ms is not None:
                of, counts, is_root = self.base_readers()
                found = tuple(
                    self.recovery.recoveries(self.now_ms, of=of, counts=counts, is_root=is_root)
                )
            self._recoveries_now = found
        return self._recoveries_now

    def _successors(self) -> dict[IdentityId, tuple[IdentityId, int]]:
        """old -> (new, time), for every rotation (§17.2) and recovery (§18.3) that counts.

        A recovery of a key replaces its rotation, if any: recovery is what
        settles a disputed chain, or a next key that leaked. Custodians, vetoers
        and designators are read with devices and rotations only (no recovery
        feeds another: the reading stays one pass, hence order-free).
        """
        if self._successor is not None:
            return self._successor
        merged = dict(self._rotation_successors())
        if self.recovery and self.now_ms is not None:
            of, counts, is_root = self.base_readers()
            merged.update(
                self.recovery.successors_at(self.now_ms, of=of, counts=counts, is_root=is_root)
            )
            olds_of: dict[IdentityId, int] = {}
            for new, _ in merged.values():
                olds_of[new] = olds_of.get(new, 0) + 1
            merged = {old: v for old, v in merged.items() if olds_of[v[0]] == 1}
        self._successor = merged
        return merged

    def base_readers(
        self,
    ) -> tuple[
        Callable[[IdentityId], IdentityId],
        Callable[[IdentityId, int], bool],
        Callable[[IdentityId], bool],
    ]:
        """(member, counts, is_root) as recovery reads them: devices and rotations only."""
        rotated = self._rotation_successors()
        predecessor = {new: old for old, (new, _) in rotated.items()}
        devices = self.devices

        def of(key: IdentityId) -> IdentityId:
            return _inception(predecessor, devices.member(key))

        def counts(key: IdentityId, at: int) -> bool:
            cutoff = devices.cutoff(key)
            if cutoff is None and key in rotated:
                cutoff = rotated[key][1]
            return cutoff is None or at < cutoff

        def is_root(key: IdentityId) -> bool:
            return devices.root_of(key) is None

        return of, counts, is_root

    def _rotation_successors(self) -> dict[IdentityId, tuple[IdentityId, int]]:
        """old -> (new, rotation time), for every rotation that counts (SPEC §17.2)."""
        valid: dict[IdentityId, tuple[IdentityId, int]] = {}
        olds_of: dict[IdentityId, set[IdentityId]] = {}
        for (old, new), at in self._rotations.items():
            committed = self._commitments.get(old, set())
            if (
                len(committed) == 1
                and next_key_digest(new) in committed
                and old != new
                and self.devices.root_of(old) is None
                and self.devices.root_of(new) is None
            ):
                valid[old] = (new, at)
                olds_of.setdefault(new, set()).add(old)
        # A key that succeeds two identities merges nothing: neither rotation counts.
        return {old: (new, at) for old, (new, at) in valid.items() if len(olds_of[new]) == 1}

    def successor(self, key: IdentityId) -> tuple[IdentityId, int] | None:
        """The key that succeeded `key` and when, or None."""
        return self._successors().get(key)

    def inception(self, key: IdentityId) -> IdentityId:
        """The first key of `key`'s chain: the member's stable identity."""
        return _inception({new: old for old, (new, _) in self._successors().items()}, key)

    def member(self, key: IdentityId) -> IdentityId:
        """The member `key` speaks for: its root's chain if a device, else its own chain."""
        return self.inception(self.devices.member(key))

    def counts(self, signer: IdentityId, issued_at_ms: int) -> bool:
        """Whether `signer`'s statement dated `issued_at_ms` counts (SPEC §16.2, §17.2)."""
        cutoff = self.cutoff(signer)
        return cutoff is None or issued_at_ms < cutoff

    def cutoff(self, key: IdentityId) -> int | None:
        """From when `key`'s signatures stop counting: a device's cut-off, or a root's rotation."""
        device_cutoff = self.devices.cutoff(key)
        if device_cutoff is not None:
            return device_cutoff
        rotated = self.successor(key)
        return None if rotated is None else rotated[1]

    def chain(self, key: IdentityId) -> list[tuple[IdentityId, int | None]]:
        """`key`'s member's root keys from the inception on: (key, rotated away at or None)."""
        current = self.inception(self.devices.member(key))
        found: list[tuple[IdentityId, int | None]] = []
        seen: set[IdentityId] = set()
        while current not in seen and len(found) < _MAX_CHAIN:
            seen.add(current)
            rotated = self.successor(current)
            found.append((current, None if rotated is None else rotated[1]))
            if rotated is None:
                break
            current = rotated[0]
        return found

    def candidates(self) -> set[IdentityId]:
        """Every key whose member or cut-off may differ from the plain reading."""
        keys = set(self.devices.candidates())
        for old, (new, _) in self._successors().items():
            keys.add(old)
            keys.add(new)
        return keys


def _inception(predecessor: dict[IdentityId, IdentityId], key: IdentityId) -> IdentityId:
    seen = {key}
    current = key
    for _ in range(_MAX_CHAIN):
        before = predecessor.get(current)
        if before is None or before in seen:
            break
        seen.add(before)
        current = before
    return current


def member_trust_heads(
    attestations: Iterable[Attestation], *, now_ms: int | None = None
) -> dict[tuple[IdentityId, IdentityId, str], Attestation]:
    """The head of every member trust slot (SPEC §16.3, §17.2), read over the set.

    The literal reading, for vectors and tests: bind keys, drop signatures past
    their cut-off, map keys to members, supersede by `(issued_at_ms, id)`.
    Whether a head is current (expiry, revocation) is the caller's next step.
    """
    held = list(attestations)
    book = IdentityBook(now_ms=now_ms)
    for attestation in held:
        book.add(attestation)
    heads: dict[tuple[IdentityId, IdentityId, str], Attestation] = {}
    for attestation in held:
        statement = attestation.statement
        if (
            is_identity_statement(statement)
            or not isinstance(statement, Trust)
            or not book.counts(attestation.issuer, attestation.issued_at_ms)
        ):
            continue
        slot = (book.member(attestation.issuer), book.member(statement.subject), statement.context)
        head = heads.get(slot)
        if head is None or (attestation.issued_at_ms, attestation.id) > (
            head.issued_at_ms,
            head.id,
        ):
            heads[slot] = attestation
    return heads
