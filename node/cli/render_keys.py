"""The key side of `trustnode explain`, in words (SPEC §16-§18; `node.trust.key_history`).

"Alice vouched for Bob's previous key tn_… on 2026-11-03", "signed by
Alice's device tn_…", "a recovery of Bob's key to tn_… was vetoed by tn_…":
the engine reasons on members, and these lines say which keys carried the
trust. Same door as `node.cli.render`: identities, names and keys are data,
filled into `line()` templates as fields, never markup.
"""

from __future__ import annotations

from datetime import UTC, datetime

from rich.text import Text

from node.api.key_models import KeyHistoryView, KeyNoteView, RecoveryNoteView
from node.api.models import ExplanationView, NameView
from node.cli.render import line, named, short

__all__ = ["key_lines", "when"]


def when(ms: int) -> str:
    """A statement's time as people read it, in UTC (minutes: waits are in hours).

    Times are the signer's, up to 2^53 - 1 ms (SPEC §2): past the calendar's year
    9999 (a grant that "expires" 285 000 years on) this says so instead of raising."""
    try:
        return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    except (OverflowError, ValueError, OSError):
        return "after 9999"


def key_lines(view: ExplanationView) -> list[Text]:
    """Succession, devices, recoveries and the vouches carried by other keys; [] if none."""
    keys, names = view.keys, view.names
    lines: list[Text] = []
    if keys.current is not None and keys.current != view.subject:
        lines.append(line("    {who} signs with {key} now", who=_who(view.subject, names),
                          key=short(keys.current)))  # fmt: skip
    lines += _chain_lines(keys, view.subject, names)
    lines += [_recovery_line(r, view.subject, names) for r in keys.recoveries
              if r.state != "counts"]  # fmt: skip
    lines += [_note_line(n, names) for n in keys.notes]
    return [line("  keys:"), *lines] if lines else []


def _who(identity: str, names: dict[str, NameView]) -> str:
    return named(identity, names.get(identity))


def _chain_lines(keys: KeyHistoryView, subject: str, names: dict[str, NameView]) -> list[Text]:
    lines: list[Text] = []
    who = _who(subject, names)
    for step in keys.chain:
        if step.how == "recovery":
            lines.append(line(
                "    {who}'s key {old} was recovered to {new} on {at}, by {n} custodians: "
                "{custodians}", who=who, old=short(step.old), new=short(step.new),
                at=when(step.at_ms), n=len(step.custodians),
                custodians=", ".join(_who(c, names) for c in step.custodians),
            ))  # fmt: skip
        else:
            lines.append(line(
                "    {who} rotated from {old} to {new} on {at}", who=who,
                old=short(step.old), new=short(step.new), at=when(step.at_ms),
            ))  # fmt: skip
    for device in keys.devices:
        until = "" if device.cutoff_ms is None else f", revoked {when(device.cutoff_ms)}"
        lines.append(line("    device {key} speaks for {who} since {at}{until}",
                          key=short(device.key), who=who, at=when(device.granted_at_ms),
                          until=until))  # fmt: skip
    return lines


def _recovery_line(recovery: RecoveryNoteView, subject: str, names: dict[str, NameView]) -> Text:
    custodians = ", ".join(_who(c, names) for c in recovery.custodians) or "nobody"
    head = line("    a recovery of {who}'s key {old} to {new} by {custodians} ",
                who=_who(subject, names), old=short(recovery.old), new=short(recovery.new),
                custodians=custodians)  # fmt: skip
    if recovery.state == "vetoed":
        vetoes = "; ".join(f"{short(v.key)} on {when(v.at_ms)}" for v in recovery.vetoed_by)
        tail = line("[bold]was vetoed[/] by {vetoes}: it does not count", vetoes=vetoes)
    elif recovery.state == "waiting" and recovery.effective_at_ms is not None:
        tail = line("takes effect on {at} unless a key of theirs vetoes it",
                    at=when(recovery.effective_at_ms))  # fmt: skip
    elif recovery.state == "incomplete":
        needed = "no designation in force" if recovery.k is None else f"{recovery.k} needed"
        tail = line("has {n} custodians ({needed}): it does not count",
                    n=len(recovery.custodians), needed=needed)  # fmt: skip
    else:
        tail = line("is complete, but another successor of that key came first")
    return Text.assemble(head, tail)


def _note_line(note: KeyNoteView, names: dict[str, NameView]) -> Text:
    subject = _who(note.subject, names)
    about = {
        "previous": line("{who}'s previous key {key}", who=subject, key=short(note.about)),
        "device": line("{who}'s device {key}", who=subject, key=short(note.about)),
    }.get(note.about_role, line("{who}", who=subject))
    issuer = _who(note.issuer, names)
    said = line("    {issuer} vouched for ", issuer=issuer)
    dated = line(" on {at}", at=when(note.issued_at_ms))
    signer = {
        "device": line(", signed by {issuer}'s device {key}", issuer=issuer,
                       key=short(note.signed_by)),
        "previous": line(", signed by {issuer}'s previous key {key}", issuer=issuer,
                         key=short(note.signed_by)),
    }.get(note.signer_role, Text(""))  # fmt: skip
    return Text.assemble(said, about, dated, signer)
