"""Member commands run in-process (click's runner) against an offline node."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from node.cli import cli
from protocol.attestation import AttestationBody, sign_attestation
from protocol.export import encode_export
from protocol.identity import IdentityKey, encode_identity_text
from protocol.statement import Trust

pytestmark = pytest.mark.slow
BOB_ID = IdentityKey.from_seed(bytes([2]) * 32).identity
BOB = encode_identity_text(BOB_ID)


class Member:
    """One community's data directory, driven through the real CLI."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.runner = CliRunner()

    def __call__(self, *args: str) -> Result:
        return self.runner.invoke(cli, ["--data-dir", str(self.folder), *args])

    def ok(self, *args: str) -> str:
        result = self(*args)
        assert result.exit_code == 0, (args, result.output)
        return result.output

    def json(self, *args: str) -> object:
        return json.loads(self.ok(*args, "--json"))


@pytest.fixture
def ann(tmp_path: Path) -> Member:
    member = Member(tmp_path / "ann")
    member.ok("init", "--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:1")
    return member


def test_a_negative_rating_value_is_a_value_not_an_option(ann: Member) -> None:
    made = ann.json("rate", "urn:tool:drill-7", "-40", "--context", "lending")
    assert isinstance(made, dict)
    assert made["value"] == -40
    assert ann("rate", "urn:tool:drill-7", "-101").exit_code == 2
    assert ann("rate", "urn:tool:drill-7", "5", "--bogus").exit_code == 2


def test_revoking_a_mistyped_scope_is_refused_with_exit_1(ann: Member) -> None:
    ann.ok("trust", BOB, "--context", "carpool")
    refused = ann("revoke", "trust", BOB, "carpol")
    assert refused.exit_code == 1, refused.output
    assert "trust carpool" in refused.output
    assert "committed" not in refused.output
    ann.ok("revoke", "trust", BOB, "carpool")


def test_a_self_vouch_is_refused(ann: Member) -> None:
    me = ann.json("status")
    assert isinstance(me, dict)
    refused = ann("trust", me["identity"])
    assert refused.exit_code == 2, refused.output
    assert "bad_value" in refused.output


def test_markup_and_emoji_codes_from_the_store_are_shown_as_text(ann: Member) -> None:
    made = ann("rate", "urn:[/]", "5")
    assert made.exit_code == 0, made.output
    assert "urn:[/]" in made.output
    me = ann.json("status")
    assert isinstance(me, dict)
    listed = ann("attestations", "--issuer", me["identity"])
    assert listed.exit_code == 0, listed.output
    assert "urn:[/]" in listed.output
    rated = ann("rating", "urn:[/]")
    assert rated.exit_code == 0, rated.output
    assert "urn:[/]" in rated.output
    emoji = ann("rate", "urn:x:y", "0")
    assert "urn:x:y" in emoji.output, emoji.output


def test_claims_says_why_and_exits_1_when_not_accepted(ann: Member) -> None:
    ann.ok("certify", BOB, "resident:rue-des-lilas")
    mine = ann("claims", BOB, "resident:rue-des-lilas")
    assert mine.exit_code == 0, mine.output
    assert "you certified it yourself" in mine.output
    view = ann.json("claims", BOB, "resident:rue-des-lilas")
    assert isinstance(view, dict)
    assert view["own_certification"] is True
    nobody = ann("claims", BOB, "resident:elsewhere")
    assert nobody.exit_code == 1, nobody.output
    assert "not accepted: nobody has certified it" in nobody.output
    assert ann("claims", BOB, "resident:elsewhere", "--json").exit_code == 1


def test_explain_says_why_a_flag_counts_for_nothing(ann: Member, tmp_path: Path) -> None:
    # Bob vouches for a stranger who flags Bob: all our trust in the stranger runs
    # through Bob, so the flag has no standing with us (node.trust.walk.penalty).
    bob, stranger = IdentityKey.from_seed(bytes([2]) * 32), IdentityKey.from_seed(bytes([9]) * 32)
    now = int(time.time() * 1000)
    envelopes = [
        sign_attestation(AttestationBody(issuer=key.identity, issued_at_ms=now, statement=Trust(
            subject=subject, context="general", value=value)), key).data
        for key, subject, value in ((bob, stranger.identity, 90), (stranger, BOB_ID, -80))
    ]  # fmt: skip
    status = ann.json("status")
    assert isinstance(status, dict)
    exported = tmp_path / "flag.export"
    exported.write_bytes(encode_export(bytes.fromhex(status["community_id"]), envelopes))
    ann.ok("import", str(exported))
    ann.ok("trust", BOB)
    explained = ann.ok("explain", BOB)
    assert "flags removed nothing" in explained
    assert "counts for nothing: you give them no trust" in explained


def test_rating_shows_every_context_unless_one_is_asked_for(ann: Member) -> None:
    ann.ok("rate", "urn:tool:drill-7", "-40", "--context", "lending")
    ann.ok("rate", "urn:tool:drill-7", "80", "--context", "repair")
    text = ann.ok("rating", "urn:tool:drill-7")
    views = ann.json("rating", "urn:tool:drill-7")
    assert isinstance(views, list)
    assert [v["context"] for v in views] == ["lending", "repair"]
    for view in views:
        assert f"in '{view['context']}': {view['value']:+.2f}" in text  # the JSON's number
    only = ann.json("rating", "urn:tool:drill-7", "--context", "general")
    assert isinstance(only, dict)
    assert only["value"] is None
    assert "nobody has rated it" in ann.ok("rating", "urn:tool:nothing")


def test_identities_may_be_given_by_a_unique_prefix(ann: Member) -> None:
    ann.ok("trust", BOB, "--context", "carpool")
    score = ann.json("score", BOB[:9], "--context", "carpool")
    assert isinstance(score, dict)
    assert score["subject"] == BOB
    assert "tn_qe4xodvi…" in ann.ok("explain", "tn_qe4xodvi…")
    unknown = ann("score", "tn_zzzzzzzz")
    assert unknown.exit_code == 2
    assert "no identity this node knows" in unknown.output
    assert "[a-z" not in ann("trust", "tn_abc").output


def test_a_bad_context_is_described_in_words_everywhere(ann: Member, tmp_path: Path) -> None:
    for args in (
        ["trust", BOB, "--context", "Carpool"],
        ["rate", "urn:x:y", "5", "--context", "A"],
    ):
        refused = ann(*args)
        assert refused.exit_code == 2
        assert "lowercase letters" in refused.output, refused.output
    key = tmp_path / "k"
    assert ann.runner.invoke(cli, ["keygen", "--out", str(key)]).exit_code == 0
    signed = ann.runner.invoke(cli, ["attest", "trust", BOB, "--value", "5", "--context", "A",
                                     "--key", str(key)])  # fmt: skip
    assert signed.exit_code == 2
    assert "lowercase letters" in signed.output
    assert "[a-z" not in signed.output
