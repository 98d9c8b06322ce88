"""The JSON shapes of the local HTTP API (and of the CLI's `--json`), as pydantic models.

One set of models serves three purposes: FastAPI validates requests with them
(hostile input stops here with a typed 422), generates the OpenAPI document
from them, and the CLI prints the same shapes whether it asked the daemon or
read the store itself. Identities are `tn_…` text, bytes are hex, times are
unix milliseconds, scores are floats in [0, 1].
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from node.api.key_models import KeyHistoryView
from node.net.addresses import is_wildcard_host

__all__ = [
    "AttestationView",
    "CertificateView",
    "CertifyRequest",
    "ClaimView",
    "ConnectRequest",
    "DistrustRequest",
    "ErrorView",
    "ExplanationView",
    "FoundView",
    "ImportReportView",
    "ImportRequest",
    "InviteRequest",
    "InviteView",
    "NameView",
    "PeerView",
    "PetnameRequest",
    "PetnameView",
    "ProfileRequest",
    "RankingView",
    "RateRequest",
    "RatingView",
    "RevokeRequest",
    "ScoreView",
    "StatusView",
    "TrustRequest",
]

# The text form (SPEC §1), or a unique prefix of a known one (tn_ and 6+ characters,
# perhaps ending in the … of a shortened label); the node resolves and checks it.
IDENTITY_PATTERN = r"^tn_[a-z2-7]{6,58}…?$"
# ... or a petname of ours: text that does not start with tn_ and holds no control
# character (spelt without look-ahead, which the validator's engine lacks); the
# node checks the rest of the label rules (SPEC §3.4) and looks it up.
_NOT_TN = r"[^t\x00-\x1f\x7f]|t[^n\x00-\x1f\x7f]|tn[^_\x00-\x1f\x7f]"
IDENTITY_OR_PETNAME_PATTERN = rf"^(tn_[a-z2-7]{{6,58}}…?|t|tn|({_NOT_TN})[^\x00-\x1f\x7f]{{0,63}})$"
NAME_PATTERN = r"^[a-z0-9][a-z0-9._:/-]{0,63}$"  # contexts and claims (SPEC §3.2)
# An identity, a thing's URI, or a petname of ours (the node tries a petname first).
SUBJECT_PATTERN = (
    rf"^(tn_[a-z2-7]{{6,58}}…?|[a-z][a-z0-9+.-]*:[!-~]+|t|tn|({_NOT_TN})[^\x00-\x1f\x7f]{{0,63}})$"
)
REFERENCE_PATTERN = r"^[!-~]{1,256}$"
HEX_PATTERN = r"^([0-9a-fA-F]{2})+$"
ADDRESS_PATTERN = r"^[!-~]+:[0-9]{1,5}$"  # ConnectRequest's (spelt out there)
# What each pattern means, for people: an error message never shows a regular expression.
PATTERN_WORDS = {
    IDENTITY_PATTERN: "a tn_ identity: tn_ and 58 letters and digits 2 to 7 (or at least 6 "
    "of them, to name one this node knows)",
    IDENTITY_OR_PETNAME_PATTERN: "a tn_ identity (tn_ and 58 letters and digits 2 to 7, or at "
    "least 6 of them) or a petname you gave (up to 64 characters, no control characters)",
    NAME_PATTERN: "a name: 1 to 64 lowercase letters, digits and . _ : / -, starting with a "
    "letter or digit",
    SUBJECT_PATTERN: "a tn_ identity (or at least 6 of its characters), a thing's URI "
    "(a lowercase scheme, a colon, then visible ASCII) or a petname you gave (up to 64 "
    "characters, no control characters)",
    REFERENCE_PATTERN: "1 to 256 visible ASCII characters",
    HEX_PATTERN: "hexadecimal, two digits a byte",
    ADDRESS_PATTERN: "host:port",
}
Identity = Annotated[
    str, Field(pattern=IDENTITY_OR_PETNAME_PATTERN, description="a tn_… identity or a petname")
]
Label = Annotated[str, Field(min_length=1, max_length=64, description="SPEC §3.4: NFC, no "
                             "control, bidi or format character; the node checks")]  # fmt: skip
SubjectText = Annotated[
    str, Field(max_length=512, pattern=SUBJECT_PATTERN,
               description="a tn_… identity, a thing's URI or a petname")
]  # fmt: skip
Context = Annotated[str, Field(pattern=NAME_PATTERN, description="e.g. carpool")]
Claim = Annotated[str, Field(pattern=NAME_PATTERN, description="e.g. resident:rue-des-lilas")]
ExpiresIn = Annotated[int | None, Field(default=None, ge=1, le=100 * 365 * 86_400)]
MAX_IMPORT = 10_000


class _Strict(BaseModel):
    # No coercion: `"single_use": 0` is not a boolean, `"value": "5"` not a number.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ErrorDetail(_Strict):
    code: str = Field(description="stable, for scripts: unauthorized, bad_value, not_found, ...")
    message: str


class ErrorView(_Strict):
    """Every error response."""

    error: ErrorDetail


class NameView(_Strict):
    """How this node names an identity (petname, contacts', self-claimed, or the id)."""

    label: str = Field(description='what to show: Grace (yours), "Grace" per alice '
                       "(your contacts'), ~Grace (self-claimed), else the short id")  # fmt: skip
    source: Literal["petname", "contacts", "self", "id"]
    name: str | None = Field(description="the name without its mark")
    given_by: list[str] = Field(description="for contacts: who gave it, most trusted first")
    warnings: list[str] = Field(description="impostor warnings: a name that reads like "
                                "the name of another identity you trust")  # fmt: skip
    resembles: list[str] = Field(description="the identities those names belong to")


class AttestationView(_Strict):
    """A verified attestation; fields that its kind lacks are null."""

    id: str
    kind: Literal["trust", "certify", "rate", "revoke", "profile"]
    issuer: str
    issued_at_ms: int
    expires_at_ms: int | None
    subject: str
    context: str | None = None
    value: int | None = None
    claim: str | None = None
    commitment: str | None = None
    reference: str | None = None
    target_kind: str | None = None
    scope: str | None = None
    name: str | None = Field(default=None, description="a profile's name, a vouch's name")
    about: str | None = None
    issuer_name: NameView | None = Field(default=None, description="how this node names it")
    subject_name: NameView | None = Field(default=None, description="(identities only)")
    slot_id: str
    envelope: str = Field(description="the signed envelope, hex: anyone can verify it")


class TrustRequest(_Strict):
    subject: Identity
    value: int = Field(default=50, ge=1, le=100, description="strength of the vouch")
    context: Context = "general"
    expires_in_s: ExpiresIn = None
    name: Label | None = Field(default=None, description="what you know them by (it travels)")


class PetnameRequest(_Strict):
    subject: Identity
    name: Label


class PetnameView(_Strict):
    identity: str
    petname: str


class ProfileRequest(_Strict):
    name: Label
    about: Annotated[str | None, Field(default=None, min_length=1, max_length=140)] = None


class FoundView(_Strict):
    identity: str
    name: NameView
    score: float


class DistrustRequest(_Strict):
    subject: Identity
    value: int = Field(default=100, ge=1, le=100, description="strength of the flag")
    context: Context = "general"
    expires_in_s: ExpiresIn = None


class CertifyRequest(_Strict):
    subject: Identity
    claim: Claim
    private_value: Annotated[str | None, Field(default=None, max_length=1024)] = None
    expires_in_s: ExpiresIn = None


class CertificateView(_Strict):
    attestation: AttestationView
    salt: str | None = Field(description="opens the commitment; give it to the subject only")


class RateRequest(_Strict):
    subject: SubjectText
    value: int = Field(ge=-100, le=100)
    context: Context = "general"
    reference: Annotated[str | None, Field(default=None, pattern=REFERENCE_PATTERN)] = None
    expires_in_s: ExpiresIn = None


class RevokeRequest(_Strict):
    kind: Literal["trust", "certify", "rate"]
    subject: SubjectText
    scope: Annotated[str, Field(pattern=NAME_PATTERN, description="context or claim")]


class ScoreView(_Strict):
    subject: str
    context: str
    score: float = Field(
        description="how far we trust it, 0..1: our walk of vouches corroborated by the"
        " members we stand behind (node.trust.consensus)"
    )
    name: NameView | None = None


class FlagView(_Strict):
    flagger: str
    strength: float
    removed: float


class FirstHopView(_Strict):
    via: str
    share: float


class PathView(_Strict):
    route: list[str]
    share: float


class ExplanationView(_Strict):
    subject: str
    context: str
    score: float
    reach: float
    wall: float
    flag_penalty: float
    flags: list[FlagView]
    first_hops: list[FirstHopView] = Field(description="our direct contacts; shares sum to score")
    paths: list[PathView] = Field(description="the strongest routes, strongest first")
    path_coverage: float
    why_not: Literal["unknown", "no_path", "walled", "flagged"] | None
    keys: KeyHistoryView = Field(
        default_factory=KeyHistoryView,
        description="the subject's keys (rotations, recoveries, devices, vetoed recoveries)"
        " and the vouches above that were signed by or name another key of their member",
    )
    names: dict[str, NameView] = Field(
        default_factory=dict, description="how this node names the identities above"
    )


class ClaimView(_Strict):
    subject: str
    claim: str
    accepted: bool
    required: int
    independent: int
    certifiers: list[str]
    paths: list[list[str]]
    own_certification: bool = Field(
        default=False, description="accepted because this node's member certified it"
    )
    names: dict[str, NameView] = Field(
        default_factory=dict, description="how this node names the identities above"
    )


class RaterView(_Strict):
    rater: str
    value: float
    weight: float


class RatingView(_Strict):
    subject: str
    context: str
    value: float | None
    total_weight: float
    counted: list[RaterView]
    ignored: int
    names: dict[str, NameView] = Field(
        default_factory=dict, description="how this node names the identities above"
    )


class MemberScore(_Strict):
    identity: str
    score: float
    name: NameView | None = None


class RankingView(_Strict):
    context: str
    members: list[MemberScore]


class PeerView(_Strict):
    identity: str
    dialled: bool
    eager: bool
    last_sync_age_s: float | None
    name: NameView | None = Field(default=None, description="how this node names the peer")


class StatusView(_Strict):
    identity: str
    community_id: str
    listen: str | None
    advertised: list[str] = Field(
        description="where this node tells peers to dial it (invites, peer exchange)"
    )
    reachability: str | None = Field(
        default=None,
        description='"reachable at host:port" or "behind NAT; ..." as peers found by dialling '
        "back (null without [network] reachability_checks)",
    )
    peers: int
    active_addresses: list[str]
    passive_addresses: int
    attestations: int
    heads: int
    store_bytes: int
    stored_from_peers: int
    payload_bytes_received: int
    protocol_errors: int
    store_errors: int
    relay_refused: int
    dial_failures: int
    last_sync_age_s: float | None = Field(description="since a reconciliation last ended")
    uptime_s: float
    invite_refusals: str | None = Field(
        default=None,
        description="redeems of this node's single-use invites it refused in the last 24 h, "
        'in words: "1 invite redemption refused in the last 24 h: already used" (null: none)',
    )


class ImportRequest(_Strict):
    envelopes: list[Annotated[str, Field(max_length=2048, pattern=HEX_PATTERN)]] = Field(
        max_length=MAX_IMPORT, description="signed envelopes, hex"
    )


class RejectedView(_Strict):
    index: int
    reason: str


class ImportReportView(_Strict):
    new: int
    duplicate: int
    superseded: int
    rejected: list[RejectedView]


PeerAddress = Annotated[
    str, Field(max_length=300, pattern=r"^[!-~]+:[0-9]{1,5}$", description="host:port")
]


class InviteRequest(_Strict):
    expires_in_s: ExpiresIn = 7 * 86_400
    single_use: bool = False
    advertise: Annotated[
        list[PeerAddress],
        Field(max_length=8, description="addresses to invite to instead of the node's own"),
    ] = []


class InviteView(_Strict):
    code: str
    addresses: list[str] = Field(description="where the invite tells a joiner to dial")
    warnings: list[str] = Field(description="why the invite may not work for a neighbour")


def _dialable(address: str) -> str:
    """`host:port` that a node could dial: port 1..65535, an IP literal (IPv6 in
    brackets) or a host name of RFC 1123 labels. Refused with 422, not accepted and
    failing later (a port of 99999 used to answer 409 `not_configured`; a wildcard
    answered 202 and was then silently never dialled)."""
    host, _, port = address.rpartition(":")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError("the port must be 1..65535 (0 is where a node listens, not dials)")
    if is_wildcard_host(host.removeprefix("[").removesuffix("]")):
        raise ValueError(
            "0.0.0.0 and :: are where a node listens, never an address to dial: "
            "give the peer's own address"
        )
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError("not an IPv6 address in brackets") from None
        return address
    if not _HOST_NAME.fullmatch(host) or len(host) > 253:
        raise ValueError("the host must be an IPv4 address, [IPv6] or a host name")
    if host.replace(".", "").isdigit():  # looks numeric: must then be a real IPv4 address
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ValueError("not an IPv4 address") from None
    return address


_HOST_NAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?")


class ConnectRequest(_Strict):
    address: Annotated[
        str,
        Field(max_length=300, pattern=r"^[!-~]+:[0-9]{1,5}$", description="host:port"),
        AfterValidator(_dialable),
    ]
