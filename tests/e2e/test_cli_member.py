"""Member commands run in-process (click's runner) against an offline node."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from node.cli import cli
from protocol.identity import IdentityKey, encode_identity_text

pytestmark = pytest.mark.slow
BOB = encode_identity_text(IdentityKey.from_seed(bytes([2]) * 32).identity)


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
