"""`trustnode device …` in process against offline nodes: pair (the request carried by
export and import, as peers would carry it), approve, chain, revoke, in text and JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.test_cli_recovery import _ok, _run

pytestmark = pytest.mark.slow
COMMUNITY = ["--open", "--community-id", "ab" * 32, "--listen", "127.0.0.1:0",
             "--api-listen", "127.0.0.1:1"]  # fmt: skip


def test_pair_approve_chain_and_revoke_a_device_in_the_cli(tmp_path: Path) -> None:
    root, phone = tmp_path / "root", tmp_path / "phone"
    _ok(root, "init", *COMMUNITY)
    _ok(phone, "init", *COMMUNITY)
    root_id = json.loads(_ok(root, "status", "--json"))["identity"]
    phone_id = json.loads(_ok(phone, "status", "--json"))["identity"]
    said = _ok(phone, "device", "add", root_id).splitlines()
    code = json.loads(_ok(phone, "device", "add", root_id, "--json"))["code"]
    assert said[0] == f"pairing code: {code}"
    assert said[1].endswith(f"run: trustnode device approve {code}")
    assert _run(phone, "device", "add", "tn_nobody").exit_code == 2  # bad_identity
    _ok(phone, "export", "--out", str(tmp_path / "phone.export"))
    _ok(root, "import", str(tmp_path / "phone.export"))
    assert f"pending {phone_id}: approve with {code}" in _ok(root, "device", "list")
    assert _run(root, "device", "approve", "aaaaaaaaaa").exit_code == 1  # not_found
    assert _ok(root, "device", "approve", code) == f"{phone_id} now speaks for you\n"
    chain = json.loads(_ok(root, "device", "chain", phone_id, "--json"))
    assert (chain["member"], [d["key"] for d in chain["devices"]]) == (root_id, [phone_id])
    assert f"device {phone_id}: active" in _ok(root, "device", "chain", phone_id)
    assert _ok(root, "device", "revoke", phone_id) == f"{phone_id} is revoked from now on\n"
    listed = json.loads(_ok(root, "device", "list", "--json"))
    assert listed["devices"][0]["cutoff_ms"] is not None
    assert f"device {phone_id} ({code}): revoked at" in _ok(root, "device", "list")
