"""Builds `protocol/vectors/invites-v1.json` from fixed seeds (SPEC §12).

Run `python -m tests.vectors.invite_vectors` to rewrite the file;
`tests/protocol/test_invite_vectors.py` fails if the file and this builder
disagree, and checks the code against every vector in it. As with the
attestation vectors, each negative vector has exactly one defect and, unless the
defect is the signature, a valid signature over the exact body bytes.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from protocol.codec import Value, pack
from protocol.identity import IdentityKey, encode_identity_text
from protocol.invite import Invite, encode_invite, sign_invite
from tests.vectors.vector_file import write_vectors

VECTORS_PATH = Path(__file__).resolve().parents[2] / "protocol" / "vectors" / "invites-v1.json"
DOMAIN = b"trustnode/invite/v1\x00"
T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z
COMMUNITY_ID = bytes(range(32))
COMMUNITY_KEY = bytes(range(32, 64))
NONCE = bytes(range(100, 116))

Json = dict[str, Any]


def key(n: int) -> IdentityKey:
    """The fixed key number `n`: its seed is 32 bytes of value `n` (as the attestation vectors)."""
    return IdentityKey.from_seed(bytes([n]) * 32)


ALICE = key(1)


def _positive(name: str, description: str, invite: Invite, dialable: list[str]) -> Json:
    code = sign_invite(invite, ALICE)
    body = pack(invite._fields())
    return {
        "name": name,
        "description": description,
        "inviter_seed_hex": (bytes([1]) * 32).hex(),
        "inviter_hex": invite.inviter.hex(),
        "inviter_text": encode_identity_text(invite.inviter),
        "community_id_hex": invite.community_id.hex(),
        "community_key_hex": None if invite.community_key is None else invite.community_key.hex(),
        "key_hex": invite.key.hex(),
        "bootstrap": list(invite.bootstrap),
        "dialable": dialable,
        "expires_at_ms": invite.expires_at_ms,
        "nonce_hex": None if invite.nonce is None else invite.nonce.hex(),
        "body_hex": body.hex(),
        "signature_hex": ALICE.sign(DOMAIN + body).hex(),
        "code": code,
    }


def _invite(**fields: Any) -> Invite:
    values: dict[str, Any] = {
        "community_id": COMMUNITY_ID,
        "community_key": COMMUNITY_KEY,
        "bootstrap": ("192.0.2.7:7400",),
        "inviter": ALICE.identity,
        "expires_at_ms": T0 + 7 * 86_400_000,
        "nonce": None,
    }
    values.update(fields)
    return Invite(**values)


def positive_vectors() -> list[Json]:
    """Codes that decode, with what a joiner makes of them."""
    return [
        _positive(
            "closed-one-address", "a closed community, one address (what nodes made before "
            "several addresses were filled in)", _invite(), ["192.0.2.7:7400"],
        ),
        _positive(
            "closed-several-addresses", "every address of a node listening on a wildcard, "
            "IPv4 first, then IPv6 in brackets, then a DNS name given with --advertise",
            _invite(bootstrap=("192.0.2.7:7400", "198.51.100.7:7400", "[2001:db8::7]:7400",
                               "node.example.org:7400")),
            ["192.0.2.7:7400", "198.51.100.7:7400", "[2001:db8::7]:7400",
             "node.example.org:7400"],
        ),
        _positive(
            "open-no-expiry", "an open community (key derived from the id), no expiry, "
            "single-use nonce", _invite(community_key=None, expires_at_ms=None, nonce=NONCE),
            ["192.0.2.7:7400"],
        ),
        _positive(
            "eight-addresses", "the most an invite carries",
            _invite(bootstrap=tuple(f"192.0.2.{i}:7400" for i in range(1, 9))),
            [f"192.0.2.{i}:7400" for i in range(1, 9)],
        ),
        _positive(
            "wildcard-from-an-old-node", "decodes, but 0.0.0.0 names no host: a joiner "
            "keeps only the other address",
            _invite(bootstrap=("0.0.0.0:7400", "192.0.2.7:7400")), ["192.0.2.7:7400"],
        ),
        _positive(
            "loopback-only", "decodes; works only on the inviter's machine (a joiner warns)",
            _invite(bootstrap=("127.0.0.1:7400",)), ["127.0.0.1:7400"],
        ),
    ]  # fmt: skip


def _signed(fields: tuple[Value, ...] | bytes) -> str:
    body = fields if isinstance(fields, bytes) else pack(fields)
    return encode_invite(pack((body, ALICE.sign(DOMAIN + body))))


def _fields(**changes: Value) -> tuple[Value, ...]:
    names = ["version", "community_id", "community_key", "bootstrap", "inviter",
             "expires_at_ms", "nonce"]  # fmt: skip
    values: dict[str, Value] = dict(zip(names, _invite()._fields(), strict=True))
    values.update(changes)
    return tuple(values[n] for n in names)


def negative_vectors() -> list[Json]:
    """Codes a decoder refuses, each for one reason."""
    good = sign_invite(_invite(), ALICE)
    canonical = pack(_fields())
    # expires_at_ms as a uint64 (0xcf) instead of the shortest form (0xcf is also
    # shortest for T0 + 7 days, so use a small expiry written as uint64 instead).
    small = pack(_fields(expires_at_ms=5))
    assert small.count(b"\x05\xc0") == 1  # expires_at_ms = 5, nonce = nil, at the end
    wide = small.replace(b"\x05\xc0", b"\xcf" + (5).to_bytes(8, "big") + b"\xc0")
    flipped = bytearray(bytes.fromhex(_positive("x", "", _invite(), [])["signature_hex"]))
    flipped[0] ^= 1
    cases: list[tuple[str, str, str, str]] = [
        ("no-prefix", "not an invite", good.removeprefix("tninvite1_"), "bad_text"),
        ("uppercase", "base32 is lowercase", good.upper().replace("TNINVITE1_", "tninvite1_"),
         "bad_text"),
        ("too-long", "more than 2048 characters", "tninvite1_" + "a" * 2039, "bad_text"),
        ("not-msgpack", "the bytes are no msgpack value", encode_invite(b"\xc1"), "malformed"),
        ("trailing-bytes", "a byte after the [body, signature] array",
         encode_invite(pack((canonical, ALICE.sign(DOMAIN + canonical))) + b"\x00"),
         "trailing_bytes"),
        ("version-2", "a body of a later version", _signed(_fields(version=2)),
         "unknown_version"),
        ("six-fields", "a v1 body without its nonce", _signed(_fields()[:6]), "bad_field"),
        ("no-address", "an empty bootstrap array", _signed(_fields(bootstrap=())),
         "out_of_range"),
        ("nine-addresses", "more than 8 addresses",
         _signed(_fields(bootstrap=tuple(f"192.0.2.{i}:7400" for i in range(1, 10)))),
         "out_of_range"),
        ("port-zero", "port 0 is no port to dial", _signed(_fields(bootstrap=("192.0.2.7:0",))),
         "out_of_range"),
        ("address-not-a-string", "an address as bytes",
         _signed(_fields(bootstrap=(b"192.0.2.7:7400",))), "bad_field"),
        ("non-canonical-int", "expires_at_ms = 5 written as a uint64", _signed(wide),
         "non_canonical"),
        ("bad-signature", "one bit of the signature flipped",
         encode_invite(pack((canonical, bytes(flipped)))), "bad_signature"),
    ]  # fmt: skip
    return [
        {"name": name, "description": description, "code": code, "reason": reason}
        for name, description, code, reason in cases
    ]


def expiry_vectors() -> list[Json]:
    """An invite is refused at and after `expires_at_ms` (reason `expired`)."""
    code = sign_invite(_invite(), ALICE)
    expires = T0 + 7 * 86_400_000
    return [
        {"code": code, "now_ms": expires - 1, "result": "ok"},
        {"code": code, "now_ms": expires, "result": "expired"},
    ]


def build_vectors() -> Json:
    """The whole vector file, deterministically."""
    return {
        "format": "trustnode-invite-vectors",
        "format_version": 1,
        "spec": "protocol/SPEC.md",
        "signature_domain_hex": DOMAIN.hex(),
        "positive": positive_vectors(),
        "negative": negative_vectors(),
        "expiry": expiry_vectors(),
    }


def main() -> int:
    """Rewrite the vector file; print its path and digest."""
    return write_vectors(VECTORS_PATH, build_vectors())


if __name__ == "__main__":
    sys.exit(main())
