"""Builds `protocol/vectors/punch-v1.json`: hole-punch coordination (SPEC §15.4).

Run `python -m tests.vectors.punch_vectors` to rewrite the file;
`tests/protocol/test_punch_vectors.py` fails if the file and this builder
disagree, and checks the code against it. `addresses` says which single
addresses are plausible to dial, `lists` what is dialled of a received
`addresses` array (order, repeats, the bound of 4), and `round` is one
Connect, Connect, Sync exchange run through `protocol.punch.Punches`: who
sends what when, the framed messages, and when each side dials.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from protocol.identity import IdentityKey
from protocol.punch import Dial, Punches, SendConnect, SendSync, plausible_addresses
from protocol.wire import encode_message
from tests.vectors.vector_file import write_vectors

VECTORS_PATH = Path(__file__).resolve().parents[2] / "protocol" / "vectors" / "punch-v1.json"
Json = dict[str, Any]

ADDRESSES = [
    ("203.0.113.12:7400", "a router's address with the listening port"),
    ("198.51.100.1:1", "port 1"),
    ("8.8.8.8:65535", "port 65535"),
    ("192.168.1.2:7400", "RFC 1918: a stranger on the dialler's own network"),
    ("10.0.0.1:7400", "RFC 1918"),
    ("172.16.0.1:7400", "RFC 1918"),
    ("100.64.0.1:7400", "CGNAT (RFC 6598)"),
    ("127.0.0.1:7400", "loopback"),
    ("169.254.1.1:7400", "link-local"),
    ("224.0.0.1:7400", "multicast"),
    ("255.255.255.255:7400", "broadcast (240/4)"),
    ("0.0.0.0:7400", "0/8"),
    ("203.0.113.12:0", "port 0"),
    ("203.0.113.12:65536", "port out of range"),
    ("203.0.113.12:07400", "port not in canonical decimal"),
    ("203.0.113.012:7400", "a leading zero in the host"),
    ("[2001:db8::1]:7400", "IPv6: not punched in this version"),
    ("example.org:7400", "a name: nothing is resolved for a peer"),
    ("203.0.113.12", "no port"),
]

LISTS = [
    ("the private address is left out", ["203.0.113.12:7400", "192.168.2.2:7400"]),
    ("repeats count once", ["203.0.113.12:7400", "203.0.113.12:7400", "198.51.100.1:7400"]),
    ("the first 4 plausible ones", [f"203.0.113.{n}:7400" for n in range(1, 6)]),
    ("nothing plausible", ["127.0.0.1:22", "10.0.0.1:80"]),
]


def _round() -> Json:
    """One round between two members, 0.4 s each way over their circuit."""
    low, high = sorted(
        (IdentityKey.from_seed(bytes([1]) * 32), IdentityKey.from_seed(bytes([2]) * 32)),
        key=lambda k: bytes(k.identity),
    )
    ours = {
        low.identity: ("198.51.100.1:7400",),
        high.identity: ("203.0.113.12:7400", "192.168.2.2:7400"),
    }
    initiator, responder = Punches(identity=low.identity), Punches(identity=high.identity)
    initiator.open_link(high.identity)
    responder.open_link(low.identity)
    steps: list[Json] = []
    [connect] = initiator.poll(now=100.0, nonce=lambda: bytes(range(8)),
                               ours=lambda: ours[low.identity])  # fmt: skip
    assert isinstance(connect, SendConnect)
    steps.append(_step("initiator", 100.0, 100.4, connect.message))
    [answer] = responder.receive(low.identity, connect.message, now=100.4,
                                 ours=lambda: ours[high.identity])  # fmt: skip
    assert isinstance(answer, SendConnect)
    steps.append(_step("responder", 100.4, 100.8, answer.message))
    sync, dial = initiator.receive(high.identity, answer.message, now=100.8, ours=lambda: ())
    assert isinstance(sync, SendSync)
    assert isinstance(dial, Dial)
    steps.append(_step("initiator", 100.8, 101.2, sync.message))
    [their_dial] = responder.receive(low.identity, sync.message, now=101.2, ours=lambda: ())
    assert isinstance(their_dial, Dial)
    return {
        "initiator_hex": bytes(low.identity).hex(),
        "responder_hex": bytes(high.identity).hex(),
        "initiator_addresses": list(ours[low.identity]),
        "responder_addresses": list(ours[high.identity]),
        "messages": steps,
        "initiator_dials": {"at_s": round(dial.at, 6), "addresses": list(dial.addresses)},
        "responder_dials": {
            "at_s": round(their_dial.at, 6),
            "addresses": list(their_dial.addresses),
        },
        "handshake_initiator": "initiator",
    }


def _step(sender: str, sent_s: float, received_s: float, message: Any) -> Json:
    return {"from": sender, "sent_at_s": sent_s, "received_at_s": received_s,
            "message_hex": encode_message(message).hex()}  # fmt: skip


def build_vectors() -> Json:
    """The whole file."""
    return {
        "description": "trustnode hole-punch coordination vectors (SPEC §15.4)",
        "addresses": [
            {"address": a, "description": d, "plausible": bool(plausible_addresses([a]))}
            for a, d in ADDRESSES
        ],
        "lists": [
            {"description": d, "received": r, "dialled": list(plausible_addresses(r))}
            for d, r in LISTS
        ],
        "round": _round(),
    }


def main() -> int:
    """Rewrite the vector file."""
    return write_vectors(VECTORS_PATH, build_vectors())


if __name__ == "__main__":
    sys.exit(main())
