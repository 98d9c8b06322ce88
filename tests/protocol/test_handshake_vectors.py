"""Our Noise implementation against the official third-party vectors, both roles.

The files in tests/vectors/third_party/noise/ are used exactly as published
(see the README there for provenance and licenses).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from protocol.handshake import CipherState, HandshakeState, KeyPair, Role

FOLDER = Path(__file__).resolve().parents[1] / "vectors" / "third_party" / "noise"
FILES = {
    "cacophony": FOLDER / "cacophony-25519-ChaChaPoly-BLAKE2b.json",
    "snow": FOLDER / "snow-25519-ChaChaPoly-BLAKE2b.json",
}
# Deferred patterns (X1X, I1K, ...) are not implemented: every other vector must run.
FUNDAMENTAL = {
    "N",
    "K",
    "X",
    "NN",
    "NK",
    "NX",
    "XN",
    "XK",
    "XX",
    "KN",
    "KK",
    "KX",
    "IN",
    "IK",
    "IX",
}
EXPECTED_COUNTS = {"cacophony": 36, "snow": 28}


def _pattern(name: str) -> str:
    return name.split("_")[1].split("psk")[0]


def _vectors() -> list[tuple[str, dict[str, Any]]]:
    return [
        (source, vector)
        for source, path in FILES.items()
        for vector in json.loads(path.read_text(encoding="utf-8"))["vectors"]
        if _pattern(vector["protocol_name"]) in FUNDAMENTAL
    ]


VECTORS = _vectors()


def test_every_fundamental_and_psk_vector_is_exercised() -> None:
    counts = {source: sum(1 for s, _ in VECTORS if s == source) for source in FILES}
    assert counts == EXPECTED_COUNTS


def _key(vector: dict[str, Any], field: str) -> KeyPair | None:
    value = vector.get(field)
    return None if not value else KeyPair.from_private(bytes.fromhex(value))


def _public(vector: dict[str, Any], field: str) -> bytes | None:
    value = vector.get(field)
    return None if not value else bytes.fromhex(value)


def _state(vector: dict[str, Any], side: str) -> HandshakeState:
    return HandshakeState(
        protocol_name=vector["protocol_name"],
        role=Role.INITIATOR if side == "init" else Role.RESPONDER,
        prologue=bytes.fromhex(vector[f"{side}_prologue"]),
        s=_key(vector, f"{side}_static"),
        e=_key(vector, f"{side}_ephemeral"),
        rs=_public(vector, f"{side}_remote_static"),
        re=_public(vector, f"{side}_remote_ephemeral"),
        psks=[bytes.fromhex(p) for p in vector.get(f"{side}_psks", [])],
    )


@pytest.mark.parametrize(
    ("source", "vector"), VECTORS, ids=[f"{s}:{v['protocol_name']}" for s, v in VECTORS]
)
def test_vector(source: str, vector: dict[str, Any]) -> None:
    initiator, responder = _state(vector, "init"), _state(vector, "resp")
    messages = vector["messages"]
    index = 0
    # Handshake messages alternate initiator -> responder -> ...
    while not initiator.is_complete:
        writer, reader = (initiator, responder) if index % 2 == 0 else (responder, initiator)
        payload, ciphertext = (bytes.fromhex(messages[index][k]) for k in ("payload", "ciphertext"))
        assert writer.write_message(payload) == ciphertext, f"message {index}"
        assert reader.read_message(ciphertext) == payload
        index += 1
    assert responder.is_complete
    assert initiator.handshake_hash == responder.handshake_hash
    if "handshake_hash" in vector:
        assert initiator.handshake_hash.hex() == vector["handshake_hash"]
    if "resp_static" in vector and vector.get("resp_static"):
        assert (
            initiator.remote_static
            == KeyPair.from_private(bytes.fromhex(vector["resp_static"])).public
        )
    one_way = len(_pattern(vector["protocol_name"])) == 1
    _check_transport(initiator, responder, messages, first=index, one_way=one_way)


def _check_transport(
    initiator: HandshakeState,
    responder: HandshakeState,
    messages: list[dict[str, str]],
    *,
    first: int,
    one_way: bool,
) -> None:
    i_send, i_recv = initiator.split()
    r_send, r_recv = responder.split()
    assert len(messages) > first, "every vector continues with transport messages"
    for index in range(first, len(messages)):
        # The direction keeps alternating after the handshake; one-way
        # patterns only ever send from the initiator.
        from_initiator = one_way or index % 2 == 0
        send, recv = (i_send, r_recv) if from_initiator else (r_send, i_recv)
        _transport_step(send, recv, messages[index])


def _transport_step(send: CipherState, recv: CipherState, message: dict[str, str]) -> None:
    payload, ciphertext = bytes.fromhex(message["payload"]), bytes.fromhex(message["ciphertext"])
    assert send.encrypt_with_ad(b"", payload) == ciphertext
    assert recv.decrypt_with_ad(b"", ciphertext) == payload
