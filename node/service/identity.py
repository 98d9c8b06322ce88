"""Device keys for a running node (SPEC §16): pairing, approval, listing, revocation.

`Node` delegates here (`node.devices`), so the identity lifecycle stays apart
from the node's core. Everything is an ordinary attestation issued through the
node (`Node.issue`: signed, committed, pushed); the bindings are read back
from the store, where they are kept in every state (`Store.key_bindings`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from node.errors import RequestError
from node.store import AttestationStore
from protocol.attestation import Attestation
from protocol.devices import (
    accept_statement,
    grant_statement,
    pairing_code,
    revoke_device_statement,
)
from protocol.identity import IdentityId
from protocol.statement import Statement
from protocol.succession import IdentityBook

__all__ = ["DeviceInfo", "DeviceKeys", "DevicesReport", "Succession"]

T = TypeVar("T")


class _StoreRunner(Protocol):
    async def run(self, operation: Callable[[AttestationStore], T]) -> T: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceInfo:
    """One device of a member: its key, pairing code, since when, until when."""

    key: IdentityId
    code: str
    granted_at_ms: int | None  # None: a pairing request not approved yet
    cutoff_ms: int | None  # None: not revoked


@dataclass(frozen=True, slots=True, kw_only=True)
class DevicesReport:
    """Whom this node's key speaks for, that member's devices and pending requests."""

    key: IdentityId
    member: IdentityId
    devices: tuple[DeviceInfo, ...]
    pending: tuple[DeviceInfo, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Succession:
    """Who a key is as a member: the chain of root keys and the member's devices."""

    key: IdentityId
    member: IdentityId
    chain: tuple[tuple[IdentityId, int | None], ...]  # (root key, rotated away at or None)
    devices: tuple[DeviceInfo, ...]


class DeviceKeys:
    """The device operations of one node (see the module doc)."""

    def __init__(
        self,
        *,
        identity: IdentityId,
        store: _StoreRunner,
        issue: Callable[[Statement], Awaitable[Attestation]],
        clock: Callable[[], int] | None = None,
    ) -> None:
        self._identity = identity
        self._store = store
        self._issue = issue
        self._clock = clock  # recoveries (SPEC §18) are read at it; None: never

    async def book(self) -> IdentityBook:
        """Every binding this node holds, read as SPEC §16 says."""
        found = await self._store.run(lambda s: s.key_bindings())
        book = IdentityBook(now_ms=None if self._clock is None else self._clock())
        assert isinstance(found, list)
        for attestation in found:
            book.add(attestation)
        return book

    async def request(self, root: IdentityId) -> tuple[Attestation, str]:
        """On a new machine: accept `root` (a pairing request); returns it and its code.

        Raises:
            RequestError: `bad_value` when `root` is this node's own key.
        """
        if root == self._identity:
            raise RequestError("bad_value", "a key cannot be a device of itself")
        made = await self._issue(accept_statement(root))
        return made, pairing_code(self._identity)

    async def approve(self, code: str) -> Attestation:
        """On the root's machine: grant the pending device whose pairing code is `code`.

        Raises:
            RequestError: `not_found` when no pending request has that code.
        """
        wanted = code.strip().lower()
        book = await self.book()
        matches = [d for d in book.devices.pending(self._identity) if pairing_code(d) == wanted]
        if len(matches) != 1:
            raise RequestError(
                "not_found",
                f"no pairing request with code {wanted!r} has reached this node yet "
                "(is the new device connected to the community?)",
            )
        return await self._issue(grant_statement(matches[0]))

    async def revoke(self, device: IdentityId) -> Attestation:
        """Revoke `device` from now on (what it signed before still counts).

        Raises:
            RequestError: `not_found` when `device` is not one of ours.
        """
        book = await self.book()
        if book.devices.root_of(device) != self._identity:
            raise RequestError("not_found", "that key is not a device of this identity")
        return await self._issue(revoke_device_statement(device))

    async def report(self) -> DevicesReport:
        """Our member, its devices and the pairing requests waiting for approval."""
        book = await self.book()
        member = book.devices.member(self._identity)
        devices = tuple(
            DeviceInfo(key=key, code=pairing_code(key), granted_at_ms=at, cutoff_ms=cutoff)
            for key, at, cutoff in book.devices.devices(member)
        )
        pending = tuple(
            DeviceInfo(key=key, code=pairing_code(key), granted_at_ms=None, cutoff_ms=None)
            for key in book.devices.pending(member)
        )
        return DevicesReport(key=self._identity, member=member, devices=devices, pending=pending)

    async def succession(self, key: IdentityId) -> Succession:
        """`key`'s member, its chain of root keys (SPEC §17) and its devices (SPEC §16)."""
        book = await self.book()
        chain = tuple(book.chain(key))
        devices = tuple(
            DeviceInfo(key=device, code=pairing_code(device), granted_at_ms=at, cutoff_ms=cutoff)
            for root, _ in chain
            for device, at, cutoff in book.devices.devices(root)
        )
        return Succession(key=key, member=book.member(key), chain=chain, devices=devices)
