"""Saying things: sign with the node's key, commit to the store, then push to the peers.

Each method returns once the attestation is **committed** (acknowledged =
durable); the gossip layer then pushes it to the connected peers.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence

from node.errors import RequestError
from node.service.core import NodeCore
from node.service.records import Certificate
from node.service.refusals import check_not_self_vouch, nothing_to_revoke
from node.store import IngestReport
from protocol.attestation import Attestation, AttestationBody, sign_attestation
from protocol.errors import FieldError
from protocol.identity import IdentityId
from protocol.statement import (
    GENERAL_CONTEXT,
    Certify,
    Kind,
    Profile,
    Rate,
    Revoke,
    Slot,
    Statement,
    Subject,
    Trust,
    commit_claim_value,
)

__all__ = ["Publishing"]

log = logging.getLogger("trustnode.node")


class Publishing(NodeCore):
    """`trust`, `distrust`, `certify`, `rate`, `revoke`, `set_profile`, `issue`, imports."""

    async def trust(
        self, subject: IdentityId, value: int = 50, *, context: str = GENERAL_CONTEXT,
        expires_in_s: int | None = None, name: str | None = None,
    ) -> Attestation:  # fmt: skip
        """Vouch for `subject` in `context` with strength `value` (1..100); `name` is
        what we know them by, for our contacts (a label, SPEC §3.4)."""
        if not 1 <= value <= 100:
            raise RequestError("bad_value", "a vouch's value is 1..100 (distrust for negative)")
        try:
            statement = Trust(subject=subject, context=context, value=value, name=name)
        except FieldError as exc:
            raise RequestError("bad_value", f"the name: {exc}") from None
        return await self.issue(statement, expires_in_s=expires_in_s)

    async def distrust(
        self, subject: IdentityId, value: int = 100, *, context: str = GENERAL_CONTEXT,
        expires_in_s: int | None = None,
    ) -> Attestation:  # fmt: skip
        """Flag `subject` in `context` with strength `value` (1..100)."""
        if not 1 <= value <= 100:
            raise RequestError("bad_value", "a flag's strength is 1..100")
        return await self.issue(
            Trust(subject=subject, context=context, value=-value), expires_in_s=expires_in_s
        )

    async def certify(
        self, subject: IdentityId, claim: str, *, private_value: str | None = None,
        expires_in_s: int | None = None,
    ) -> Certificate:  # fmt: skip
        """Certify `claim` about `subject`; with `private_value`, only a salted
        commitment to it travels (the salt comes back in the certificate)."""
        salt = None
        commitment = None
        if private_value is not None:
            salt = secrets.token_bytes(32)
            commitment = commit_claim_value(
                subject=subject, claim=claim, value=private_value.encode(), salt=salt
            )
        statement = Certify(subject=subject, claim=claim, commitment=commitment)
        return Certificate(
            attestation=await self.issue(statement, expires_in_s=expires_in_s), salt=salt
        )

    async def rate(
        self, subject: Subject, value: int, *, context: str = GENERAL_CONTEXT,
        reference: str | None = None, expires_in_s: int | None = None,
    ) -> Attestation:  # fmt: skip
        """Rate an exchange with `subject` (an identity or a thing's URI), -100..100."""
        statement = Rate(subject=subject, context=context, value=value, reference=reference)
        return await self.issue(statement, expires_in_s=expires_in_s)

    async def revoke(self, kind: Kind, subject: Subject, scope: str) -> Attestation:
        """Withdraw our `kind` statement about `subject` in `scope` (context or claim).

        Raises:
            RequestError: `not_found` when that slot holds nothing current (a
                mistyped scope must not look done), naming the slots we hold
                about `subject`.
        """
        statement = Revoke(target_kind=kind, subject=subject, scope=scope)
        slot = Slot(issuer=self.identity, kind=kind, subject=subject, scope=scope)
        now = self._clock()
        current = await self._store.run(lambda s: s.current_in_slot(slot.id, now_ms=now))
        if current is None:
            held = await self._store.run(lambda s: s.current_by_issuer(self.identity, now_ms=now))
            raise nothing_to_revoke(kind, subject, scope, held=held)
        return await self.issue(statement)

    async def set_profile(self, name: str, *, about: str | None = None) -> Attestation:
        """Publish our self-chosen name (and a short line about us): a signed `profile`.

        Raises:
            RequestError: `bad_value` when `name` or `about` is not a label (SPEC §3.4).
        """
        try:
            statement = Profile(subject=self.identity, name=name, about=about)
        except FieldError as exc:
            raise RequestError("bad_value", str(exc).removeprefix("out_of_range: ")) from None
        return await self.issue(statement)

    async def issue(self, statement: Statement, *, expires_in_s: int | None = None) -> Attestation:
        """Sign `statement`, commit it, then push it to the peers.

        The time is now, or just after the slot's current head if that is not
        older (two updates within one millisecond must still supersede in order).

        Raises:
            RequestError: `bad_value` for a vouch or flag of ourselves (see
                `node.service.refusals`); `refused` if the store refuses it.
        """
        check_not_self_vouch(statement, issuer=self.identity)
        now = self._clock()
        probe = AttestationBody(issuer=self.identity, issued_at_ms=now, statement=statement)
        head = await self._store.run(lambda s: s.slot_head(probe.slot.id))
        issued = now if head is None else max(now, head.issued_at_ms + 1)
        if issued > now + 1:
            log.warning(
                "the clock is behind this slot's last statement: dated %d ms ahead", issued - now
            )
        expires = None if expires_in_s is None else issued + expires_in_s * 1000
        body = AttestationBody(
            issuer=self.identity, issued_at_ms=issued, expires_at_ms=expires, statement=statement
        )
        attestation = sign_attestation(body, self._key)
        report = await self.gossip.publish([attestation], now_ms=max(now, issued))
        item = report.items[0]
        if item.reason is not None:
            raise RequestError("refused", f"the store refused it: {item.reason.value}")
        if self._gate is not None and isinstance(statement, Trust | Revoke):
            self._gate.invalidate()  # our vouches decide what we relay
        log.info("issued %s %s", attestation.kind.name.lower(), attestation.id.hex()[:16])
        return attestation

    async def import_envelopes(self, envelopes: Sequence[bytes]) -> IngestReport:
        """Verify and store envelopes (an export file, another app); new ones are pushed."""
        return await self.gossip.ingest_local(envelopes)
