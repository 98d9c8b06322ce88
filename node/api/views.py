"""From the node's results to the API models, and from request text to protocol values.

Shared by the HTTP API and the CLI, so `trustnode score --json` prints exactly
what `GET /v1/score/{subject}` returns, whichever path answered.
"""

from __future__ import annotations

from node.api.key_models import (
    DeviceNoteView,
    KeyHistoryView,
    KeyNoteView,
    KeyRoleCode,
    KeyStepView,
    RecoveryNoteView,
    RecoveryStateCode,
    VetoNoteView,
)
from node.api.models import (
    AttestationView,
    ClaimView,
    ExplanationView,
    FirstHopView,
    FlagView,
    ImportReportView,
    MemberScore,
    PathView,
    PeerView,
    RankingView,
    RaterView,
    RatingView,
    RejectedView,
    StatusView,
)
from node.errors import RequestError
from node.service.attestation_json import attestation_to_json
from node.service.records import NodeStatus, PeerInfo
from node.store import IngestReport, Outcome
from node.trust import ClaimDecision, RatingSummary, TrustExplanation
from node.trust.key_history import KeyHistory, KeyRole, RecoveryState
from protocol.attestation import Attestation
from protocol.errors import DecodeError
from protocol.identity import IdentityId, decode_identity_text, encode_identity_text
from protocol.statement import Subject, Thing

__all__ = [
    "attestation_view",
    "claim_view",
    "explanation_view",
    "import_report_view",
    "parse_identity",
    "parse_subject",
    "peer_view",
    "ranking_view",
    "rating_view",
    "status_view",
    "subject_text",
]


def parse_identity(text: str) -> IdentityId:
    """A `tn_…` identity, or `RequestError("bad_identity")`."""
    try:
        return decode_identity_text(text)
    except DecodeError as exc:
        message = f"{text!r:.80} is not an identity: {exc.reason.value}"
        raise RequestError("bad_identity", message) from None


def parse_subject(text: str) -> Subject:
    """An identity (`tn_…`) or a thing's URI (ratings may be about things)."""
    return parse_identity(text) if text.startswith("tn_") else Thing(text)


def subject_text(subject: Subject) -> str:
    """A subject as the API shows it: `tn_…` text or the thing's URI."""
    return subject if isinstance(subject, str) else encode_identity_text(subject)


def _name(identity: IdentityId) -> str:
    return encode_identity_text(identity)


def attestation_view(attestation: Attestation) -> AttestationView:
    """Every field of a verified attestation."""
    return AttestationView(**attestation_to_json(attestation))


def explanation_view(explanation: TrustExplanation) -> ExplanationView:
    """A score with its evidence."""
    why_not = explanation.why_not
    return ExplanationView(
        subject=_name(explanation.subject),
        context=explanation.context,
        score=explanation.score,
        reach=explanation.reach,
        wall=explanation.wall,
        flag_penalty=explanation.flag_penalty,
        flags=[FlagView(flagger=_name(f), strength=s, removed=r) for f, s, r in explanation.flags],
        first_hops=[FirstHopView(via=_name(v), share=s) for v, s in explanation.first_hops],
        paths=[PathView(route=[_name(n) for n in r], share=s) for r, s in explanation.paths],
        path_coverage=explanation.path_coverage,
        why_not=None if why_not is None else why_not.value,
        keys=key_history_view(explanation.keys),
    )


_ROLES: dict[KeyRole, KeyRoleCode] = {
    KeyRole.CURRENT: "current",
    KeyRole.PREVIOUS: "previous",
    KeyRole.DEVICE: "device",
}
_STATES: dict[RecoveryState, RecoveryStateCode] = {
    RecoveryState.COUNTS: "counts", RecoveryState.WAITING: "waiting",
    RecoveryState.INCOMPLETE: "incomplete", RecoveryState.VETOED: "vetoed",
    RecoveryState.OTHER: "other",
}  # fmt: skip


def key_history_view(history: KeyHistory) -> KeyHistoryView:
    """Succession, devices, recoveries and key notes, as JSON (`node.trust.key_history`)."""
    return KeyHistoryView(
        current=None if history.current is None else _name(history.current),
        chain=[
            KeyStepView(old=_name(s.old), new=_name(s.new), at_ms=s.at_ms,
                        how="recovery" if s.how == "recovery" else "rotation",
                        custodians=[_name(c) for c in s.custodians])
            for s in history.chain
        ],
        devices=[DeviceNoteView(key=_name(d), granted_at_ms=g, cutoff_ms=c)
                 for d, g, c in history.devices],
        recoveries=[
            RecoveryNoteView(
                old=_name(r.old), new=_name(r.new), state=_STATES[r.state],
                custodians=[_name(c) for c in r.custodians], k=r.k,
                complete_at_ms=r.complete_at_ms, effective_at_ms=r.effective_at_ms,
                vetoed_by=[VetoNoteView(key=_name(k), at_ms=at) for k, at in r.vetoed_by],
            )
            for r in history.recoveries
        ],
        notes=[
            KeyNoteView(
                issuer=_name(n.issuer), subject=_name(n.subject), signed_by=_name(n.signed_by),
                signer_role=_ROLES[n.signer_role], about=_name(n.about),
                about_role=_ROLES[n.about_role], issued_at_ms=n.issued_at_ms,
            )
            for n in history.notes
        ],
    )  # fmt: skip


def claim_view(decision: ClaimDecision) -> ClaimView:
    """A claim decision with the certifiers and the chains that counted."""
    return ClaimView(
        subject=_name(decision.subject),
        claim=decision.claim,
        accepted=decision.accepted,
        required=decision.required,
        independent=decision.independent,
        certifiers=[_name(c) for c in decision.certifiers],
        paths=[[_name(n) for n in path] for path in decision.paths],
        own_certification=decision.own_certification,
    )


def rating_view(
    subject: str, context: str, summary: RatingSummary, raters: list[IdentityId]
) -> RatingView:
    """A weighted rating with its raters (identities in the summary's order)."""
    counted = [
        RaterView(rater=_name(rater), value=value, weight=weight)
        for rater, (_, value, weight) in zip(raters, summary.counted, strict=True)
    ]
    return RatingView(
        subject=subject,
        context=context,
        value=summary.value,
        total_weight=summary.total_weight,
        counted=counted,
        ignored=summary.ignored,
    )


def ranking_view(context: str, ranking: list[tuple[IdentityId, float]]) -> RankingView:
    """The members we trust most."""
    return RankingView(
        context=context, members=[MemberScore(identity=_name(i), score=s) for i, s in ranking]
    )


def peer_view(peer: PeerInfo) -> PeerView:
    """One connected peer."""
    return PeerView(
        identity=_name(peer.identity),
        dialled=peer.dialled,
        eager=peer.eager,
        last_sync_age_s=peer.last_sync_age_s,
    )


def status_view(status: NodeStatus) -> StatusView:
    """The node's health."""
    return StatusView(
        identity=_name(status.identity),
        community_id=status.community_id.hex(),
        listen=status.listen,
        advertised=list(status.advertised),
        reachability=status.reachability,
        peers=status.peers,
        active_addresses=list(status.active_addresses),
        passive_addresses=status.passive_addresses,
        attestations=status.attestations,
        heads=status.heads,
        store_bytes=status.store_bytes,
        stored_from_peers=status.stored_from_peers,
        payload_bytes_received=status.payload_bytes_received,
        protocol_errors=status.protocol_errors,
        store_errors=status.store_errors,
        relay_refused=status.relay_refused,
        dial_failures=status.dial_failures,
        last_sync_age_s=status.last_sync_age_s,
        uptime_s=status.uptime_s,
        invite_refusals=status.invite_refusals,
    )


def import_report_view(report: IngestReport) -> ImportReportView:
    """Counts per outcome, and why each rejected envelope was refused."""
    return ImportReportView(
        new=report.counts[Outcome.NEW],
        duplicate=report.counts[Outcome.DUPLICATE],
        superseded=report.counts[Outcome.SUPERSEDED],
        rejected=[
            RejectedView(index=i.index, reason=i.reason.value if i.reason else "rejected")
            for i in report.items
            if i.outcome is Outcome.REJECTED
        ],
    )
