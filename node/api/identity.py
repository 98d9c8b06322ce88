"""The API's device-key routes (SPEC §16): `/v1/devices`, pairing and revocation.

Kept in their own module, installed by `create_app` like the naming routes.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Path
from pydantic import BaseModel, ConfigDict, Field

from node.api.models import AttestationView, Identity
from node.api.views import attestation_view
from node.service import Node
from node.service.identity import DeviceInfo
from protocol.identity import encode_identity_text

__all__ = [
    "DeviceApproveRequest",
    "DevicePairRequest",
    "DevicesView",
    "SuccessionView",
    "add_identity_routes",
]

PairingCode = Annotated[
    str, Field(pattern=r"^[a-z2-7]{10}$", description="the 10-character code a new device shows")
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class DevicePairRequest(_Strict):
    root: Identity = Field(description="the identity this machine's key is to speak for")


class DeviceApproveRequest(_Strict):
    code: PairingCode


class DeviceRevokeRequest(_Strict):
    device: Identity


class DeviceView(_Strict):
    key: str
    code: str = Field(description="its pairing code (SPEC §16.4)")
    granted_at_ms: int | None = Field(description="null: a pairing request not approved yet")
    cutoff_ms: int | None = Field(description="revoked from then on; null: not revoked")


class DevicesView(_Strict):
    key: str = Field(description="this node's own key")
    member: str = Field(description="the identity it speaks for (itself, or its root)")
    devices: list[DeviceView]
    pending: list[DeviceView] = Field(description="pairing requests waiting for approval")


class ChainLinkView(_Strict):
    key: str
    rotated_at_ms: int | None = Field(description="when its successor took over; null: current")


class SuccessionView(_Strict):
    key: str
    member: str = Field(description="the member's stable identity: the chain's first key")
    chain: list[ChainLinkView] = Field(description="root keys from the first to the current")
    devices: list[DeviceView]


class PairingView(_Strict):
    code: str
    attestation: AttestationView


def _device_view(info: DeviceInfo) -> DeviceView:
    return DeviceView(
        key=encode_identity_text(info.key), code=info.code,
        granted_at_ms=info.granted_at_ms, cutoff_ms=info.cutoff_ms,
    )  # fmt: skip


def add_identity_routes(app: FastAPI, node: Node, guarded: list[Any]) -> None:
    """Install the device routes on `app`."""

    @app.get("/v1/devices", dependencies=guarded, tags=["identity"])
    async def devices() -> DevicesView:
        """Whom this node speaks for, that member's devices and pending pairing requests."""
        report = await node.devices.report()
        return DevicesView(
            key=encode_identity_text(report.key),
            member=encode_identity_text(report.member),
            devices=[_device_view(d) for d in report.devices],
            pending=[_device_view(d) for d in report.pending],
        )

    @app.get("/v1/identity/{subject}", dependencies=guarded, tags=["identity"])
    async def succession(
        subject: Annotated[str, Path(description="a tn_… identity or a petname")],
    ) -> SuccessionView:
        """Who a key is as a member: the chain of rotated root keys and the devices."""
        found = await node.devices.succession(await node.resolve_identity(subject))
        return SuccessionView(
            key=encode_identity_text(found.key),
            member=encode_identity_text(found.member),
            chain=[
                ChainLinkView(key=encode_identity_text(k), rotated_at_ms=at)
                for k, at in found.chain
            ],
            devices=[_device_view(d) for d in found.devices],
        )

    @app.post("/v1/devices/pair", dependencies=guarded, tags=["identity"], status_code=201)
    async def pair(request: DevicePairRequest) -> PairingView:
        """On a new machine: ask to speak for `root`; returns the code to approve there."""
        made, code = await node.devices.request(await node.resolve_identity(request.root))
        return PairingView(code=code, attestation=attestation_view(made))

    @app.post("/v1/devices/approve", dependencies=guarded, tags=["identity"], status_code=201)
    async def approve(request: DeviceApproveRequest) -> AttestationView:
        """On the root's machine: grant the pending device with this pairing code."""
        return attestation_view(await node.devices.approve(request.code))

    @app.post("/v1/devices/revoke", dependencies=guarded, tags=["identity"], status_code=201)
    async def revoke(request: DeviceRevokeRequest) -> AttestationView:
        """Revoke a device from now on; what it signed before keeps counting."""
        device = await node.resolve_identity(request.device)
        return attestation_view(await node.devices.revoke(device))
