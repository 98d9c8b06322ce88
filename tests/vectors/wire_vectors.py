"""Builds `protocol/vectors/wire-v1.json`: every wire message type (SPEC §9).

Run `python -m tests.vectors.wire_vectors` to rewrite the file;
`tests/protocol/test_wire_vectors.py` fails if the file and this builder disagree,
and checks the code against every vector in the file. Positive vectors give one
message of each type (and the edges of their fields) as JSON fields and as the
framed bytes; negative vectors give framed bytes and the reason a receiver
refuses them with (§9.1, §9.2; those named `several-*` have more than one defect
and check the order of §2.5); `hello_rules` give what one side receives on a
connection and the outcome of the hello rule (§9.2).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import msgpack

from protocol.attestation import AttestationBody, sign_attestation
from protocol.errors import RemoteProtocolError
from protocol.greeting import Greeting
from protocol.identity import IdentityKey
from protocol.statement import Trust
from protocol.wire import (
    DEFAULT_MAX_MESSAGE_BYTES,
    WIRE_VERSION,
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
from tests.vectors.vector_file import write_vectors

VECTORS_PATH = Path(__file__).resolve().parents[2] / "protocol" / "vectors" / "wire-v1.json"
T0 = 1_700_000_000_000
Json = dict[str, Any]

ALICE, BOB = IdentityKey.from_seed(bytes([1]) * 32), IdentityKey.from_seed(bytes([2]) * 32)
ENVELOPE = sign_attestation(
    AttestationBody(
        issuer=ALICE.identity, issued_at_ms=T0, statement=Trust(subject=BOB.identity, value=80)
    ),
    ALICE,
).data
ID_A = hashlib.blake2b(b"a", digest_size=32).digest()
ID_B = hashlib.blake2b(b"b", digest_size=32).digest()
# Two routes: to ALICE at distance 0 (the sender itself), to BOB at 2 through the receiver.
ROUTES = ALICE.identity[:8] + b"\x00" + BOB.identity[:8] + bytes([0x80 | 2])


def packb(value: object) -> bytes:
    """Canonical msgpack, as the protocol encodes it."""
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    return packed


def frame(payload: bytes) -> bytes:
    """A 4-byte big-endian length, then the payload (SPEC §9.1)."""
    return len(payload).to_bytes(4, "big") + payload


def fields_of(message: Message) -> Json:  # noqa: C901 - one branch per type
    """The message's fields in the vector file's JSON form (binary as hex)."""
    if isinstance(message, Hello):
        return {
            "min_version": message.min_version,
            "max_version": message.max_version,
            "capabilities": list(message.capabilities),
            "agent": message.agent,
        }
    if isinstance(message, ErrorMessage):
        return {"code": message.code, "detail": message.detail}
    if isinstance(message, Push | Deliver):
        return {"envelopes_hex": [e.hex() for e in message.envelopes]}
    if isinstance(message, Sync):
        return {"payload_hex": None if message.payload is None else message.payload.hex()}
    if isinstance(message, Want | Graft | IHave):
        return {"ids_hex": [i.hex() for i in message.ids]}
    if isinstance(message, IHave8 | Graft8):
        return {"prefixes_hex": message.prefixes.hex()}
    if isinstance(message, Routes):
        return {"entries_hex": message.entries.hex()}
    if isinstance(message, Peers):
        return {"addresses": list(message.addresses)}
    if isinstance(message, DialBack | PunchConnect):
        return {"nonce_hex": message.nonce.hex(), "addresses": list(message.addresses)}
    if isinstance(message, PunchSync):
        return {"nonce_hex": message.nonce.hex()}
    if isinstance(message, DialBackResult):
        return {
            "nonce_hex": message.nonce.hex(),
            "reached": list(message.reached),
            "failed": list(message.failed),
            "observed": message.observed,
        }
    if isinstance(message, CircuitOpen):
        return {"circuit_hex": message.circuit.hex(), "peer_hex": message.peer.hex()}
    if isinstance(message, CircuitData):
        return {"circuit_hex": message.circuit.hex(), "data_hex": message.data.hex()}
    if isinstance(message, CircuitClose):
        return {"circuit_hex": message.circuit.hex(), "code": message.code}
    if isinstance(message, Redeem):
        return {"nonce_hex": message.nonce.hex()}
    return {}


_TYPES: dict[type, MessageType] = {
    Hello: MessageType.HELLO,
    ErrorMessage: MessageType.ERROR,
    Push: MessageType.PUSH,
    Sync: MessageType.SYNC,
    Want: MessageType.WANT,
    IHave: MessageType.IHAVE,
    Prune: MessageType.PRUNE,
    Peers: MessageType.PEERS,
    Graft: MessageType.GRAFT,
    Deliver: MessageType.DELIVER,
    IHave8: MessageType.IHAVE8,
    Graft8: MessageType.GRAFT8,
    Routes: MessageType.ROUTES,
    DialBack: MessageType.DIALBACK,
    DialBackResult: MessageType.DIALBACK_RESULT,
    CircuitOpen: MessageType.CIRCUIT_OPEN,
    CircuitData: MessageType.CIRCUIT_DATA,
    CircuitClose: MessageType.CIRCUIT_CLOSE,
    Redeem: MessageType.REDEEM,
    PunchConnect: MessageType.PUNCH_CONNECT,
    PunchSync: MessageType.PUNCH_SYNC,
}


def positive(name: str, description: str, message: Message) -> Json:
    """One positive vector: the type, its fields, and the framed bytes."""
    data = encode_message(message)
    kind = _TYPES[type(message)]
    return {
        "name": name,
        "description": description,
        "type": kind.name.lower(),
        "type_code": kind.value,
        "fields": fields_of(message),
        "payload_hex": data[4:].hex(),
        "message_hex": data.hex(),
    }


def positive_vectors() -> list[Json]:
    """Every message type, with the edges of its fields."""
    capabilities = ("push", "sync-v1", "graft", "deliver", "ihave8", "sync-compact", "routes")
    cases: list[tuple[str, str, Message]] = [
        ("hello", "our hello: every capability we name today",
         Hello(capabilities=capabilities, agent="trustnode/0.1")),
        ("hello-bare", "no capability, no agent", Hello()),
        ("hello-range", "a peer speaking wire versions 1 to 3",
         Hello(min_version=1, max_version=3)),
        ("error", "an error with a detail", ErrorMessage(code="bad_field", detail="value: 101")),
        ("error-bare", "an error without detail", ErrorMessage(code="unexpected_message")),
        ("push", "one envelope (a trust of Alice in Bob)", Push(envelopes=(ENVELOPE,))),
        ("sync", "a reconciliation message (opaque here: SPEC §13)",
         Sync(payload=packb([1, [[2**53, b"", 0, None]]]))),
        ("sync-end", "nil: nothing more to say in this session", Sync(payload=None)),
        ("want", "two ids", Want(ids=(ID_A, ID_B))),
        ("ihave", "one id", IHave(ids=(ID_A,))),
        ("prune", "no field", Prune()),
        ("peers", "two addresses", Peers(addresses=("192.0.2.7:7400", "[2001:db8::1]:7400"))),
        ("peers-empty", "no address", Peers(addresses=())),
        ("graft", "one id", Graft(ids=(ID_B,))),
        ("deliver", "the same envelope on request", Deliver(envelopes=(ENVELOPE,))),
        ("ihave8", "two 8-byte prefixes", IHave8(prefixes=ID_A[:8] + ID_B[:8])),
        ("graft8", "one 8-byte prefix", Graft8(prefixes=ID_A[:8])),
        ("routes", "the sender itself at 0, Bob at 2 through the receiver (bit 7)",
         Routes(entries=ROUTES)),
        ("dialback", "dial me back at two addresses (SPEC §15.2)",
         DialBack(nonce=bytes(range(8)), addresses=("203.0.113.5:7400", "192.168.1.20:7400"))),
        ("dialback-result", "one reached, one not dialled, and where the asker comes from",
         DialBackResult(nonce=bytes(range(8)), reached=("203.0.113.5:7400",), failed=(),
                        observed="203.0.113.5:51234")),
        ("dialback-result-bare", "nothing dialled, nothing observed",
         DialBackResult(nonce=bytes(8), reached=(), failed=(), observed="")),
        ("circuit-open", "connect me to Bob through you (SPEC §15.3)",
         CircuitOpen(circuit=bytes(range(8)), peer=BOB.identity)),
        ("circuit-data", "three opaque bytes of the ends' channel",
         CircuitData(circuit=bytes(range(8)), data=b"\x00\x01\x02")),
        ("circuit-close", "over the relay quota",
         CircuitClose(circuit=bytes(range(8)), code="quota")),
        ("redeem", "a single-use invite's 16-byte nonce, to its inviter (SPEC §12)",
         Redeem(nonce=bytes(range(16)))),
        ("punch-connect", "a punch round's addresses: the router's, then the LAN's (SPEC §15.4)",
         PunchConnect(nonce=bytes(range(8)), addresses=("203.0.113.12:7400", "192.168.2.2:7400"))),
        ("punch-connect-bare", "an answer with no address: no punch this round",
         PunchConnect(nonce=bytes(range(8)), addresses=())),
        ("punch-sync", "dial now (the initiator dials half a round trip later)",
         PunchSync(nonce=bytes(range(8)))),
    ]  # fmt: skip
    return [positive(name, text, message) for name, text, message in cases]


def _message(*fields: object) -> bytes:
    return frame(packb([WIRE_VERSION, *fields]))


def negative_vectors() -> list[Json]:
    """Framed bytes a receiver refuses, with the reason (SPEC §9.1, §9.2)."""
    hello = packb([1, 1, 1, 1, [], ""])
    cases: list[tuple[str, str, bytes, str]] = [
        ("too-large", "a length prefix of 1 MiB + 1: refused before the body arrives",
         (DEFAULT_MAX_MESSAGE_BYTES + 1).to_bytes(4, "big"), "too_large"),
        ("empty", "a length of 0", bytes(4), "malformed"),
        ("not-msgpack", "0xc1 is never used in msgpack", frame(b"\xc1"), "malformed"),
        ("not-an-array", "a map", frame(packb({"v": 1})), "malformed"),
        ("one-element", "an array of one element", frame(packb([1])), "malformed"),
        ("version-not-int", "the wire version is a string", frame(packb(["1", 7])), "malformed"),
        ("trailing-bytes", "a prune, then one more byte", frame(packb([1, 7]) + b"\x00"),
         "trailing_bytes"),
        ("unknown-version", "wire version 2", frame(packb([2, 7])), "unknown_version"),
        # Type 20 became punch_connect; 127 (the largest fixint) stays unassigned (SPEC §9.2).
        ("unknown-type", "type 127", _message(127), "unknown_kind"),
        ("type-zero", "type 0", _message(0), "unknown_kind"),
        ("type-not-int", "the type is a string", _message("hello"), "unknown_kind"),
        ("hello-three-fields", "a hello without agent", _message(1, 1, 1, []), "bad_field"),
        ("hello-version-bool", "min_version is msgpack true", _message(1, True, 1, [], ""),
         "bad_field"),
        ("hello-capability-int", "a capability that is an integer", _message(1, 1, 1, [5], ""),
         "bad_field"),
        ("hello-min-above-max", "min_version 2, max_version 1", _message(1, 2, 1, [], ""),
         "out_of_range"),
        ("hello-version-zero", "min_version 0", _message(1, 0, 1, [], ""), "out_of_range"),
        ("hello-version-65536", "max_version 2**16", _message(1, 1, 2**16, [], ""),
         "out_of_range"),
        ("hello-capability-upper", "a capability with an upper-case letter",
         _message(1, 1, 1, ["Push"], ""), "out_of_range"),
        ("hello-33-capabilities", "33 capabilities", _message(1, 1, 1, ["c"] * 33, ""),
         "out_of_range"),
        ("hello-agent-65", "an agent of 65 bytes", _message(1, 1, 1, [], "a" * 65),
         "out_of_range"),
        ("hello-agent-control", "an agent with a newline", _message(1, 1, 1, [], "a\n"),
         "out_of_range"),
        ("error-code-upper", "an error code with an upper-case letter",
         _message(2, "Bad_field", ""), "out_of_range"),
        ("error-detail-257", "a detail of 257 bytes", _message(2, "bad_field", "d" * 257),
         "out_of_range"),
        ("error-one-field", "an error without detail field", _message(2, "bad_field"),
         "bad_field"),
        ("push-empty", "a push of no envelope", _message(3, []), "out_of_range"),
        ("push-1001", "a push of 1001 envelopes", _message(3, [b"x"] * 1001), "out_of_range"),
        ("push-envelope-1025", "an envelope of 1025 bytes", _message(3, [bytes(1025)]),
         "out_of_range"),
        ("push-envelope-str", "an envelope that is a string", _message(3, ["x"]), "bad_field"),
        ("push-not-array", "envelopes as one binary", _message(3, ENVELOPE), "bad_field"),
        ("sync-int", "a sync payload that is an integer", _message(4, 5), "bad_field"),
        ("want-empty", "a want of no id", _message(5, []), "out_of_range"),
        ("want-short-id", "an id of 31 bytes", _message(5, [bytes(31)]), "bad_field"),
        ("ihave-two-fields", "an ihave with a second field", _message(6, [ID_A], None),
         "bad_field"),
        ("prune-field", "a prune with a field", _message(7, None), "bad_field"),
        ("peers-33", "33 addresses", _message(8, ["h:1"] * 33), "out_of_range"),
        ("peers-space", "an address with a space", _message(8, ["h 1:7400"]), "out_of_range"),
        ("peers-empty-address", "an empty address", _message(8, [""]), "out_of_range"),
        ("peers-binary", "an address that is binary", _message(8, [b"h:1"]), "bad_field"),
        ("graft-not-array", "ids as one binary", _message(9, ID_A), "bad_field"),
        ("ihave8-7", "7 bytes of prefixes", _message(11, bytes(7)), "out_of_range"),
        ("ihave8-empty", "no prefix", _message(11, b""), "out_of_range"),
        ("graft8-str", "prefixes as a string", _message(12, "abcdefgh"), "bad_field"),
        ("routes-10", "10 bytes of routes", _message(13, bytes(10)), "out_of_range"),
        ("dialback-no-address", "a dialback of no address", _message(14, bytes(8), []),
         "out_of_range"),
        ("dialback-9", "a dialback of 9 addresses", _message(14, bytes(8), ["h:1"] * 9),
         "out_of_range"),
        ("dialback-nonce-7", "a nonce of 7 bytes", _message(14, bytes(7), ["h:1"]),
         "out_of_range"),
        ("dialback-nonce-str", "a nonce that is a string", _message(14, "n" * 8, ["h:1"]),
         "bad_field"),
        ("dialback-result-3", "a dialback_result of 3 fields",
         _message(15, bytes(8), [], []), "bad_field"),
        ("dialback-result-observed-space", "an observed address with a space",
         _message(15, bytes(8), [], [], "h 1"), "out_of_range"),
        ("several-dialback-result", "9 reached (out_of_range), then a binary failed address",
         _message(15, bytes(8), ["h:1"] * 9, [b"h:1"], ""), "bad_field"),
        ("circuit-open-short-peer", "a peer of 31 bytes", _message(16, bytes(8), bytes(31)),
         "out_of_range"),
        ("circuit-data-empty", "no data", _message(17, bytes(8), b""), "out_of_range"),
        ("circuit-close-int", "a code that is an integer", _message(18, bytes(8), 5), "bad_field"),
        ("circuit-open-one-field", "a circuit_open without peer", _message(16, bytes(8)),
         "bad_field"),
        ("several-circuit", "a circuit of 7 bytes (out_of_range), data a string",
         _message(17, bytes(7), "x"), "bad_field"),
        ("redeem-15", "a nonce of 15 bytes", _message(19, bytes(15)), "out_of_range"),
        ("redeem-str", "a nonce that is a string", _message(19, "n" * 16), "bad_field"),
        ("redeem-bare", "a redeem without its nonce", _message(19), "bad_field"),
        ("punch-connect-5", "5 addresses", _message(20, bytes(8), ["h:1"] * 5), "out_of_range"),
        ("punch-connect-nonce-9", "a nonce of 9 bytes", _message(20, bytes(9), []),
         "out_of_range"),
        ("punch-connect-binary-address", "an address that is binary",
         _message(20, bytes(8), [b"h:1"]), "bad_field"),
        ("punch-connect-one-field", "no addresses field", _message(20, bytes(8)), "bad_field"),
        ("several-punch-connect", "5 addresses (out_of_range), then a nonce that is a string",
         _message(20, "n" * 8, ["h:1"] * 5), "bad_field"),
        ("punch-sync-7", "a nonce of 7 bytes", _message(21, bytes(7)), "out_of_range"),
        ("punch-sync-two-fields", "a punch_sync with a second field",
         _message(21, bytes(8), []), "bad_field"),
        ("non-canonical-version", "min_version 1 as uint8 (0xcc 0x01)",
         frame(hello.replace(b"\x01\x01\x90", b"\xcc\x01\x01\x90", 1)), "non_canonical"),
        ("non-canonical-array16", "the message as array16",
         frame(b"\xdc\x00\x02" + packb([1, 7])[1:]), "non_canonical"),
        ("non-canonical-bin16", "a 1-byte envelope as bin16",
         frame(b"\x93\x01\x03\x91\xc5\x00\x01x"), "non_canonical"),
        ("several-range-then-field", "min_version 0 (out_of_range) and an integer agent",
         _message(1, 0, 1, [], 5), "bad_field"),
        ("several-capabilities", "a bad capability name before an integer one",
         _message(1, 1, 1, ["Push", 5], ""), "bad_field"),
        ("several-count-then-type", "1001 envelopes, one a string",
         _message(3, [b"x"] * 1000 + ["x"]), "bad_field"),
        ("several-version-then-type", "wire version 2 and type 99",
         frame(packb([2, 99])), "unknown_version"),
        ("several-range-then-canonical", "min_version 0 as uint8 (0xcc 0x00)",
         frame(packb([1, 1, 0, 1, [], ""]).replace(b"\x01\x00\x01", b"\x01\xcc\x00\x01", 1)),
         "out_of_range"),
    ]  # fmt: skip
    return [
        {"name": name, "description": text, "message_hex": data.hex(), "reason": reason}
        for name, text, data, reason in cases
    ]


def _hello_outcome(received: list[Message], low: int, high: int) -> Json:
    greeting = Greeting(min_version=low, max_version=high)
    try:
        for message in received:
            greeting.receive(message)
    except RemoteProtocolError as exc:
        return {"result": exc.reason.value, "version": None}
    return {"result": "ok", "version": greeting.version}


def hello_rule_vectors() -> list[Json]:
    """What one side receives first on a connection, and what the hello rule says (§9.2)."""
    cases: list[tuple[str, str, tuple[int, int], list[Message]]] = [
        ("hello-then-messages", "hello first, then anything", (1, 1),
         [Hello(), Prune(), Sync(payload=None)]),
        ("highest-common", "we speak 1..3, the peer 2..5: version 3", (1, 3),
         [Hello(min_version=2, max_version=5)]),
        ("no-common-version", "we speak 1, the peer 2..3", (1, 1),
         [Hello(min_version=2, max_version=3)]),
        ("message-before-hello", "a prune before any hello", (1, 1), [Prune(), Hello()]),
        ("second-hello", "two hellos", (1, 1), [Hello(), Prune(), Hello()]),
    ]  # fmt: skip
    return [
        {
            "name": name,
            "description": text,
            "our_min_version": low,
            "our_max_version": high,
            "received_hex": [encode_message(m).hex() for m in received],
            **_hello_outcome(received, low, high),
        }
        for name, text, (low, high), received in cases
    ]


def build_vectors() -> Json:
    """The whole vector file, deterministically."""
    return {
        "format": "trustnode-wire-vectors",
        "format_version": 1,
        "spec": "protocol/SPEC.md",
        "wire_version": WIRE_VERSION,
        "max_message_bytes": DEFAULT_MAX_MESSAGE_BYTES,
        "positive": positive_vectors(),
        "negative": negative_vectors(),
        "hello_rules": hello_rule_vectors(),
    }


def main() -> int:
    """Rewrite the vector file; print its path and digest."""
    return write_vectors(VECTORS_PATH, build_vectors())


if __name__ == "__main__":
    sys.exit(main())
