"""Device keys: one identity, several signing keys (SPEC §16).

A member's *root* key is its identity. It may authorise *device* keys, each held
by one machine, so that a phone and a laptop both speak for the member without
sharing a secret. The binding is two v1 certifications with reserved claims,
so that it travels through peers of every version unchanged (§16.1):

* the grant, by the root: `certify(subject=device, claim="key:device")`;
* the acceptance, by the device: `certify(subject=root, claim="key:root")`.

A key is a device of a root when both exist (and nothing contradicts them,
`DeviceBook.root_of`). A revocation of either slot sets the device's
*cut-off*: what the device signed before it counts as the root's, what it
signed at or after it never counts. `DeviceBook` is the reference reading of
those rules: a function of the *set* of binding statements it was given, never
of their order, like supersession (§5.2).

Pure: no I/O, no clock.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field

from protocol.attestation import Attestation
from protocol.identity import IdentityId
from protocol.statement import Certify, Kind, Revoke, Statement

__all__ = [
    "ACCEPT_CLAIM",
    "GRANT_CLAIM",
    "KEY_CLAIM_PREFIX",
    "DeviceBook",
    "accept_statement",
    "binding_role",
    "grant_statement",
    "is_identity_statement",
    "leave_statement",
    "pairing_code",
    "revoke_device_statement",
]

KEY_CLAIM_PREFIX = "key:"
"""Claims starting with this are identity statements, never certifications (§16)."""
GRANT_CLAIM = "key:device"
ACCEPT_CLAIM = "key:root"
PAIRING_CODE_CHARS = 10  # 50 bits (SPEC §16.4)
_PAIRING_DOMAIN = b"trustnode/pairing/v1\x00"


def pairing_code(device: IdentityId) -> str:
    """The short code a new device shows and its root approves (SPEC §16.4)."""
    digest = hashlib.blake2b(_PAIRING_DOMAIN + device, digest_size=32).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:PAIRING_CODE_CHARS]


def grant_statement(device: IdentityId) -> Certify:
    """What a root signs to authorise `device` (SPEC §16.1)."""
    return Certify(subject=device, claim=GRANT_CLAIM)


def accept_statement(root: IdentityId) -> Certify:
    """What a device signs to accept `root` as the identity it speaks for (SPEC §16.1)."""
    return Certify(subject=root, claim=ACCEPT_CLAIM)


def revoke_device_statement(device: IdentityId) -> Revoke:
    """What a root signs to revoke `device` from the revocation's time on (SPEC §16.2)."""
    return Revoke(target_kind=Kind.CERTIFY, subject=device, scope=GRANT_CLAIM)


def leave_statement(root: IdentityId) -> Revoke:
    """What a device signs to stop speaking for `root` from the revocation's time on."""
    return Revoke(target_kind=Kind.CERTIFY, subject=root, scope=ACCEPT_CLAIM)


def is_identity_statement(statement: Statement) -> bool:
    """Whether `statement` is about keys (a reserved `key:` claim, or its revocation).

    Identity statements are never evidence: no trust engine counts them as
    certifications, whatever their issuer.
    """
    if isinstance(statement, Certify):
        return statement.claim.startswith(KEY_CLAIM_PREFIX)
    if isinstance(statement, Revoke):
        return statement.target_kind is Kind.CERTIFY and statement.scope.startswith(
            KEY_CLAIM_PREFIX
        )
    return False


def binding_role(statement: Statement) -> str | None:
    """`grant`, `accept`, `revoke-grant`, `revoke-accept`, or None (not a device binding)."""
    if isinstance(statement, Certify):
        return {GRANT_CLAIM: "grant", ACCEPT_CLAIM: "accept"}.get(statement.claim)
    if isinstance(statement, Revoke) and statement.target_kind is Kind.CERTIFY:
        return {GRANT_CLAIM: "revoke-grant", ACCEPT_CLAIM: "revoke-accept"}.get(statement.scope)
    return None


def _earliest(current: int | None, candidate: int) -> int:
    return candidate if current is None else min(current, candidate)


@dataclass(slots=True)
class DeviceBook:
    """Which key is a device of which root, and until when (SPEC §16.1-§16.2).

    Keeps every binding statement it is given (they are few: a handful per
    member), so that every answer is a function of the set, never of the
    order: a revocation that arrives after the device's attestations still
    refuses those dated at or after it, and one that arrives first refuses
    them on arrival.
    """

    # (root, device) -> earliest issued_at_ms of a grant (any grant: revoked ones too).
    _grants: dict[tuple[IdentityId, IdentityId], int] = field(default_factory=dict)
    # device -> roots it accepted (ever).
    _accepted: dict[IdentityId, set[IdentityId]] = field(default_factory=dict)
    # (root, device) -> earliest time either side revoked the binding.
    _cutoffs: dict[tuple[IdentityId, IdentityId], int] = field(default_factory=dict)
    _seen: set[bytes] = field(default_factory=set)

    def add(self, attestation: Attestation) -> bool:
        """Take one attestation; True when it is a device binding not seen before.

        Anything else is ignored (False), so callers may offer every attestation.
        """
        role = binding_role(attestation.statement)
        if role is None or attestation.id in self._seen:
            return False
        self._seen.add(attestation.id)
        issuer = attestation.issuer
        subject = attestation.statement.subject
        assert isinstance(subject, bytes)  # certify and its revocation: an identity
        other = IdentityId(subject)
        at = attestation.issued_at_ms
        if role == "grant":
            pair = (issuer, other)
            self._grants[pair] = _earliest(self._grants.get(pair), at)
            expires = attestation.expires_at_ms
            if expires is not None:  # a grant that expires ends the device then
                self._cutoffs[pair] = _earliest(self._cutoffs.get(pair), expires)
        elif role == "accept":
            self._accepted.setdefault(issuer, set()).add(other)
            expires = attestation.expires_at_ms
            if expires is not None:
                pair = (other, issuer)
                self._cutoffs[pair] = _earliest(self._cutoffs.get(pair), expires)
        elif role == "revoke-grant":
            pair = (issuer, other)
            self._cutoffs[pair] = _earliest(self._cutoffs.get(pair), at)
        else:  # revoke-accept: the device leaves
            pair = (other, issuer)
            self._cutoffs[pair] = _earliest(self._cutoffs.get(pair), at)
        return True

    def root_of(self, key: IdentityId) -> IdentityId | None:
        """The root `key` is a device of, or None (then `key` is its own identity).

        A device of R: R granted it, it accepted R and no other root, it is not
        R itself, and R is not a device (no chains: a device cannot authorise
        devices, so a stolen device cannot entrench itself).
        """
        roots = self._accepted.get(key)
        if roots is None or len(roots) != 1:
            return None
        (root,) = roots
        if root == key or (root, key) not in self._grants or root in self._accepted:
            return None
        return root

    def cutoff(self, device: IdentityId) -> int | None:
        """The time from which `device`'s signatures no longer count (None: never)."""
        root = self.root_of(device)
        return None if root is None else self._cutoffs.get((root, device))

    def counts(self, signer: IdentityId, issued_at_ms: int) -> bool:
        """Whether a statement `signer` dated `issued_at_ms` counts at all (§16.2)."""
        cutoff = self.cutoff(signer)
        return cutoff is None or issued_at_ms < cutoff

    def member(self, key: IdentityId) -> IdentityId:
        """The identity `key` speaks for: its root if it is a device, else itself."""
        root = self.root_of(key)
        return key if root is None else root

    def devices(self, root: IdentityId) -> list[tuple[IdentityId, int, int | None]]:
        """`root`'s devices: (device, first grant time, cut-off or None), by key."""
        found = [
            (device, granted, self._cutoffs.get((root, device)))
            for (owner, device), granted in self._grants.items()
            if owner == root and self.root_of(device) == root
        ]
        return sorted(found)

    def pending(self, root: IdentityId) -> list[IdentityId]:
        """Keys that accepted `root` and that `root` has not granted yet (pairing requests)."""
        return sorted(
            device
            for device, roots in self._accepted.items()
            if roots == {root} and (root, device) not in self._grants and device != root
        )

    def candidates(self) -> set[IdentityId]:
        """Every key some binding names as a device candidate (for cheap membership tests)."""
        return set(self._accepted)
