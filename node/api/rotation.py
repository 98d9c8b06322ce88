"""The HTTP routes of a node's own key rotation (SPEC §17; `node.service.rotation`)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from node.api.models import AttestationView
from node.api.views import attestation_view, parse_identity
from node.service import Node
from node.service.rotation import RotationReport
from protocol.identity import encode_identity_text

__all__ = ["KeyView", "RotateRequest", "add_rotation_routes"]


class KeyView(BaseModel):
    """This node's signing key, its next key and the statement a call published."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    key: str = Field(description="the key this node signs with")
    next_key: str | None = Field(description="the next key kept in the data directory")
    committed: bool = Field(description="the store holds exactly one commitment, to next_key")
    statement: AttestationView | None = Field(
        default=None, description="the commitment or rotation this call published"
    )


class RotateRequest(BaseModel):
    """What `POST /v1/key/rotate` may say: the key lost, when it is not this node's."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    lost: str | None = Field(
        default=None,
        description="a lost root key (tn_…) to rotate with the next key restored here, "
        "instead of this node's own key",
    )


def _key_view(report: RotationReport) -> KeyView:
    return KeyView(
        key=encode_identity_text(report.key),
        next_key=None if report.next_key is None else encode_identity_text(report.next_key),
        committed=report.committed,
        statement=None if report.statement is None else attestation_view(report.statement),
    )


def add_rotation_routes(app: FastAPI, node: Node, guarded: list[Any]) -> None:
    """Install `/v1/key`, `/v1/key/commit` and `/v1/key/rotate` on `app`."""

    @app.get("/v1/key", dependencies=guarded, tags=["identity"])
    async def key() -> KeyView:
        """This node's key, and whether a next key is kept and committed to."""
        return _key_view(await node.keys.report())

    @app.post("/v1/key/commit", dependencies=guarded, tags=["identity"], status_code=201)
    async def commit() -> KeyView:
        """Make (or reuse) the next key and publish the one commitment to it."""
        return _key_view(await node.keys.commit())

    @app.post("/v1/key/rotate", dependencies=guarded, tags=["identity"], status_code=201)
    async def rotate(request: RotateRequest | None = None) -> KeyView:
        """Reveal the next key: it signs the rotation, commits to a new one, signs from now.

        With `lost`, the next key rotates that lost root key instead (a new
        machine with the paper next key restored), and this node signs as its
        successor from now on.
        """
        lost = None if request is None or request.lost is None else parse_identity(request.lost)
        return _key_view(await node.keys.rotate(lost=lost))
