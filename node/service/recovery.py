"""Custodians and recovery for a running node (SPEC §18).

`Node` delegates here (`node.custodians`), like device keys (`node.devices`).
Every operation is an ordinary attestation issued through the node; the state
is read back from the store's identity statements (`Store.key_bindings`,
which keeps every `key:` statement in every state) at the node's clock, so a
member who lost every device still lists its custodians from any node.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from node.errors import RequestError
from node.store import AttestationStore
from protocol.attestation import Attestation
from protocol.identity import IdentityId
from protocol.recovery import (
    MAX_CUSTODIANS,
    Designation,
    Recovery,
    designation_statements,
    recovery_statement,
    veto_statement,
)
from protocol.statement import Statement
from protocol.succession import IdentityBook

__all__ = ["CustodianReport", "Custodians"]

T = TypeVar("T")


class _StoreRunner(Protocol):
    async def run(self, operation: Callable[[AttestationStore], T]) -> T: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class CustodianReport:
    """A member's designations (in force and waiting for their lock) and recoveries."""

    key: IdentityId
    member: IdentityId
    in_force: Designation | None
    designations: tuple[tuple[Designation, int, tuple[tuple[IdentityId, int], ...]], ...]
    """Every complete designation: (it, its lock's end, vetoes of it)."""
    recoveries: tuple[Recovery, ...]
    now_ms: int


class Custodians:
    """The custodian and recovery operations of one node (see the module doc)."""

    def __init__(
        self,
        *,
        identity: IdentityId,
        store: _StoreRunner,
        issue: Callable[[Statement], Awaitable[Attestation]],
        clock: Callable[[], int],
    ) -> None:
        self._identity = identity
        self._store = store
        self._issue = issue
        self._clock = clock

    async def book(self) -> IdentityBook:
        """Every identity statement this node holds, read at its clock."""
        found = await self._store.run(lambda s: s.key_bindings())
        book = IdentityBook(now_ms=self._clock())
        for attestation in found:
            book.add(attestation)
        return book

    async def report(self, key: IdentityId | None = None) -> CustodianReport:
        """`key`'s (default: ours) custodians, pending changes and recoveries of its keys."""
        book = await self.book()
        now = self._clock()
        of, counts, is_root = book.base_readers()
        key = self._identity if key is None else key
        member = of(key)
        rb = book.recovery
        # A change waits for the lock of the designation in force when the walk of
        # SPEC §18.2 meets it (as `RecoveryBook.in_force` walks at `now`): not the one
        # listed before it, which may be vetoed or still waiting itself. The first
        # has no lock.
        designations = []
        current: Designation | None = None
        for d in rb.designations(member, of=of, counts=counts, is_root=is_root):
            vetoes = tuple(rb.vetoes(d.digest, member, of=of, counts=counts))
            ends = d.issued_at_ms + (0 if current is None else rb.lock_of(current))
            designations.append((d, ends, vetoes))
            if not vetoes and (current is None or ends <= now):
                current = d
        every = rb.recoveries(now, of=of, counts=counts, is_root=is_root)
        recoveries = tuple(r for r in every if of(r.old) == member)
        return CustodianReport(
            key=key,
            member=member,
            in_force=rb.in_force(member, now, of=of, counts=counts, is_root=is_root),
            designations=tuple(designations),
            recoveries=recoveries,
            now_ms=now,
        )

    async def designate(
        self, k: int, custodians: list[IdentityId], *, wait_ms: int | None = None
    ) -> list[Attestation]:
        """Name `custodians`, any `k` of whom can recover this identity (SPEC §18.1).

        `wait_ms` (whole hours, 24 h to 30 days; None: 72 h) is written into the
        designation, so every node waits as long before a recovery under it
        takes effect, and before a later designation replaces it.

        Raises:
            RequestError: `bad_value` for a bad k, set or wait, a device key (only
                a root designates), or a custodian this node does not vouch for.
        """
        chosen = sorted(set(custodians))
        if not 1 <= k <= len(chosen) <= MAX_CUSTODIANS:
            raise RequestError(
                "bad_value", f"need 1 <= k <= number of custodians <= {MAX_CUSTODIANS}"
            )
        if self._identity in chosen:
            raise RequestError("bad_value", "a member cannot be its own custodian")
        book = await self.book()
        if book.devices.root_of(self._identity) is not None:
            raise RequestError("bad_value", "only the root key designates custodians")
        now = self._clock()
        edges = await self._store.run(lambda s: s.positive_trust_edges(now_ms=now))
        vouched = {subject for issuer, subject in edges if issuer == self._identity}
        missing = [c for c in chosen if c not in vouched]
        if missing:
            raise RequestError(
                "bad_value", f"custodians must be members you vouch for ({len(missing)} are not)"
            )
        try:
            statements = designation_statements(k, chosen, wait_ms=wait_ms)
        except ValueError as exc:
            raise RequestError("bad_value", str(exc)) from None
        return [await self._issue(s) for s in statements]

    async def recover(self, old: IdentityId, new: IdentityId) -> Attestation:
        """As a custodian: say that `new` is really the member whose key `old` was lost.

        Raises:
            RequestError: `bad_value` when `old` is `new`.
        """
        if old == new:
            raise RequestError("bad_value", "the new key must differ from the lost one")
        return await self._issue(recovery_statement(old, new))

    async def veto(self, target: bytes) -> Attestation:
        """Veto a recovery (its new key) or a designation (its digest) of our member."""
        return await self._issue(veto_statement(target))
