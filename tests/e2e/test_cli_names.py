"""Naming commands in-process (click's runner) against an offline node."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from node.cli import cli
from protocol.attestation import AttestationBody, sign_attestation
from protocol.export import encode_export
from protocol.identity import IdentityKey, encode_identity_text
from protocol.statement import Profile

pytestmark = pytest.mark.slow
BOB_KEY, EVE_KEY = IdentityKey.from_seed(bytes([2]) * 32), IdentityKey.from_seed(bytes([3]) * 32)
BOB, EVE = encode_identity_text(BOB_KEY.identity), encode_identity_text(EVE_KEY.identity)


def _run(folder: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--data-dir", str(folder), *args])


def _ok(folder: Path, *args: str) -> str:
    result = _run(folder, *args)
    assert result.exit_code == 0, (args, result.output)
    return result.output


def test_petnames_profiles_find_and_an_impostor_in_the_cli(tmp_path: Path) -> None:
    ann = tmp_path / "ann"
    _ok(ann, "init", "--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:1")
    _ok(ann, "trust", BOB, "--value", "80", "--name", "Bob")
    assert "Bob (rue des Lilas)" in _ok(ann, "name", BOB[:9], "Bob (rue des Lilas)")
    assert "Bob (rue des Lilas)" in _ok(ann, "names")
    # The petname is accepted where an identity is, and shown where one is.
    assert "trust in Bob (rue des Lilas) for 'general'" in _ok(ann, "score", "Bob (rue des Lilas)")
    assert "Bob (rue des Lilas)" in _ok(ann, "explain", "bob")
    profile = Profile(subject=EVE_KEY.identity, name="B\u043eb (rue [bold])")
    body = AttestationBody(issuer=EVE_KEY.identity, issued_at_ms=1, statement=profile)
    export = tmp_path / "eve.export"
    community = bytes.fromhex(json.loads(_ok(ann, "status", "--json"))["community_id"])
    export.write_bytes(encode_export(community, [sign_attestation(body, EVE_KEY).data]))
    _ok(ann, "import", str(export))
    shown = _ok(ann, "whois", EVE)
    assert "~B\u043eb (rue [bold])" in shown  # marked, and markup shown as text
    assert "warning" in shown
    assert "Bob (rue des Lilas)" in shown
    explained = _ok(ann, "explain", EVE)  # explain says so too
    assert "~B\u043eb (rue [bold]) ⚠" in explained
    assert "warning: goes by" in explained
    found = json.loads(_ok(ann, "find", "bob", "--json"))
    assert [f["identity"] for f in found] == [BOB, EVE]
    assert "~B\u043eb" in _ok(ann, "find", "bob")
    assert "you go by Ann" in _ok(ann, "profile", "--name", "Ann", "--about", "Rue des Lilas")
    refused = _run(ann, "profile", "--name", "Ann\u202e")
    assert refused.exit_code == 2, refused.output  # a bad value, as for any option
    assert "\u202e" not in refused.output
    taken = _run(ann, "name", EVE, "BOB (rue des Lilas)")
    assert taken.exit_code != 0, taken.output
    assert "conflict" in taken.output
    assert BOB in taken.output  # the holder, named
    # Rate and revoke take petnames too; the signing line names the subject as we do.
    rated = _ok(ann, "rate", "Bob (rue des Lilas)", "40", "--context", "carpool")
    assert "you rate Bob (rue des Lilas) +40 in 'carpool'" in rated
    revoked = _ok(ann, "revoke", "rate", "bob", "carpool")
    assert "you withdraw your rate of Bob (rue des Lilas) in 'carpool'" in revoked
    _ok(ann, "unname", "Bob (rue des Lilas)")
    assert "no petnames" in _ok(ann, "names")
