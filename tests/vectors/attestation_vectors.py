"""Builds `protocol/vectors/attestations-v1.json` from fixed seeds (SPEC §8).

Run `python -m tests.vectors.attestation_vectors` to rewrite the file;
`tests/protocol/test_vectors.py` fails if the file and this builder disagree,
and checks the code against every vector in the file. Negative vectors have
exactly one defect each, except those named `several-*`, whose defects check the
order of SPEC §2.5; wherever the defect is not the signature itself they carry
a valid signature over the exact bytes: an implementation cannot pass them by
checking the signature first and skipping the other rules.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack

from protocol.attestation import (
    MAX_ENVELOPE_BYTES,
    MAX_TIME_MS,
    SIGNATURE_DOMAIN,
    Attestation,
    AttestationBody,
    encode_body,
    sign_attestation,
)
from protocol.identity import IdentityKey, encode_identity_text
from protocol.statement import (
    Certify,
    Kind,
    Profile,
    Rate,
    Revoke,
    Statement,
    Thing,
    Trust,
    commit_claim_value,
)
from protocol.supersession import resolve_slot, slot_head
from tests.vectors.vector_file import write_vectors

VECTORS_PATH = Path(__file__).resolve().parents[2] / "protocol" / "vectors" / "attestations-v1.json"
T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z
# The group order of edwards25519 (RFC 8032 §5.1): S + L is S in lax verifiers.
ED25519_L = 2**252 + 27742317777372353535851937790883648493
# The neutral element (0, 1), a small-order key, and the encoded base point.
NEUTRAL_POINT = bytes([1]) + bytes(31)
BASE_POINT = bytes.fromhex("5866666666666666666666666666666666666666666666666666666666666666")

Json = dict[str, Any]


def key(n: int) -> IdentityKey:
    """The fixed key number `n`: its seed is 32 bytes of value `n`."""
    return IdentityKey.from_seed(bytes([n]) * 32)


ALICE, BOB, CAROL, DAVE = key(1), key(2), key(3), key(4)


def body(
    statement: Statement,
    *,
    issuer: IdentityKey = ALICE,
    issued_at_ms: int = T0,
    expires_at_ms: int | None = None,
) -> AttestationBody:
    """A body issued by `issuer` (Alice unless said otherwise)."""
    return AttestationBody(
        issuer=issuer.identity,
        issued_at_ms=issued_at_ms,
        expires_at_ms=expires_at_ms,
        statement=statement,
    )


def sign_raw(body_bytes: bytes, signer: IdentityKey) -> bytes:
    """An envelope around arbitrary body bytes, signed by `signer` over exactly those bytes."""
    signature = signer.sign(SIGNATURE_DOMAIN + body_bytes)
    return b"\x92" + body_bytes + b"\xc4\x40" + signature


def packb(value: object) -> bytes:
    """Canonical msgpack, as the protocol encodes it."""
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    return packed


def statement_fields(statement: Statement) -> Json:
    """The statement's fields in the vector file's JSON form."""

    def subject(value: bytes | str) -> Json:
        return {"subject_thing": value} if isinstance(value, str) else {"subject_hex": value.hex()}

    if isinstance(statement, Trust):
        named = {} if statement.name is None else {"name": statement.name}
        return {
            "kind": "trust",
            **subject(statement.subject),
            "context": statement.context,
            "value": statement.value,
            **named,
        }
    if isinstance(statement, Profile):
        return {
            "kind": "profile",
            **subject(statement.subject),
            "name": statement.name,
            "about": statement.about,
        }
    if isinstance(statement, Certify):
        commitment = None if statement.commitment is None else statement.commitment.hex()
        return {
            "kind": "certify",
            **subject(statement.subject),
            "claim": statement.claim,
            "commitment_hex": commitment,
        }
    if isinstance(statement, Rate):
        return {
            "kind": "rate",
            **subject(statement.subject),
            "context": statement.context,
            "value": statement.value,
            "reference": statement.reference,
        }
    assert isinstance(statement, Revoke)
    return {
        "kind": "revoke",
        "target_kind": statement.target_kind.name.lower(),
        **subject(statement.subject),
        "scope": statement.scope,
    }


def positive(name: str, description: str, signer: IdentityKey, b: AttestationBody) -> Json:
    """One positive vector: every intermediate value an implementer may want to compare."""
    attestation = sign_attestation(b, signer)
    body_bytes = encode_body(b)
    return {
        "name": name,
        "description": description,
        "issuer_seed_hex": signer.seed.hex(),
        "issuer_hex": signer.identity.hex(),
        "issuer_text": encode_identity_text(signer.identity),
        "issued_at_ms": b.issued_at_ms,
        "expires_at_ms": b.expires_at_ms,
        "statement": statement_fields(b.statement),
        "body_hex": body_bytes.hex(),
        "signed_message_hex": (SIGNATURE_DOMAIN + body_bytes).hex(),
        "signature_hex": attestation.envelope.signature.hex(),
        "envelope_hex": attestation.data.hex(),
        "id_hex": attestation.id.hex(),
        "slot": {"kind": attestation.slot.kind.name.lower(), "id_hex": attestation.slot.id.hex()},
    }


SALT = bytes(range(32))
COMMITMENT = commit_claim_value(
    subject=BOB.identity, claim="resident:rue-des-lilas", value=b"12 rue des Lilas", salt=SALT
)


def positive_vectors() -> list[Json]:
    """Every kind, every optional field, and the edges of every range."""
    bob, carol = BOB.identity, CAROL.identity
    cases: list[tuple[str, str, AttestationBody]] = [
        ("trust-general", "trust in the default context", body(Trust(subject=bob, value=80))),
        (
            "trust-context",
            "trust in a named context",
            body(Trust(subject=bob, context="carpool", value=55)),
        ),
        (
            "trust-distrust-min",
            "the strongest distrust (flag)",
            body(Trust(subject=carol, context="carpool", value=-100)),
        ),
        ("trust-max", "the strongest trust", body(Trust(subject=carol, value=100))),
        ("trust-zero", "a neutral value", body(Trust(subject=carol, value=0))),
        (
            "trust-expiring",
            "an attestation with an expiry time",
            body(Trust(subject=bob, context="co-op.food", value=30), expires_at_ms=T0 + 86_400_000),
        ),
        (
            "trust-time-zero",
            "the earliest issued_at_ms",
            body(Trust(subject=bob, value=1), issued_at_ms=0),
        ),
        (
            "trust-time-max",
            "the latest issued_at_ms (2**53-1)",
            body(Trust(subject=bob, value=1), issued_at_ms=MAX_TIME_MS),
        ),
        (
            "trust-long-context",
            "a context of the maximal 64 bytes",
            body(Trust(subject=bob, context="a" + "b-c.d:e/f_" * 6 + "xyz", value=10)),
        ),
        (
            "certify-plain",
            "a claim without commitment",
            body(Certify(subject=bob, claim="member:garden-coop")),
        ),
        (
            "certify-commitment",
            "a claim with a salted commitment (see commitments[0])",
            body(Certify(subject=bob, claim="resident:rue-des-lilas", commitment=COMMITMENT)),
        ),
        (
            "rate-identity",
            "a rating of an identity, with a reference to the exchange",
            body(Rate(subject=carol, context="carpool", value=70, reference="ride:2023-11-14")),
        ),
        (
            "rate-thing",
            "a rating of a thing named by a URI",
            body(
                Rate(
                    subject=Thing("https://example.org/tools/drill?id=7"),
                    context="lending",
                    value=-20,
                )
            ),
        ),
        (
            "rate-thing-long",
            "a thing URI of the maximal 512 bytes",
            body(Rate(subject=Thing("urn:" + "x" * 508), value=5)),
        ),
        (
            "rate-reference-long",
            "a reference of the maximal 256 bytes",
            body(Rate(subject=bob, value=5, reference="r" * 256)),
        ),
        (
            "revoke-trust",
            "a revocation of a trust slot",
            body(
                Revoke(target_kind=Kind.TRUST, subject=bob, scope="carpool"), issued_at_ms=T0 + 1000
            ),
        ),
        (
            "revoke-certify",
            "a revocation of a certification",
            body(
                Revoke(target_kind=Kind.CERTIFY, subject=bob, scope="member:garden-coop"),
                issued_at_ms=T0 + 1000,
            ),
        ),
        (
            "revoke-rate-thing",
            "a revocation of the rating of a thing",
            body(
                Revoke(
                    target_kind=Kind.RATE,
                    subject=Thing("https://example.org/tools/drill?id=7"),
                    scope="lending",
                ),
                issued_at_ms=T0 + 1000,
            ),
        ),
        (
            "other-issuer",
            "an attestation by another issuer",
            body(Trust(subject=ALICE.identity, value=90), issuer=DAVE),
        ),
        *_naming_cases(),
    ]
    signer = {ALICE.identity: ALICE, DAVE.identity: DAVE}
    return [positive(name, text, signer[b.issuer], b) for name, text, b in cases]


# Labels at their limits (SPEC §3.4): 64 code points of 2 bytes each fill the 128
# bytes of a name; 70 code points of 4 bytes fill the 280 bytes of an about line.
NAME_128_BYTES = "é" * 64
ABOUT_280_BYTES = "\U0001f33b" * 70


def _naming_cases() -> list[tuple[str, str, AttestationBody]]:
    """Profiles and named trusts (SPEC §3.2, §3.4)."""
    alice, bob = ALICE.identity, BOB.identity
    return [
        ("profile-name", "a self-chosen display name", body(Profile(subject=alice, name="Alice"))),
        (
            "profile-about",
            "a display name in NFC with an about line",
            body(
                Profile(subject=alice, name="Zoë Durand", about="Bakery, rue des Lilas"),
                issued_at_ms=T0 + 5,
            ),
        ),
        (
            "profile-longest",
            "a name of 128 bytes (64 code points) and an about line of 280 bytes",
            body(Profile(subject=alice, name=NAME_128_BYTES, about=ABOUT_280_BYTES)),
        ),
        (
            "profile-cyrillic",
            "a name in Cyrillic (any script is allowed; look-alikes are the viewer's concern)",
            body(Profile(subject=alice, name="Грейс")),
        ),
        (
            "trust-named",
            "a vouch with the name the voucher knows the subject by (a ninth field)",
            body(Trust(subject=bob, value=80, name="Bob (rue des Lilas)")),
        ),
        (
            "revoke-profile",
            "a revocation of the issuer's profile",
            body(
                Revoke(target_kind=Kind.PROFILE, subject=alice, scope="profile"),
                issued_at_ms=T0 + 1000,
            ),
        ),
    ]


def _profile(name: object = "Alice", about: object = None, **override: object) -> bytes:
    fields: list[object] = [1, 5, ALICE.identity, T0, None, ALICE.identity, name, about]
    for index, new in override.items():
        fields[int(index[1:])] = new
    return _signed(fields)


def _named(name: object) -> bytes:
    return _signed([*_trust_fields(), name])


def _naming_negatives() -> list[tuple[str, str, bytes, str, str]]:
    """Labels the rules of SPEC §3.4 refuse, and malformed profiles (SPEC §3.2)."""
    d = "decode"
    return [
        ("profile-not-self", "a profile whose subject is not its issuer",
         _profile(f5=BOB.identity), d, "out_of_range"),
        ("profile-name-empty", "an empty display name", _profile(""), d, "out_of_range"),
        ("profile-name-129-bytes", "a name of 129 bytes (64 code points)",
         _profile("é" * 63 + "ab"), d, "out_of_range"),
        ("profile-name-65-code-points", "a name of 65 code points (65 bytes)",
         _profile("a" * 65), d, "out_of_range"),
        ("profile-name-nfd", "a name in NFD (e + combining acute), not NFC",
         _profile("Zoe\u0301"), d, "out_of_range"),
        ("profile-name-bidi", "a name with a right-to-left override (Cf)",
         _profile("Grace\u202egpj.exe"), d, "out_of_range"),
        ("profile-name-control", "a name with an escape character (Cc)",
         _profile("Grace\x1b[31m"), d, "out_of_range"),
        ("profile-name-newline", "a name with a newline (Cc)", _profile("Grace\nBob"), d,
         "out_of_range"),
        ("profile-name-zero-width", "a name with a zero-width space (Cf)",
         _profile("Gr\u200bace"), d, "out_of_range"),
        ("profile-name-nbsp", "a name with a no-break space (Zs other than U+0020)",
         _profile("Grace\u00a0Hopper"), d, "out_of_range"),
        ("profile-name-line-separator", "a name with U+2028 (Zl)", _profile("a\u2028b"), d,
         "out_of_range"),
        ("profile-name-private-use", "a name with U+E000 (Co)", _profile("a\ue000"), d,
         "out_of_range"),
        ("profile-name-leading-space", "a name that starts with a space", _profile(" Grace"), d,
         "out_of_range"),
        ("profile-name-trailing-space", "a name that ends with a space", _profile("Grace "), d,
         "out_of_range"),
        ("profile-name-binary", "a name that is bin, not str", _profile(b"Grace"), d, "bad_field"),
        ("profile-about-281-bytes", "an about line of 281 bytes",
         _profile(about="\U0001f33b" * 70 + "a"), d, "out_of_range"),
        ("profile-about-empty", "an empty about line (absent is nil)", _profile(about=""), d,
         "out_of_range"),
        ("profile-about-int", "an about line that is an integer", _profile(about=7), d,
         "bad_field"),
        ("profile-seven-fields", "a profile without its about field",
         _signed([1, 5, ALICE.identity, T0, None, ALICE.identity, "Alice"]), d, "bad_field"),
        ("profile-thing", "a profile whose subject is a string",
         _profile(f5="urn:x"), d, "bad_field"),
        ("revoke-profile-other", "a revocation of a profile slot that is not the issuer's",
         _signed([1, 4, ALICE.identity, T0, None, 5, BOB.identity, "profile"]), d,
         "out_of_range"),
        ("revoke-profile-scope", "a revocation of a profile with a scope other than 'profile'",
         _signed([1, 4, ALICE.identity, T0, None, 5, ALICE.identity, "general"]), d,
         "out_of_range"),
        ("trust-name-nil", "a trust whose ninth field is nil (absent is eight fields)",
         _named(None), d, "bad_field"),
        ("trust-name-empty", "a trust with an empty name", _named(""), d, "out_of_range"),
        ("trust-name-bidi", "a trust name with a left-to-right isolate (Cf)",
         _named("Bob\u2066"), d, "out_of_range"),
        ("trust-name-nfd", "a trust name in NFD", _named("Ame\u0301lie"), d, "out_of_range"),
        ("trust-ten-fields", "a named trust with a tenth field", _signed([*_trust_fields(), "Bob",
         None]), d, "bad_field"),
        ("several-name-then-value-type", "an NFD name (out_of_range) and a boolean value",
         _signed([*_trust_fields(True), "Ame\u0301lie"]), d, "bad_field"),
    ]  # fmt: skip


def _trust_fields(value: object = 55, **override: object) -> list[object]:
    fields: list[object] = [1, 1, ALICE.identity, T0, None, BOB.identity, "carpool", value]
    for index, new in override.items():
        fields[int(index[1:])] = new
    return fields


def _signed(fields: list[object]) -> bytes:
    return sign_raw(packb(fields), ALICE)


def _with_body_bytes(edit: Callable[[bytes], bytes]) -> bytes:
    return sign_raw(edit(packb(_trust_fields())), ALICE)


def _valid() -> bytes:
    return _signed(_trust_fields())


def _flip_last_signature_byte() -> bytes:
    data = bytearray(_valid())
    data[-1] ^= 0x01
    return bytes(data)


def _signature_plus_l() -> bytes:
    data = _valid()
    s = int.from_bytes(data[-32:], "little") + ED25519_L
    return data[:-32] + s.to_bytes(32, "little")


def _neutral_key_forgery() -> bytes:
    # With A = neutral element, [k]A vanishes, so R = B, S = 1 satisfies the
    # cofactorless equation [S]B = R + [k]A for every message: a verifier that
    # does not refuse small-order keys accepts this forgery.
    fields = _trust_fields(f2=NEUTRAL_POINT)
    return b"\x92" + packb(fields) + b"\xc4\x40" + BASE_POINT + (1).to_bytes(32, "little")


def _small_order_r_forgery(r: bytes = NEUTRAL_POINT) -> bytes:
    # R = the neutral element and S = k*a (a: Alice's secret scalar, RFC 8032
    # §5.1.5) satisfy [S]B = R + [k]A: lax verifiers that skip the small-order
    # check on R accept it; strict ones (SPEC §4.2) refuse. With R of order 4
    # (y = 0), S = k*a satisfies the cofactored equation [8][S]B = [8]R + [8][k]A.
    body_bytes = packb(_trust_fields())
    digest = bytearray(hashlib.sha512(ALICE.seed).digest()[:32])
    digest[0] &= 248
    digest[31] &= 127
    digest[31] |= 64
    scalar = int.from_bytes(digest, "little")
    k_hash = hashlib.sha512(r + ALICE.identity + SIGNATURE_DOMAIN + body_bytes).digest()
    s = int.from_bytes(k_hash, "little") % ED25519_L * scalar % ED25519_L
    return b"\x92" + body_bytes + b"\xc4\x40" + r + s.to_bytes(32, "little")


# Non-canonical encodings (y >= p) of the small-order points y = 0 and y = 1.
P_25519 = 2**255 - 19
R_Y_P = P_25519.to_bytes(32, "little")
R_Y_P_PLUS_1 = (P_25519 + 1).to_bytes(32, "little")


def _non_canonical_key_forgery() -> bytes:
    # y = p + 1 is a non-canonical encoding of the neutral element; the same
    # R = B, S = 1 forgery as above works for verifiers that reduce y mod p.
    key = bytes([0xEE]) + b"\xff" * 30 + b"\x7f"
    fields = _trust_fields(f2=key)
    return b"\x92" + packb(fields) + b"\xc4\x40" + BASE_POINT + (1).to_bytes(32, "little")


def negative_vectors() -> list[Json]:
    """Each case: name, description, envelope, and the error class and reason expected."""
    valid = _valid()
    d, v = "decode", "verify"
    cases: list[tuple[str, str, bytes, str, str]] = [
        (
            "too-large",
            "1025 bytes: refused before parsing",
            b"\xc5\x03\xfe" + bytes(1022),
            d,
            "too_large",
        ),
        ("empty", "no bytes at all", b"", d, "malformed"),
        ("truncated", "a valid envelope without its last byte", valid[:-1], d, "malformed"),
        ("not-msgpack", "0xc1 is never used in msgpack", b"\xc1", d, "malformed"),
        ("not-an-array", "a map instead of an array", packb({"v": 1}), d, "malformed"),
        (
            "envelope-of-three",
            "an envelope with an extra element",
            b"\x93" + valid[1:] + b"\xc0",
            d,
            "malformed",
        ),
        (
            "body-not-array",
            "the body is a binary string",
            packb([b"x" * 8, bytes(64)]),
            d,
            "malformed",
        ),
        (
            "version-not-int",
            "the version is a string",
            _signed(["1", *_trust_fields()[1:]]),
            d,
            "malformed",
        ),
        (
            "trailing-bytes",
            "a valid envelope followed by one zero byte",
            valid + b"\x00",
            d,
            "trailing_bytes",
        ),
        (
            "unknown-version",
            "version 2, otherwise a valid v1 trust",
            _signed([2, *_trust_fields()[1:]]),
            d,
            "unknown_version",
        ),
        ("unknown-kind", "kind 6", _signed(_trust_fields(f1=6)), d, "unknown_kind"),
        ("kind-zero", "kind 0", _signed(_trust_fields(f1=0)), d, "unknown_kind"),
        (
            "too-many-fields",
            "a trust body with a ninth field",
            _signed([*_trust_fields(), None]),
            d,
            "bad_field",
        ),
        (
            "short-subject",
            "a 31-byte subject",
            _signed(_trust_fields(f5=bytes(31))),
            d,
            "bad_field",
        ),
        (
            "long-issuer",
            "a 33-byte issuer",
            _signed(_trust_fields(f2=ALICE.identity + b"\x00")),
            d,
            "bad_field",
        ),
        ("value-bool", "the value is msgpack true", _signed(_trust_fields(True)), d, "bad_field"),
        (
            "value-float",
            "the value is the float 55.0",
            _signed(_trust_fields(55.0)),
            d,
            "bad_field",
        ),
        (
            "context-binary",
            "the context is binary, not a string",
            _signed(_trust_fields(f6=b"carpool")),
            d,
            "bad_field",
        ),
        (
            "short-signature",
            "a 63-byte signature",
            b"\x92" + packb(_trust_fields()) + b"\xc4\x3f" + bytes(63),
            d,
            "bad_field",
        ),
        ("value-101", "value above 100", _signed(_trust_fields(101)), d, "out_of_range"),
        ("value-minus-101", "value below -100", _signed(_trust_fields(-101)), d, "out_of_range"),
        (
            "context-upper",
            "a context with an upper-case letter",
            _signed(_trust_fields(f6="Carpool")),
            d,
            "out_of_range",
        ),
        (
            "context-empty",
            "an empty context",
            _signed(_trust_fields(f6="")),
            d,
            "out_of_range",
        ),
        (
            "context-65",
            "a context of 65 bytes",
            _signed(_trust_fields(f6="a" * 65)),
            d,
            "out_of_range",
        ),
        (
            "time-negative",
            "issued_at_ms below 0",
            _signed(_trust_fields(f3=-1)),
            d,
            "out_of_range",
        ),
        (
            "time-2-53",
            "issued_at_ms of 2**53",
            _signed(_trust_fields(f3=MAX_TIME_MS + 1)),
            d,
            "out_of_range",
        ),
        (
            "expiry-not-after",
            "expires_at_ms equal to issued_at_ms",
            _signed(_trust_fields(f4=T0)),
            d,
            "out_of_range",
        ),
        (
            "revoke-expiring",
            "a revocation with an expiry time",
            _signed([1, 4, ALICE.identity, T0, T0 + 1, 1, BOB.identity, "carpool"]),
            d,
            "out_of_range",
        ),
        (
            "revoke-target-string",
            "a revocation whose target kind is the string 'trust'",
            _signed([1, 4, ALICE.identity, T0, None, "trust", BOB.identity, "carpool"]),
            d,
            "bad_field",
        ),
        (
            "revoke-revoke",
            "a revocation that targets kind 4",
            _signed([1, 4, ALICE.identity, T0, None, 4, BOB.identity, "carpool"]),
            d,
            "out_of_range",
        ),
        (
            "thing-no-scheme",
            "a rated thing that is not a URI",
            _signed([1, 3, ALICE.identity, T0, None, "drill 7", "general", 5, None]),
            d,
            "out_of_range",
        ),
        (
            "trust-thing",
            "a trust attestation about a thing (trust needs an identity)",
            _signed(_trust_fields(f5="https://example.org")),
            d,
            "bad_field",
        ),
        (
            "value-uint8",
            "the value 55 as uint8 (0xcc 0x37) instead of a fixint",
            _with_body_bytes(lambda b: b[:-1] + b"\xcc\x37"),
            d,
            "non_canonical",
        ),
        (
            "time-uint64",
            "issued_at_ms 1000 as uint64 instead of uint16",
            _signed_time_uint64(),
            d,
            "non_canonical",
        ),
        (
            "context-str8",
            "a 7-byte context as str8 (0xd9) instead of fixstr",
            _with_body_bytes(lambda b: b.replace(b"\xa7carpool", b"\xd9\x07carpool")),
            d,
            "non_canonical",
        ),
        (
            "body-array16",
            "the body as array16 instead of fixarray",
            _with_body_bytes(lambda b: b"\xdc\x00\x08" + b[1:]),
            d,
            "non_canonical",
        ),
        (
            "signature-bin16",
            "the signature as bin16 instead of bin8",
            valid[:-66] + b"\xc5\x00\x40" + valid[-64:],
            d,
            "non_canonical",
        ),
        (
            "bad-signature",
            "the last signature byte flipped",
            _flip_last_signature_byte(),
            v,
            "bad_signature",
        ),
        (
            "wrong-signer",
            "signed by another key than the issuer's",
            sign_raw(packb(_trust_fields()), BOB),
            v,
            "bad_signature",
        ),
        (
            "no-domain",
            "signed without the domain-separation prefix",
            _signed_without_domain(),
            v,
            "bad_signature",
        ),
        (
            "s-plus-l",
            "the signature's S replaced by S + L (non-canonical scalar)",
            _signature_plus_l(),
            v,
            "bad_signature",
        ),
        (
            "small-order-key",
            "issuer is the neutral point; a cofactorless forgery",
            _neutral_key_forgery(),
            v,
            "bad_signature",
        ),
        (
            "small-order-r",
            "R is the neutral point and S = k*a: a forgery-shaped signature lax verifiers accept",
            _small_order_r_forgery(),
            v,
            "bad_signature",
        ),
        (
            "non-canonical-r-y-p",
            "R encoded as y = p (the order-4 point y = 0, non-canonically) and S = k*a",
            _small_order_r_forgery(R_Y_P),
            v,
            "bad_signature",
        ),
        (
            "non-canonical-r-y-p-plus-1",
            "R encoded as y = p + 1 (the neutral point, non-canonically) and S = k*a",
            _small_order_r_forgery(R_Y_P_PLUS_1),
            v,
            "bad_signature",
        ),
        (
            "non-canonical-key",
            "issuer key with y = p + 1 (the neutral point, non-canonically encoded)",
            _non_canonical_key_forgery(),
            v,
            "bad_signature",
        ),
        ("invalid-utf8", "a context that is not valid UTF-8",
         sign_raw(packb(_trust_fields()).replace(b"\xa7carpool", b"\xa7carp\xffol"), ALICE),
         d, "malformed"),
        ("map-in-field", "a context that is a map", _signed(_trust_fields(f6={"a": 1})),
         d, "bad_field"),
        ("ext-in-field", "a value that is an extension type",
         _signed(_trust_fields(msgpack.ExtType(5, b"x"))), d, "bad_field"),
        ("revoke-trust-thing", "a revocation of trust whose subject is a string",
         _signed([1, 4, ALICE.identity, T0, None, 1, "urn:x", "carpool"]), d, "bad_field"),
        ("thing-513", "a rated thing of 513 bytes",
         _signed([1, 3, ALICE.identity, T0, None, "urn:" + "x" * 509, "general", 5, None]),
         d, "out_of_range"),
        ("thing-upper-scheme", "a rated thing whose scheme has an upper-case letter",
         _signed([1, 3, ALICE.identity, T0, None, "URN:x", "general", 5, None]),
         d, "out_of_range"),
        ("reference-empty", "an empty reference",
         _signed([1, 3, ALICE.identity, T0, None, BOB.identity, "general", 5, ""]),
         d, "out_of_range"),
        ("reference-257", "a reference of 257 bytes",
         _signed([1, 3, ALICE.identity, T0, None, BOB.identity, "general", 5, "r" * 257]),
         d, "out_of_range"),
        ("commitment-31", "a 31-byte commitment",
         _signed([1, 2, ALICE.identity, T0, None, BOB.identity, "member:x", bytes(31)]),
         d, "bad_field"),
        ("revoke-rate-thing-bad", "a revocation of a rating whose subject is no thing URI",
         _signed([1, 4, ALICE.identity, T0, None, 3, "drill 7", "lending"]), d, "out_of_range"),
        ("revoke-rate-thing-513", "a revocation of the rating of a thing of 513 bytes",
         _signed([1, 4, ALICE.identity, T0, None, 3, "urn:" + "x" * 509, "lending"]),
         d, "out_of_range"),
        *_naming_negatives(),
        *_several_defects(),
    ]  # fmt: skip
    return [
        {
            "name": name,
            "description": text,
            "envelope_hex": data.hex(),
            "error": error,
            "reason": reason,
        }
        for name, text, data, error, reason in cases
    ]


def _several_defects() -> list[tuple[str, str, bytes, str, str]]:
    """Envelopes with more than one defect: the first failing step of SPEC §2.5 names
    the reason, whatever the fields' order."""
    d = "decode"
    issuer_33 = ALICE.identity + b"\x00"
    return [
        ("several-range-then-field", "value 101 (out_of_range) and a 33-byte issuer (bad_field)",
         _signed(_trust_fields(101, f2=issuer_33)), d, "bad_field"),
        ("several-range-then-signature", "value 101 and a 63-byte signature",
         b"\x92" + packb(_trust_fields(101)) + b"\xc4\x3f" + bytes(63), d, "bad_field"),
        ("several-time-then-context", "issued_at_ms of 2**53 and a binary context",
         _signed(_trust_fields(f3=MAX_TIME_MS + 1, f6=b"carpool")), d, "bad_field"),
        ("several-revoke-target-then-subject",
         "a revocation of target kind 9 (out_of_range) whose subject is an integer (bad_field)",
         _signed([1, 4, ALICE.identity, T0, None, 9, 7, "carpool"]), d, "bad_field"),
        ("several-revoke-target-and-string",
         "a revocation of target kind 9 whose subject is a string (either form passes step 6)",
         _signed([1, 4, ALICE.identity, T0, None, 9, "urn:x", "carpool"]), d, "out_of_range"),
        ("several-kind-then-field", "kind 6 with a 31-byte subject",
         _signed(_trust_fields(f1=6, f5=bytes(31))), d, "unknown_kind"),
        ("several-version-then-kind", "version 2 and kind 0",
         _signed([2, 0, *_trust_fields()[2:]]), d, "unknown_version"),
        ("several-range-then-canonical", "value 101, written as uint8 (0xcc 0x65)",
         sign_raw(packb(_trust_fields(101))[:-1] + b"\xcc\x65", ALICE), d, "out_of_range"),
        ("several-trailing-then-range", "value 101, then one more byte",
         _signed(_trust_fields(101)) + b"\x00", d, "trailing_bytes"),
    ]  # fmt: skip


def _signed_time_uint64() -> bytes:
    small = packb(_trust_fields(f3=1000))  # 1000 is a uint16: 0xcd 0x03 0xe8
    wide = small.replace(b"\xcd\x03\xe8", b"\xcf" + (1000).to_bytes(8, "big"), 1)
    assert wide != small
    return sign_raw(wide, ALICE)


def _signed_without_domain() -> bytes:
    body_bytes = packb(_trust_fields())
    return b"\x92" + body_bytes + b"\xc4\x40" + ALICE.sign(body_bytes)


def identity_text_vectors() -> Json:
    """Text forms of the fixed keys, and texts that must be refused."""
    good = encode_identity_text(ALICE.identity)
    last = good[-1]
    # The last character carries 3 data bits and 2 zero bits; setting one of
    # those low bits gives a text that decodes to the same bytes but is not canonical.
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    padded = good[:-1] + alphabet[alphabet.index(last) | 1]
    changed = good[:10] + ("a" if good[10] != "a" else "b") + good[11:]
    negative = [
        ("wrong-prefix", "tx_" + good[3:], "bad_text"),
        ("upper-case", good.upper(), "bad_text"),
        ("too-short", good[:-1], "bad_text"),
        ("too-long", good + "a", "bad_text"),
        ("bad-character", good[:-2] + "1" + good[-1], "bad_text"),
        ("padding-bits", padded, "bad_text"),
        ("one-character-changed", changed, "bad_checksum"),
        ("trailing-newline", good + "\n", "bad_text"),
        ("leading-space", " " + good, "bad_text"),
        ("padding", good + "===", "bad_text"),
        ("non-ascii", good[:-1] + "\u00e9", "bad_text"),
    ]
    return {
        "positive": [
            {"identity_hex": k.identity.hex(), "text": encode_identity_text(k.identity)}
            for k in (ALICE, BOB, CAROL, DAVE)
        ],
        "negative": [{"name": n, "text": t, "reason": r} for n, t, r in negative],
    }


def commitment_vectors() -> list[Json]:
    """Openings of salted commitments (SPEC §3.3)."""
    return [
        {
            "subject_hex": BOB.identity.hex(),
            "claim": "resident:rue-des-lilas",
            "value_hex": b"12 rue des Lilas".hex(),
            "salt_hex": SALT.hex(),
            "commitment_hex": COMMITMENT.hex(),
        }
    ]


def freshness_vectors() -> list[Json]:
    """Issued-at against the verifier's clock and skew (SPEC §4.3)."""
    data = sign_attestation(body(Trust(subject=BOB.identity, value=1)), ALICE).data.hex()
    return [
        {"envelope_hex": data, "now_ms": T0, "max_skew_ms": 0, "result": "ok"},
        {"envelope_hex": data, "now_ms": T0 - 60_000, "max_skew_ms": 60_000, "result": "ok"},
        {
            "envelope_hex": data,
            "now_ms": T0 - 60_001,
            "max_skew_ms": 60_000,
            "result": "from_future",
        },
    ]


def _signed_slot(
    statement: Statement, issued_at_ms: int, expires_at_ms: int | None = None
) -> Attestation:
    body_ = body(statement, issued_at_ms=issued_at_ms, expires_at_ms=expires_at_ms)
    return sign_attestation(body_, ALICE)


def supersession_vectors() -> list[Json]:
    """Sets of attestations of one slot, with the head and the current one (SPEC §5)."""
    bob = BOB.identity
    old = _signed_slot(Trust(subject=bob, context="carpool", value=40), T0)
    new = _signed_slot(Trust(subject=bob, context="carpool", value=60), T0 + 10)
    tie = _signed_slot(Trust(subject=bob, context="carpool", value=61), T0 + 10)
    revoke = _signed_slot(Revoke(target_kind=Kind.TRUST, subject=bob, scope="carpool"), T0 + 20)
    again = _signed_slot(Trust(subject=bob, context="carpool", value=20), T0 + 30)
    expiring = _signed_slot(
        Trust(subject=bob, context="carpool", value=70), T0 + 40, expires_at_ms=T0 + 50
    )
    cases = [
        ("newer-wins", "the later issued_at_ms wins", [new, old], T0 + 100),
        ("tie-by-id", "equal issued_at_ms: the greater id wins", [tie, new, old], T0 + 100),
        (
            "revoked",
            "a revocation empties the slot; older ones stay dead",
            [old, revoke, new],
            T0 + 100,
        ),
        (
            "renewed",
            "a newer attestation after a revocation fills the slot again",
            [again, revoke, old],
            T0 + 100,
        ),
        (
            "expired",
            "the head has expired: the slot is empty, older ones stay dead",
            [old, expiring, again],
            T0 + 50,
        ),
        (
            "not-yet-expired",
            "one millisecond before expiry the head counts",
            [old, expiring, again],
            T0 + 49,
        ),
    ]
    vectors = []
    for name, text, members, now_ms in cases:
        current = resolve_slot(members, now_ms=now_ms)
        vectors.append(
            {
                "name": name,
                "description": text,
                "now_ms": now_ms,
                "envelopes_hex": [m.data.hex() for m in members],
                "head_id_hex": slot_head(members).id.hex(),
                "current_id_hex": None if current is None else current.id.hex(),
            }
        )
    return vectors


def build_vectors() -> Json:
    """The whole vector file, deterministically."""
    return {
        "format": "trustnode-attestation-vectors",
        "format_version": 1,
        "spec": "protocol/SPEC.md",
        "signature_domain_hex": SIGNATURE_DOMAIN.hex(),
        "max_envelope_bytes": MAX_ENVELOPE_BYTES,
        "positive": positive_vectors(),
        "negative": negative_vectors(),
        "identity_text": identity_text_vectors(),
        "commitments": commitment_vectors(),
        "freshness": freshness_vectors(),
        "supersession": supersession_vectors(),
    }


def main() -> int:
    """Rewrite the vector file; print its path and digest."""
    return write_vectors(VECTORS_PATH, build_vectors())


if __name__ == "__main__":
    sys.exit(main())
