"""The code against the published vectors in protocol/vectors/wire-v1.json (SPEC §9)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from protocol.errors import DecodeError, RemoteProtocolError
from protocol.events import NeedData
from protocol.greeting import Greeting
from protocol.wire import (
    CircuitClose,
    CircuitData,
    CircuitOpen,
    Deliver,
    DialBack,
    DialBackResult,
    ErrorMessage,
    Graft,
    Graft8,
    Hello,
    IHave,
    IHave8,
    Message,
    MessageReader,
    MessageType,
    Peers,
    Prune,
    PunchConnect,
    PunchSync,
    Push,
    Redeem,
    Routes,
    Sync,
    Want,
    encode_message,
)
from tests.vectors.vector_file import render
from tests.vectors.wire_vectors import VECTORS_PATH, build_vectors

VECTORS: dict[str, Any] = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))


def _hexes(values: list[str]) -> tuple[bytes, ...]:
    return tuple(bytes.fromhex(h) for h in values)


def _from_fields(kind: str, f: dict[str, Any]) -> Message:  # noqa: C901 - one branch per type
    """The message a vector's JSON fields describe, built independently of the builder."""
    if kind == "hello":
        return Hello(min_version=f["min_version"], max_version=f["max_version"],
                     capabilities=tuple(f["capabilities"]), agent=f["agent"])  # fmt: skip
    if kind == "error":
        return ErrorMessage(code=f["code"], detail=f["detail"])
    if kind in ("push", "deliver"):
        return (Push if kind == "push" else Deliver)(envelopes=_hexes(f["envelopes_hex"]))
    if kind == "sync":
        return Sync(payload=None if f["payload_hex"] is None else bytes.fromhex(f["payload_hex"]))
    by_ids: dict[str, type[Want | Graft | IHave]] = {"want": Want, "graft": Graft, "ihave": IHave}
    if kind in by_ids:
        return by_ids[kind](ids=_hexes(f["ids_hex"]))
    if kind in ("ihave8", "graft8"):
        prefixes = bytes.fromhex(f["prefixes_hex"])
        return IHave8(prefixes=prefixes) if kind == "ihave8" else Graft8(prefixes=prefixes)
    if kind == "routes":
        return Routes(entries=bytes.fromhex(f["entries_hex"]))
    if kind == "peers":
        return Peers(addresses=tuple(f["addresses"]))
    if kind == "dialback":
        return DialBack(nonce=bytes.fromhex(f["nonce_hex"]), addresses=tuple(f["addresses"]))
    if kind == "dialback_result":
        return DialBackResult(nonce=bytes.fromhex(f["nonce_hex"]), reached=tuple(f["reached"]),
                              failed=tuple(f["failed"]), observed=f["observed"])  # fmt: skip
    circuit = bytes.fromhex(f.get("circuit_hex", ""))
    if kind == "circuit_open":
        return CircuitOpen(circuit=circuit, peer=bytes.fromhex(f["peer_hex"]))
    if kind == "circuit_data":
        return CircuitData(circuit=circuit, data=bytes.fromhex(f["data_hex"]))
    if kind == "circuit_close":
        return CircuitClose(circuit=circuit, code=f["code"])
    if kind == "redeem":
        return Redeem(nonce=bytes.fromhex(f["nonce_hex"]))
    if kind == "punch_connect":
        return PunchConnect(nonce=bytes.fromhex(f["nonce_hex"]), addresses=tuple(f["addresses"]))
    if kind == "punch_sync":
        return PunchSync(nonce=bytes.fromhex(f["nonce_hex"]))
    assert kind == "prune"
    return Prune()


def _read(data: bytes, *, step: int | None = None) -> list[Message]:
    reader, messages = MessageReader(), []
    chunks = [data] if step is None else [data[k : k + step] for k in range(0, len(data), step)]
    for chunk in chunks:
        reader.receive_data(chunk)
        while not isinstance(message := reader.next_event(), NeedData):
            messages.append(message)
    return messages


def test_file_is_what_the_builder_makes() -> None:
    assert VECTORS_PATH.read_text(encoding="utf-8") == render(build_vectors())


def test_every_message_type_has_a_vector() -> None:
    assert {v["type"] for v in VECTORS["positive"]} == {t.name.lower() for t in MessageType}


@pytest.mark.parametrize("vector", VECTORS["positive"], ids=lambda v: v["name"])
def test_positive_vector(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["message_hex"])
    message = _from_fields(vector["type"], vector["fields"])
    assert encode_message(message) == data
    assert data[4:].hex() == vector["payload_hex"]
    assert int.from_bytes(data[:4], "big") == len(data) - 4
    assert MessageType[vector["type"].upper()].value == vector["type_code"]
    assert _read(data) == [message]
    assert _read(data, step=1) == [message]  # fed byte by byte: the same message


@pytest.mark.parametrize("vector", VECTORS["negative"], ids=lambda v: v["name"])
def test_negative_vector(vector: dict[str, Any]) -> None:
    with pytest.raises(DecodeError) as info:
        _read(bytes.fromhex(vector["message_hex"]))
    assert info.value.reason.value == vector["reason"]


@pytest.mark.parametrize("vector", VECTORS["hello_rules"], ids=lambda v: v["name"])
def test_hello_rule_vector(vector: dict[str, Any]) -> None:
    low, high = vector["our_min_version"], vector["our_max_version"]
    greeting = Greeting(min_version=low, max_version=high)
    received = [m for h in vector["received_hex"] for m in _read(bytes.fromhex(h))]
    if vector["result"] == "ok":
        for message in received:
            greeting.receive(message)
        assert greeting.version == vector["version"]
    else:
        with pytest.raises(RemoteProtocolError) as info:  # noqa: PT012  # the one that breaks the rule
            for message in received:
                greeting.receive(message)
        assert info.value.reason.value == vector["result"]
