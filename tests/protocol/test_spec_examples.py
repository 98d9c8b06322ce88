"""Worked examples quoted in SPEC.md agree with the code (the SPEC stays true)."""

from __future__ import annotations

from pathlib import Path

from protocol.invite import open_community_key

SPEC = (Path(__file__).resolve().parents[2] / "protocol" / "SPEC.md").read_text(encoding="utf-8")


def test_the_open_community_key_example_of_section_10_1() -> None:
    section = SPEC[SPEC.index("### 10.1 Community") : SPEC.index("### 10.2")]
    assert open_community_key(bytes(32)).hex() in section
