"""`explain`'s key lines say succession in words and render hostile text as text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.api.key_models import KeyHistoryView
from node.api.models import ExplanationView, NameView
from node.cli.render_keys import key_lines, when
from tests.service.test_render import assert_inert, hostile, shown

_DAY = 1_793_664_000_000  # 2026-11-03 00:00 UTC


def _view(keys: dict[str, object], names: dict[str, NameView] | None = None) -> ExplanationView:
    return ExplanationView.model_validate({
        "subject": "tn_bobbbbbbbbbbbb", "context": "general", "score": 0.5, "reach": 0.5,
        "wall": 0.0, "flag_penalty": 0.0, "flags": [], "first_hops": [], "paths": [],
        "path_coverage": 1.0, "why_not": None, "keys": KeyHistoryView.model_validate(keys),
        "names": names or {},
    })  # fmt: skip


def _note(**changes: object) -> dict[str, object]:
    note: dict[str, object] = {
        "issuer": "tn_aliceeeeeeeeee", "subject": "tn_bobbbbbbbbbbbb",
        "signed_by": "tn_aliceeeeeeeeee", "signer_role": "current",
        "about": "tn_bobbbbbbbbbbbb", "about_role": "previous", "issued_at_ms": _DAY,
    }  # fmt: skip
    return note | changes


def test_when_is_utc() -> None:
    assert when(_DAY) == "2026-11-03 00:00 UTC"


def test_a_vouch_for_a_previous_key_reads_as_such() -> None:
    out = shown(*key_lines(_view({"current": "tn_bob2222222222", "notes": [_note()]})))
    assert "vouched for tn_bobbbbbb…'s previous key tn_bobbbbbb… on 2026-11-03" in out
    assert "signs with tn_bob22222… now" in out


def test_a_vouch_signed_by_a_device_reads_as_such() -> None:
    note = _note(signed_by="tn_phoneeeeeeeee", signer_role="device", about_role="current")
    out = shown(*key_lines(_view({"current": "tn_bobbbbbbbbbbbb", "notes": [note]})))
    assert "vouched for tn_bobbbbbb… on 2026-11-03" in out
    assert "signed by tn_aliceeee…'s device tn_phoneeee…" in out


def test_a_vetoed_recovery_is_shown() -> None:
    recovery = {
        "old": "tn_bobbbbbbbbbbbb", "new": "tn_thiefffffffff", "state": "vetoed",
        "custodians": ["tn_c1111111111", "tn_c2222222222"], "k": 2,
        "complete_at_ms": _DAY, "effective_at_ms": _DAY + 72 * 3600_000,
        "vetoed_by": [{"key": "tn_phoneeeeeeeee", "at_ms": _DAY + 3600_000}],
    }  # fmt: skip
    out = shown(*key_lines(_view({"current": "tn_bobbbbbbbbbbbb", "recoveries": [recovery]})))
    assert "to tn_thieffff…" in out
    assert "was vetoed by tn_phoneeee… on 2026-11-03 01:00 UTC: it does not count" in out


def test_nothing_to_say_says_nothing() -> None:
    assert key_lines(_view({"current": "tn_bobbbbbbbbbbbb"})) == []


@pytest.mark.slow
@given(who=hostile, label=hostile, state=st.sampled_from(
    ["counts", "waiting", "incomplete", "vetoed", "other"]))  # fmt: skip
def test_hostile_text_stays_text(who: str, label: str, state: str) -> None:
    recovery = {
        "old": who, "new": who, "state": state, "custodians": [who], "k": 1,
        "complete_at_ms": _DAY, "effective_at_ms": _DAY,
        "vetoed_by": [{"key": who, "at_ms": _DAY}],
    }  # fmt: skip
    step = {"old": who, "new": who, "at_ms": _DAY, "how": "recovery", "custodians": [who]}
    name = NameView(
        label=label, source="petname", name=label, given_by=[], warnings=[], resembles=[]
    )
    keys: dict[str, object] = {
        "current": "tn_other", "chain": [step, {**step, "how": "rotation"}],
        "devices": [{"key": who, "granted_at_ms": _DAY, "cutoff_ms": _DAY}],
        "recoveries": [recovery],
        "notes": [_note(issuer=who, subject=who, about_role="device", signer_role="previous")],
    }  # fmt: skip
    out = shown(*key_lines(_view(keys, {who: name})))
    assert_inert(out, label)


def test_a_time_past_the_calendar_is_said_not_raised() -> None:
    """A grant may expire as late as 2^53 - 1 ms (SPEC §2), 285 000 years on: a member's
    own statement must not stop `explain` of it (datetime ends at 9999)."""
    assert when(2**53 - 1) == "after 9999"
    device = {"key": "tn_phoneeeeeeeee", "granted_at_ms": _DAY, "cutoff_ms": 2**53 - 1}
    out = shown(*key_lines(_view({"current": "tn_bobbbbbbbbbbbb", "devices": [device]})))
    assert "revoked after 9999" in out
