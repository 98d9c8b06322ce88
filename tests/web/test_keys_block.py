"""The person page's key block (issue 26): succession in words, peers' text escaped."""

from __future__ import annotations

from node.api.key_models import KeyHistoryView
from node.api.models import ExplanationView
from node.web.pages import _templates

_DAY = 1_793_664_000_000  # 2026-11-03 00:00 UTC
HOSTILE = '<script>alert(1)</script>"\u202e'


def _render(keys: dict[str, object]) -> str:
    explanation = ExplanationView.model_validate({
        "subject": "tn_bobbbbbbbbbbbb", "context": "general", "score": 0.5, "reach": 0.5,
        "wall": 0.0, "flag_penalty": 0.0, "flags": [], "first_hops": [], "paths": [],
        "path_coverage": 1.0, "why_not": None, "keys": KeyHistoryView.model_validate(keys),
    })  # fmt: skip
    template = _templates().get_template("_keys.html")
    return template.render(explanation=explanation, names={}, me="tn_me", prefix="/app")


def test_a_vetoed_recovery_and_an_old_key_vouch_are_shown() -> None:
    html = _render({
        "current": "tn_bob2222222222",
        "recoveries": [{
            "old": "tn_bobbbbbbbbbbbb", "new": "tn_thiefffffffff", "state": "vetoed",
            "custodians": ["tn_c1111111111"], "k": 1, "complete_at_ms": _DAY,
            "effective_at_ms": _DAY, "vetoed_by": [{"key": "tn_phoneeeeeeeee", "at_ms": _DAY}],
        }],
        "notes": [{
            "issuer": "tn_aliceeeeeeeeee", "subject": "tn_bobbbbbbbbbbbb",
            "signed_by": "tn_phoneeeeeeeee", "signer_role": "device",
            "about": "tn_bobbbbbbbbbbbb", "about_role": "previous", "issued_at_ms": _DAY,
        }],
    })  # fmt: skip
    assert "<strong>was vetoed</strong>" in html
    assert "their previous key <code>tn_bobbbbbbb…</code>) on 2026-11-03 00:00 UTC" in html
    assert "signed by their device <code>tn_phoneeeee…</code>" in html
    assert "Signs with <code>tn_bob222222…</code> now." in html


def test_nothing_to_say_renders_nothing() -> None:
    assert _render({"current": "tn_bobbbbbbbbbbbb"}).strip() == ""


def test_peers_text_is_escaped() -> None:
    html = _render({
        "current": HOSTILE,
        "chain": [{"old": HOSTILE, "new": HOSTILE, "at_ms": _DAY, "how": "recovery",
                   "custodians": [HOSTILE]}],
    })  # fmt: skip
    assert "<script>" not in html
    assert "\u202e" not in html


def test_a_time_past_the_calendar_renders() -> None:
    """A device grant's expiry may be 2^53 - 1 ms: the page says so instead of a 500."""
    html = _render({
        "current": "tn_bobbbbbbbbbbbb",
        "devices": [{"key": "tn_phoneeeeeeeee", "granted_at_ms": _DAY, "cutoff_ms": 2**53 - 1}],
    })  # fmt: skip
    assert "revoked after 9999" in html
