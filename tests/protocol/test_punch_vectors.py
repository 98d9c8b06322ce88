"""`protocol/vectors/punch-v1.json` (SPEC §15.4) agrees with its builder and the code."""

from __future__ import annotations

import json
from typing import Any

import pytest

from protocol.punch import plausible_addresses
from protocol.wire import MessageReader, PunchConnect, PunchSync
from tests.vectors.punch_vectors import VECTORS_PATH, build_vectors
from tests.vectors.vector_file import render

VECTORS: dict[str, Any] = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))


def test_the_file_is_what_the_builder_makes() -> None:
    assert VECTORS_PATH.read_text(encoding="utf-8") == render(build_vectors())


@pytest.mark.parametrize("vector", VECTORS["addresses"], ids=lambda v: v["address"])
def test_address(vector: dict[str, Any]) -> None:
    assert bool(plausible_addresses([vector["address"]])) is vector["plausible"]


@pytest.mark.parametrize("vector", VECTORS["lists"], ids=lambda v: v["description"])
def test_list(vector: dict[str, Any]) -> None:
    assert list(plausible_addresses(vector["received"])) == vector["dialled"]


def test_round_messages_decode_and_dials_meet() -> None:
    kinds = []
    for step in VECTORS["round"]["messages"]:
        reader = MessageReader()
        reader.receive_data(bytes.fromhex(step["message_hex"]))
        kinds.append(type(reader.next_event()))
    assert kinds == [PunchConnect, PunchConnect, PunchSync]
    round_ = VECTORS["round"]
    assert round_["initiator_hex"] < round_["responder_hex"]  # the smaller identity initiates
    assert round_["initiator_dials"]["at_s"] == round_["responder_dials"]["at_s"]
