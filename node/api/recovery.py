"""The API's custodian and recovery routes (SPEC §18).

Kept in their own module, installed by `create_app` like the device routes.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from node.api.models import AttestationView, Identity
from node.api.views import attestation_view
from node.errors import RequestError
from node.service import Node
from node.service.recovery import CustodianReport
from protocol.identity import IdentityId, encode_identity_text
from protocol.recovery import DEFAULT_WAIT_MS, MAX_CUSTODIANS

__all__ = [
    "CustodiansRequest",
    "CustodiansView",
    "RecoverRequest",
    "VetoRequest",
    "add_recovery_routes",
]

Digest = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="a designation's digest D")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class CustodiansRequest(_Strict):
    k: int = Field(ge=1, le=MAX_CUSTODIANS, description="how many custodians recover")
    custodians: list[Identity] = Field(min_length=1, max_length=MAX_CUSTODIANS)
    wait_hours: int | None = Field(
        default=None, ge=24, le=720,
        description="the designation's own waiting period and lock, in hours (SPEC §18.1;"
        " every node reads it from the statements); default 72",
    )  # fmt: skip


class RecoverRequest(_Strict):
    old: Identity = Field(description="the lost key")
    new: Identity = Field(description="the member's new key")


class VetoRequest(_Strict):
    recovery: Identity | None = Field(default=None, description="veto the recovery to this key")
    designation: Digest | None = Field(default=None, description="veto this designation")


class VetoView(_Strict):
    key: str
    at_ms: int


class DesignationView(_Strict):
    digest: str
    k: int
    custodians: list[str]
    issued_at_ms: int
    lock_ends_ms: int = Field(description="it replaces the previous designation from then")
    wait_ms: int = Field(
        default=DEFAULT_WAIT_MS,
        description="how long a recovery under it waits, and a change of it is locked",
    )
    vetoes: list[VetoView]


class RecoveryView(_Strict):
    old: str
    new: str
    custodians: list[str] = Field(description="custodians of the designation in force naming it")
    k: int | None
    complete_at_ms: int | None
    effective_at_ms: int | None = Field(description="complete + the waiting period")
    vetoes: list[VetoView]
    counts: bool = Field(description="the new key is the lost key's successor now")


class CustodiansView(_Strict):
    key: str
    member: str
    now_ms: int
    in_force: DesignationView | None
    designations: list[DesignationView]
    recoveries: list[RecoveryView]


def _text(key: bytes) -> str:
    return encode_identity_text(IdentityId(key))


def _vetoes(found: tuple[tuple[bytes, int], ...]) -> list[VetoView]:
    return [VetoView(key=_text(k), at_ms=at) for k, at in found]


def custodians_view(report: CustodianReport) -> CustodiansView:
    """The report as JSON (also what `trustnode custodians` prints)."""
    designations = [
        DesignationView(
            digest=d.digest.hex(), k=d.k, custodians=[_text(c) for c in d.custodians],
            issued_at_ms=d.issued_at_ms, lock_ends_ms=lock, vetoes=_vetoes(vetoes),
            wait_ms=DEFAULT_WAIT_MS if d.own_wait_ms is None else d.own_wait_ms,
        )
        for d, lock, vetoes in report.designations
    ]  # fmt: skip
    in_force = None
    if report.in_force is not None:
        in_force = next(v for v in designations if v.digest == report.in_force.digest.hex())
    now = report.now_ms
    return CustodiansView(
        key=_text(report.key),
        member=_text(report.member),
        now_ms=now,
        in_force=in_force,
        designations=designations,
        recoveries=[
            RecoveryView(
                old=_text(r.old), new=_text(r.new), custodians=[_text(c) for c in r.custodians],
                k=r.k, complete_at_ms=r.complete_at_ms, effective_at_ms=r.effective_at_ms,
                vetoes=_vetoes(r.vetoed_by),
                counts=r.effective_at_ms is not None and r.effective_at_ms <= now
                and not r.vetoed_by,
            )
            for r in report.recoveries
        ],
    )  # fmt: skip


def add_recovery_routes(app: FastAPI, node: Node, guarded: list[Any]) -> None:
    """Install the custodian and recovery routes on `app`."""

    @app.get("/v1/custodians", dependencies=guarded, tags=["identity"])
    async def custodians(
        subject: Annotated[str | None, Query(description="whose (default: this node's)")] = None,
    ) -> CustodiansView:
        """A member's custodians (in force, and changes waiting for their lock) and recoveries."""
        key = None if subject is None else await node.resolve_identity(subject)
        return custodians_view(await node.custodians.report(key))

    @app.post("/v1/custodians", dependencies=guarded, tags=["identity"], status_code=201)
    async def designate(request: CustodiansRequest) -> list[AttestationView]:
        """Designate k-of-n custodians among members this node vouches for (SPEC §18.1)."""
        keys = [await node.resolve_identity(c) for c in request.custodians]
        wait = None if request.wait_hours is None else request.wait_hours * 3600 * 1000
        made = await node.custodians.designate(request.k, keys, wait_ms=wait)
        return [attestation_view(a) for a in made]

    @app.post("/v1/recoveries", dependencies=guarded, tags=["identity"], status_code=201)
    async def recover(request: RecoverRequest) -> AttestationView:
        """As a custodian: `new` is really the member whose key `old` was lost (SPEC §18.3)."""
        old = await node.resolve_identity(request.old)
        new = await node.resolve_identity(request.new)
        return attestation_view(await node.custodians.recover(old, new))

    @app.post("/v1/vetoes", dependencies=guarded, tags=["identity"], status_code=201)
    async def veto(request: VetoRequest) -> AttestationView:
        """As a key of the member: veto a recovery (by its new key) or a designation."""
        if (request.recovery is None) == (request.designation is None):
            raise RequestError("bad_value", "give exactly one of recovery and designation")
        target: bytes
        if request.recovery is not None:
            target = await node.resolve_identity(request.recovery)
        else:
            assert request.designation is not None
            target = bytes.fromhex(request.designation)
        return attestation_view(await node.custodians.veto(target))

    @app.get("/v1/recoveries/{subject}", dependencies=guarded, tags=["identity"])
    async def recoveries(
        subject: Annotated[str, Path(description="a tn_… identity or a petname")],
    ) -> CustodiansView:
        """Recoveries of a member's keys, with their custodians, times and vetoes."""
        return custodians_view(await node.custodians.report(await node.resolve_identity(subject)))
