"""Reading the store: what we hold, what arrives, whom a text names, our petnames.

Reads go through the reader connection (see `node.service.core`), so they
never wait behind a peer's big write.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncGenerator

import trio

from node.errors import RequestError, StoreCorruptError
from node.service.core import NodeCore
from node.service.prefixes import (
    MAX_CANDIDATES,
    IdentityPrefix,
    choose_by_petname,
    choose_identity,
    is_thing_text,
    parse_identity_or_prefix,
)
from node.store import AttestationStore, Change, Store
from protocol.attestation import Attestation, AttestationId
from protocol.identity import IdentityId
from protocol.statement import Subject, Thing

__all__ = ["Reading"]

log = logging.getLogger("trustnode.node")


class Reading(NodeCore):
    """`export`, `attestations`, `holds`, `changes`, `wait_for`, resolving, petnames."""

    async def export(self) -> list[bytes]:
        """Every stored envelope, in (issued_at, id) order: a portable copy of our set."""

        def everything(store: AttestationStore) -> list[bytes]:
            envelopes: list[bytes] = []
            after: tuple[int, bytes] | None = None
            try:
                while batch := store.ids_in_order(after=after, limit=5000):
                    found = (store.get(i) for _, i in batch)
                    envelopes += [a.data for a in found if a is not None]
                    after = (batch[-1][0], bytes(batch[-1][1]))
            except StoreCorruptError:
                if not isinstance(store, Store):
                    raise
                # Export is how a member saves a damaged store (README): what can
                # still be read, row by row; the importer verifies every envelope.
                log.warning("the store is damaged: exporting what can still be read")
                return store.salvage_envelopes()
            return envelopes

        return await self._reader.run(everything)

    async def resolve_identity(self, text: str) -> IdentityId:
        """The identity `text` names: a full `tn_…` text, a unique prefix of one the
        store knows (`tn_` and at least 6 characters; see `node.service.prefixes`), of
        a connected peer, of a relay anchor (the inviter) or our own (right after
        `join` the store knows no one, and the new member's first vouch is typed
        from what `peers` shows), or one of our petnames (exact, or the start of one
        read alike).

        Raises:
            RequestError: `bad_identity` or `ambiguous_identity` (naming the candidates).
        """
        if not text.startswith("tn_"):
            return choose_by_petname(text, self._petnames.as_dict())
        parsed = parse_identity_or_prefix(text)
        if not isinstance(parsed, IdentityPrefix):
            return parsed

        def stored_in_range(store: AttestationStore) -> list[bytes]:
            if not isinstance(store, Store):
                return []  # a simulation's MemoryStore: peers and anchors only
            return store.identities_between(parsed.low, parsed.high, limit=MAX_CANDIDATES + 1)

        stored = await self._reader.run(stored_in_range)
        met = [*self._anchors, *(i for i, _, _ in self.gossip.describe_peers())]
        in_range = [i for i in met if parsed.low <= i and (parsed.high is None or i < parsed.high)]
        return choose_identity(parsed, sorted({*stored, *in_range}))

    async def resolve_subject(self, text: str) -> Subject:
        """An identity (full, a unique prefix or a petname, as `resolve_identity`) or a
        thing's URI. An exact petname wins over a URI; text that is neither a petname
        nor a URI is read as a petname typed loosely (`choose_by_petname`)."""
        if text.startswith("tn_"):
            return await self.resolve_identity(text)
        petnames = self._petnames.as_dict()
        petname = next((i for i, n in petnames.items() if n == text), None)
        if petname is not None:
            return petname
        if is_thing_text(text):
            return Thing(text)
        return choose_by_petname(text, petnames)  # typed loosely, or nothing we know

    async def attestations(
        self, *, issuer: IdentityId | None = None, subject: Subject | None = None
    ) -> list[Attestation]:
        """Current attestations by `issuer` or about `subject` (exactly one of them)."""
        now = self._clock()
        if (issuer is None) == (subject is None):
            raise RequestError("bad_value", "give exactly one of issuer and subject")
        if issuer is not None:
            return await self._reader.run(lambda s: s.current_by_issuer(issuer, now_ms=now))
        assert subject is not None
        return await self._reader.run(lambda s: s.current_about(subject, now_ms=now))

    async def holds(self, attestation_id: bytes) -> bool:
        """Whether this node's store holds the attestation with this id."""
        wanted = AttestationId(attestation_id)
        return await self._reader.run(lambda s: s.contains(wanted))

    async def changes(self, *, cursor: int = 0) -> AsyncGenerator[Change, None]:
        """Everything stored after `cursor`, then each new arrival, forever.

        Use it with `contextlib.aclosing`, or in a task you cancel.
        """
        while True:
            signal = self.gossip.stored_signal
            batch = await self._reader.run(functools.partial(_changes_after, cursor))
            for change in batch:
                yield change
            if batch:
                cursor = batch[-1].seq
            else:
                await signal.wait()

    async def wait_for(self, count: int, *, poll_s: float = 0.05) -> None:
        """Wait until the store holds at least `count` attestations (tests, demos)."""
        while True:
            signal = self.gossip.stored_signal
            statistics = await self._reader.run(lambda s: s.statistics())
            if statistics.attestations >= count:
                return
            with trio.move_on_after(poll_s):
                await signal.wait()

    # -- petnames: names only this node knows, never sent ---------------------------------

    def petnames(self) -> dict[IdentityId, str]:
        """My petnames: names only this node knows, never sent."""
        return self._petnames.as_dict()

    async def set_petname(self, subject: IdentityId, name: str) -> None:
        """Name `subject` `name` here (durably); unique per node.

        Raises:
            RequestError: `bad_value` (not a label), `conflict` (taken, or read alike).
        """
        await trio.to_thread.run_sync(self._petnames.set, subject, name)

    async def remove_petname(self, subject: IdentityId) -> str:
        """Forget our petname for `subject`; returns it.

        Raises:
            RequestError: `not_found` when `subject` has none.
        """
        removed = await trio.to_thread.run_sync(self._petnames.remove, subject)
        if removed is None:
            raise RequestError("not_found", "you gave no petname to that identity")
        return removed


def _changes_after(cursor: int, store: AttestationStore) -> list[Change]:
    return store.changes_since(cursor, limit=500)
