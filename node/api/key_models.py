"""The key side of an explanation, as JSON (SPEC §16-§18; `node.trust.key_history`).

Kept out of `node.api.models` so that the explain view grows by one field;
identities are `tn_…` text and times unix milliseconds, as everywhere.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "DeviceNoteView",
    "KeyHistoryView",
    "KeyNoteView",
    "KeyStepView",
    "RecoveryNoteView",
    "VetoNoteView",
]

KeyRoleCode = Literal["current", "previous", "device"]
RecoveryStateCode = Literal["counts", "waiting", "incomplete", "vetoed", "other"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class KeyNoteView(_Strict):
    """A vouch behind a listed edge that was signed by, or names, another key of its member."""

    issuer: str = Field(description="the member who vouches")
    subject: str = Field(description="the member vouched for")
    signed_by: str = Field(description="the key that signed the vouch")
    signer_role: KeyRoleCode
    about: str = Field(description="the key the vouch names")
    about_role: KeyRoleCode
    issued_at_ms: int


class KeyStepView(_Strict):
    """One succession of the subject's root key."""

    old: str
    new: str
    at_ms: int = Field(description="the rotation's time, or when the recovery took effect")
    how: Literal["rotation", "recovery"]
    custodians: list[str] = Field(description="a recovery's custodians (empty for a rotation)")


class DeviceNoteView(_Strict):
    key: str
    granted_at_ms: int
    cutoff_ms: int | None = Field(description="from when its signatures stop counting")


class VetoNoteView(_Strict):
    key: str = Field(description="the member's key that vetoed")
    at_ms: int


class RecoveryNoteView(_Strict):
    """A recovery naming one of the subject's keys, and where it stands now."""

    old: str
    new: str
    state: RecoveryStateCode
    custodians: list[str]
    k: int | None
    complete_at_ms: int | None
    effective_at_ms: int | None
    vetoed_by: list[VetoNoteView]


class KeyHistoryView(_Strict):
    """Succession, devices and recoveries of the subject; notes on the listed vouches."""

    current: str | None = Field(default=None, description="the subject's root key now")
    chain: list[KeyStepView] = Field(default_factory=list)
    devices: list[DeviceNoteView] = Field(
        default_factory=list, description="devices that speak (or spoke) for it"
    )
    recoveries: list[RecoveryNoteView] = Field(default_factory=list)
    notes: list[KeyNoteView] = Field(default_factory=list)
