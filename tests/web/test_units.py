"""The web app's pure parts: inert text, the explanation picture, login secrets."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from node.api.models import ExplanationView, FirstHopView, FlagView, PathView
from node.web.picture import draw_explanation
from node.web.security import Logins, allowed_hosts
from node.web.text import visible


@given(st.text())
def test_visible_leaves_no_control_or_format_character(text: str) -> None:
    shown = visible(text)
    assert all(unicodedata.category(c) not in {"Cc", "Cf"} for c in shown)


@given(st.text(alphabet=st.characters(exclude_categories=("Cc", "Cf"))))
def test_visible_keeps_ordinary_text_as_it_is(text: str) -> None:
    assert visible(text) == text


def test_a_bidi_override_is_shown_not_obeyed() -> None:
    assert visible("abc\u202egpj.exe") == "abc⟨U+202E⟩gpj.exe"


def _view(**changes: object) -> ExplanationView:
    base = {
        "subject": "tn_them", "context": "general", "score": 0.5, "reach": 0.6, "wall": 0.0,
        "flag_penalty": 0.0, "flags": [], "path_coverage": 0.8, "why_not": None,
        "first_hops": [FirstHopView(via="tn_a", share=0.3), FirstHopView(via="tn_them", share=0.2)],
        "paths": [PathView(route=["tn_me", "tn_a", "tn_them"], share=0.3),
                  PathView(route=["tn_me", "tn_them"], share=0.2)],
    }  # fmt: skip
    return ExplanationView.model_validate({**base, **changes})


def test_the_picture_puts_me_first_them_last_and_widths_follow_shares() -> None:
    picture = draw_explanation(_view(), me="tn_me")
    where = {s.identity: s for s in picture.spots}
    assert where["tn_me"].x < where["tn_a"].x < where["tn_them"].x
    assert where["tn_me"].label == "me"
    widths = {(e.x1, e.x2): e for e in picture.edges}
    via = widths[(where["tn_me"].x, where["tn_a"].x)]
    direct = widths[(where["tn_me"].x, where["tn_them"].x)]
    assert via.width > direct.width
    assert direct.bend > 0
    assert via.bend == 0
    assert "2 strongest routes" in picture.summary


def test_flaggers_are_drawn_and_marked() -> None:
    flagged = _view(flags=[FlagView(flagger="tn_f", strength=0.5, removed=0.1)], why_not="flagged")
    picture = draw_explanation(flagged, me="tn_me")
    assert [s.role for s in picture.spots if s.identity == "tn_f"] == ["flagger"]
    assert any(e.flag for e in picture.edges)
    assert picture.summary.startswith("Flags outweigh")


def test_a_login_secret_is_good_once_and_expires() -> None:
    now = [0.0]
    logins = Logins(clock=lambda: now[0])
    secret = logins.new_secret()
    session = logins.redeem(secret)
    assert session is not None
    assert logins.session(session) is not None
    assert logins.redeem(secret) is None
    late = logins.new_secret()
    now[0] += 301
    assert logins.redeem(late) is None
    now[0] += 13 * 3600
    assert logins.session(session) is None


def test_only_our_own_addresses_are_hosts() -> None:
    hosts = allowed_hosts(("127.0.0.1", 8080))
    assert "127.0.0.1:8080" in hosts
    assert "localhost:8080" in hosts
    assert "evil.example:8080" not in hosts
    assert "127.0.0.1:8081" not in hosts
    assert allowed_hosts(None) == frozenset()
