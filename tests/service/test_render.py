"""Every human-readable CLI view renders hostile text as text (node.cli.render).

Strings that came from a store, a peer or an import may hold rich markup
(`urn:[/]` crashed the CLI), emoji codes (`urn:x:y` was shown as `urn❌y`),
terminal escape sequences or bidirectional overrides. Whatever they hold, every
view must render without an error, show the data as it is (markup and emoji
codes verbatim, invisible characters as visible escapes) and let nothing reach
the terminal that it would act on.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console, RenderableType

from node.api.models import (
    AttestationView,
    ClaimView,
    ExplanationView,
    FirstHopView,
    FlagView,
    FoundView,
    ImportReportView,
    MemberScore,
    NameView,
    PathView,
    PeerView,
    RankingView,
    RaterView,
    RatingView,
    RejectedView,
    ScoreView,
    StatusView,
)
from node.cli import render
from node.cli.common import EXIT_UNAVAILABLE, fail
from node.cli.render import clean, short
from protocol.identity import IdentityKey
from protocol.label import is_label
from tests.strategies import labels

pytestmark = pytest.mark.slow  # hypothesis: a few hundred renderings per view

_PIECES = [
    "[/]", "[bold red]", "[/bold]", "[link=https://x]", "[", "]", "\\", "\\[b]", ":x:",
    ":thumbs_up:", ":", "\x1b[31m", "\x1b]8;;http://evil\x1b\\", "\u202e", "\u2066", "\u200b",
    "\x00", "\r", "\n", "\t", "\x7f", "\x9b", "{}", "{0}", "%s", "urn:x:y", "\ud800",
]  # fmt: skip
hostile = st.lists(
    st.one_of(st.sampled_from(_PIECES), st.text(max_size=4)), min_size=1, max_size=6
).map("".join)


def shown(*renderables: RenderableType) -> str:
    """What a terminal would receive (no colours: any escape byte would be data's)."""
    out = io.StringIO()
    console = Console(file=out, width=10_000, color_system=None, highlight=False,
                      soft_wrap=True, emoji=False)  # fmt: skip
    for renderable in renderables:
        console.print(renderable)
    return out.getvalue()


def assert_inert(output: str, *full: str, shortened: Sequence[str] = ()) -> None:
    """Nothing a terminal acts on; each string visible as it is (cleaned)."""
    assert all(c.isprintable() or c == "\n" for c in output), repr(output)
    for text in full:
        assert clean(text) in output, (text, output)
    for text in shortened:
        assert clean(short(text)) in output, (text, output)


def _attestation(kind: str, issuer: str, subject: str, scope: str) -> AttestationView:
    return AttestationView(
        id="ab" * 32, kind="trust", issuer=issuer, issued_at_ms=1, expires_at_ms=None,
        subject=subject, context=scope, value=-40, slot_id="cd" * 32, envelope="00",
    )  # fmt: skip


@given(issuer=hostile, subject=hostile, scope=hostile)
def test_attestations_table(issuer: str, subject: str, scope: str) -> None:
    view = _attestation("trust", issuer, subject, scope)
    out = shown(render.attestations_table([view]))
    assert_inert(out, scope, shortened=[issuer, subject])


@given(what=hostile, where=hostile)
def test_said_line(what: str, where: str) -> None:
    view = _attestation("trust", "tn_a", "urn:[/]", "general")
    out = shown(render.said_line("you rate {who} in '{what}'", where, view, who=what, what=what))
    assert_inert(out, what, where)


@given(subject=hostile, context=hostile, rater=hostile)
def test_rating_lines(subject: str, context: str, rater: str) -> None:
    view = RatingView(
        subject=subject, context=context, value=-0.4, total_weight=1.0,
        counted=[RaterView(rater=rater, value=-0.4, weight=1.0)], ignored=0,
    )  # fmt: skip
    out = shown(*render.rating_lines([view], subject=subject))
    assert_inert(out, context, shortened=[subject])
    assert "-0.40" in out
    assert_inert(shown(*render.rating_lines([], subject=subject)), shortened=[subject])


@given(subject=hostile, context=hostile, other=hostile, why_not=st.sampled_from(
    ["unknown", "no_path", "walled", "flagged", None]))  # fmt: skip
def test_explanation_lines(subject: str, context: str, other: str, why_not: str | None) -> None:
    view = ExplanationView.model_validate({
        "subject": subject, "context": context, "score": 0.5, "reach": 0.5, "wall": 0.1,
        "flag_penalty": 0.0, "flags": [FlagView(flagger=other, strength=1.0, removed=0.0)],
        "first_hops": [FirstHopView(via=other, share=0.5)],
        "paths": [PathView(route=[other, subject], share=1.0)], "path_coverage": 1.0,
        "why_not": why_not,
    })  # fmt: skip
    out = shown(*render.explanation_lines(view))
    assert_inert(out, context, shortened=[subject, other])
    assert "counts for nothing" in out


@pytest.mark.parametrize("crumb", [1e-17, 4e-4])
def test_a_flag_that_removes_less_than_is_shown_counts_for_nothing(crumb: float) -> None:
    # The trial showed "flags removed nothing" above "tn_lqos5ot7…  -0.000".
    view = ExplanationView.model_validate({
        "subject": "tn_x", "context": "general", "score": 0.5, "reach": 0.5, "wall": 0.0,
        "flag_penalty": crumb, "flags": [FlagView(flagger="tn_y", strength=1.0, removed=crumb)],
        "first_hops": [], "paths": [], "path_coverage": 1.0, "why_not": None,
    })  # fmt: skip
    out = shown(*render.explanation_lines(view))
    assert "-0.000" not in out
    assert "flags removed nothing" in out
    assert "counts for nothing" in out


@given(subject=hostile, claim=hostile, certifier=hostile, own=st.booleans(),
       accepted=st.booleans())  # fmt: skip
def test_claim_lines(subject: str, claim: str, certifier: str, own: bool, accepted: bool) -> None:
    view = ClaimView(
        subject=subject, claim=claim, accepted=accepted, required=2, independent=1,
        certifiers=[certifier], paths=[[certifier, subject]], own_certification=own,
    )  # fmt: skip
    out = shown(*render.claim_lines(view))
    assert_inert(out, claim, shortened=[subject, certifier])


@given(subject=hostile, context=hostile)
def test_score_line(subject: str, context: str) -> None:
    out = shown(render.score_line(ScoreView(subject=subject, context=context, score=0.25)))
    assert_inert(out, context, shortened=[subject])


@given(context=hostile, member=hostile)
def test_ranking_table(context: str, member: str) -> None:
    view = RankingView(context=context, members=[MemberScore(identity=member, score=0.5)])
    assert_inert(shown(render.ranking_table(view)), context, member)


@given(reason=hostile)
def test_import_lines(reason: str) -> None:
    report = ImportReportView(
        new=1, duplicate=0, superseded=0, rejected=[RejectedView(index=0, reason=reason)]
    )
    assert_inert(shown(*render.import_lines(report)), reason)


@given(
    identity=hostile, community=hostile, listen=hostile, advertised=hostile,
    errors=st.integers(0, 2), reachability=hostile,
)  # fmt: skip
def test_status_table(
    identity: str, community: str, listen: str, advertised: str, errors: int, reachability: str
) -> None:
    view = StatusView(
        identity=identity, community_id=community, listen=listen, advertised=[advertised],
        peers=1,
        active_addresses=[listen], passive_addresses=0, attestations=1, heads=1, store_bytes=1,
        stored_from_peers=0, payload_bytes_received=0, protocol_errors=0, store_errors=errors,
        relay_refused=0, dial_failures=0, last_sync_age_s=None, uptime_s=1.0,
        reachability=reachability,  # words with addresses peers observed: theirs to choose
    )  # fmt: skip
    shown_table = shown(render.status_table(view, running=True))
    assert_inert(shown_table, identity, community, listen, advertised, reachability)


@given(identity=hostile)
def test_peers_table(identity: str) -> None:
    view = PeerView(identity=identity, dialled=True, eager=False, last_sync_age_s=1.0)
    assert_inert(shown(render.peers_table([view])), shortened=[identity])


@given(template_field=hostile)
def test_line_reads_only_its_template_as_markup(template_field: str) -> None:
    out = shown(render.line("[bold]{x}[/] and {n:.1f}", x=template_field, n=2.0))
    assert_inert(out, template_field)
    assert out.endswith(" and 2.0\n")


def test_the_reported_examples() -> None:
    view = _attestation("rate", "tn_a", "urn:[/]", "general")
    assert "urn:[/]" in shown(render.attestations_table([view]))
    said: Callable[[str], str] = lambda s: shown(render.line("{s}", s=s))  # noqa: E731
    assert said("urn:x:y") == "urn:x:y\n"
    assert said("a\u202eb\x1b[2J") == "a\\u202eb\\x1b[2J\n"


def test_a_one_line_error_shows_control_characters_escaped(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as stopped:
        fail("'a\x1b[2J' is not\n an identity\u202e", EXIT_UNAVAILABLE)
    assert stopped.value.code == EXIT_UNAVAILABLE
    err = capsys.readouterr().err
    assert err == "trustnode: 'a\\x1b[2J' is not\\x0a an identity\\u202e\n"


def _self_claimed(identity: str, claimed: str) -> NameView:
    """The name view the node makes for an identity known only by its own profile."""
    from node.api.naming import name_view
    from node.names import NameBook

    key = IdentityKey.from_seed(bytes([9]) * 32).identity
    book = NameBook(viewer=bytes(32), profiles={key: claimed})  # type: ignore[arg-type]
    warning = f"goes by {claimed}, like your G (tn_aaaa…): not the same identity"
    return name_view(book.resolve(key)).model_copy(update={"warnings": [warning]})


def _every_named_view(identity: str, name: NameView) -> list[RenderableType]:
    names = {identity: name}
    explanation = ExplanationView.model_validate({
        "subject": identity, "context": "general", "score": 0.5, "reach": 0.5, "wall": 0.0,
        "flag_penalty": 0.1, "flags": [FlagView(flagger=identity, strength=1.0, removed=0.1)],
        "first_hops": [FirstHopView(via=identity, share=0.5)],
        "paths": [PathView(route=[identity, identity], share=1.0)], "path_coverage": 1.0,
        "why_not": None, "names": names,
    })  # fmt: skip
    claim = ClaimView(
        subject=identity, claim="member:x", accepted=True, required=1, independent=1,
        certifiers=[identity], paths=[[identity]], names=names,
    )  # fmt: skip
    return [
        render.score_line(ScoreView(subject=identity, context="general", score=0.5, name=name)),
        *render.explanation_lines(explanation),
        *render.claim_lines(claim),
        render.ranking_table(
            RankingView(
                context="general", members=[MemberScore(identity=identity, score=0.5, name=name)]
            )
        ),
        render.found_table([FoundView(identity=identity, name=name, score=0.5)]),
        *render.name_lines(identity, name),
        render.attestations_table(
            [
                AttestationView(
                    id="ab" * 32,
                    kind="profile",
                    issuer=identity,
                    issued_at_ms=1,
                    expires_at_ms=None,
                    subject=identity,
                    name=name.name,
                    slot_id="cd" * 32,
                    envelope="00",
                    issuer_name=name,
                    subject_name=name,
                )
            ]
        ),
        *render.rating_lines(
            [
                RatingView(
                    subject=identity,
                    context="general",
                    value=0.5,
                    total_weight=1.0,
                    counted=[],
                    ignored=0,
                    names={identity: name},
                )
            ],
            subject=identity,
        ),
        render.peers_table(
            [PeerView(identity=identity, dialled=True, eager=True, last_sync_age_s=None, name=name)]
        ),
        # The line printed after signing (trust, rate, revoke, ... in node.cli.member).
        render.said_line(
            "you vouch for {who}",
            "committed",
            _attestation("trust", identity, identity, "x"),
            who=render.named(identity, name),
        ),
    ]


@settings(deadline=None)  # the first example loads the confusables table
@given(claimed=st.one_of(hostile, labels(), st.sampled_from(["[bold]x[/]", ":x:", "~G"])))
def test_no_view_shows_a_self_claimed_name_without_its_mark(claimed: str) -> None:
    claimed = "Zq" + claimed  # distinct from our own words
    if not is_label(claimed, max_code_points=64, max_bytes=128):
        return  # the node never holds such a profile (SPEC §3.4)
    identity = "tn_" + "a" * 58
    name = _self_claimed(identity, claimed)
    seen = 0
    for renderable in _every_named_view(identity, name):
        out = shown(renderable)
        assert_inert(out)
        shown_name = clean(claimed)
        at = out.find(shown_name)
        seen += at != -1
        while at != -1:
            # Shown as the name: marked; quoted bare only by the impostor warning.
            assert out[at - 1] == "~" or out[:at].endswith("goes by "), out
            at = out.find(shown_name, at + 1)
    assert seen >= 10  # every view named the subject


@pytest.mark.parametrize(
    ("certifiers", "independent", "said"),
    [
        (1, 1, "1 certifier, reached by only 1 independent chain of trust from you"),
        (3, 0, "3 certifiers, reached by only 0 independent chains of trust from you"),
    ],
)
def test_a_refused_claim_counts_in_words(certifiers: int, independent: int, said: str) -> None:
    # The trial read "1 certifiers, but only 1 independent chains".
    view = ClaimView(
        subject="tn_x",
        claim="resident:x",
        accepted=False,
        required=2,
        independent=independent,
        certifiers=[f"tn_{i}" for i in range(certifiers)],
        paths=[],
        own_certification=False,
    )
    assert render.claim_reason(view) == f"{said} (2 required)"
