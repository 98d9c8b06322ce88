"""Properties and edge cases of the attestation codec, signatures and ids."""

from __future__ import annotations

import contextlib

import msgpack
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from protocol.attestation import (
    MAX_ENVELOPE_BYTES,
    Attestation,
    AttestationBody,
    SignedEnvelope,
    check_fresh,
    decode_attestation,
    decode_envelope,
    encode_body,
    envelope_issuer,
    open_signed,
    sign_attestation,
    signed_message,
    verified_by,
    verify_envelope,
)
from protocol.errors import (
    DecodeError,
    FieldError,
    LocalProtocolError,
    Reason,
    RemoteProtocolError,
    VerificationError,
)
from protocol.identity import IdentityId
from protocol.statement import Certify, Kind, Rate, Revoke, Thing, Trust
from tests.strategies import KEYS, attestations, bodies, envelopes, mutations, sign

ALICE, BOB = KEYS[0], KEYS[1]


def _trust_body(**overrides: object) -> AttestationBody:
    fields: dict[str, object] = {
        "issuer": ALICE.identity,
        "issued_at_ms": 1_000,
        "statement": Trust(subject=BOB.identity, context="carpool", value=50),
    }
    fields.update(overrides)
    return AttestationBody(**fields)  # type: ignore[arg-type]


@given(bodies())
def test_sign_decode_round_trip(body: AttestationBody) -> None:
    attestation = sign(body)
    decoded = decode_attestation(attestation.data)
    assert decoded == attestation
    assert decoded.body == body
    assert decoded.data == attestation.data
    assert envelope_issuer(attestation.data) == body.issuer  # every kind, with or without expiry


@given(envelopes())
def test_valid_bytes_re_encode_to_themselves(data: bytes) -> None:
    envelope = decode_envelope(data)
    signed = sign_attestation(
        envelope.body, next(k for k in KEYS if k.identity == envelope.body.issuer)
    )
    assert signed.data == data


@given(bodies(), bodies())
def test_encoding_is_injective(first: AttestationBody, second: AttestationBody) -> None:
    assume(first != second)
    assert encode_body(first) != encode_body(second)


@given(st.binary(max_size=MAX_ENVELOPE_BYTES + 64))
def test_any_bytes_decode_or_fail_typed(data: bytes) -> None:
    reason = None
    try:
        decode_attestation(data)
    except RemoteProtocolError as exc:
        reason = exc.reason
    assert reason is None or isinstance(reason, Reason)


_msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=80)
    | st.binary(max_size=80)
    # Extension types (malformed timestamps, code -1, are in test_codec.py).
    | st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=12)),
    lambda children: (
        st.lists(children, max_size=10) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=30,
)


@given(_msgpack_values, st.binary(min_size=64, max_size=64))
def test_any_msgpack_structure_decodes_or_fails_typed(body: object, signature: bytes) -> None:
    data = msgpack.packb([body, signature], use_bin_type=True)
    with pytest.raises(RemoteProtocolError):
        decode_attestation(data)


@given(st.data())
def test_mutated_envelopes_fail_typed(data: st.DataObject) -> None:
    original = data.draw(envelopes())
    mutated = data.draw(mutations(original))
    try:
        attestation = decode_attestation(mutated)
    except RemoteProtocolError:
        return
    # Only a no-op mutation can survive: nothing else carries a valid signature.
    assert attestation.data == original


@given(attestations(), st.integers(1, 255))
def test_flipping_any_byte_fails(attestation: Attestation, xor: int) -> None:
    data = attestation.data
    for index in range(len(data)):
        flipped = data[:index] + bytes([data[index] ^ xor]) + data[index + 1 :]
        with pytest.raises(RemoteProtocolError):
            decode_attestation(flipped)


@given(attestations())
def test_id_is_blake2b_of_exact_bytes(attestation: Attestation) -> None:
    import hashlib

    assert attestation.id == hashlib.blake2b(attestation.data, digest_size=32).digest()


def test_signed_envelope_refuses_inconsistent_bytes() -> None:
    attestation = sign_attestation(_trust_body(), ALICE)
    other = sign_attestation(_trust_body(issued_at_ms=2_000), ALICE)
    with pytest.raises(FieldError) as info:
        SignedEnvelope(
            body=other.body, signature=attestation.envelope.signature, data=attestation.data
        )
    assert info.value.reason is Reason.NON_CANONICAL


def test_verify_refuses_other_issuers_signature() -> None:
    mine = sign_attestation(_trust_body(), ALICE)
    body = _trust_body(issuer=BOB.identity)
    forged_data = b"\x92" + encode_body(body) + b"\xc4\x40" + mine.envelope.signature
    with pytest.raises(VerificationError) as info:
        verify_envelope(decode_envelope(forged_data))
    assert info.value.reason is Reason.BAD_SIGNATURE


def test_sign_with_wrong_key_is_local_error() -> None:
    with pytest.raises(LocalProtocolError):
        sign_attestation(_trust_body(), BOB)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"issued_at_ms": -1}, Reason.OUT_OF_RANGE),
        ({"issued_at_ms": 2**53}, Reason.OUT_OF_RANGE),
        ({"issued_at_ms": True}, Reason.BAD_FIELD),
        ({"issued_at_ms": 1.0}, Reason.BAD_FIELD),
        ({"expires_at_ms": 1_000}, Reason.OUT_OF_RANGE),
        ({"issuer": b"short"}, Reason.BAD_FIELD),
        ({"statement": "trust"}, Reason.BAD_FIELD),
        (
            {
                "expires_at_ms": 5_000,
                "statement": Revoke(target_kind=Kind.TRUST, subject=BOB.identity, scope="x"),
            },
            Reason.OUT_OF_RANGE,
        ),
    ],
)
def test_body_validates_itself(overrides: dict[str, object], reason: Reason) -> None:
    with pytest.raises(FieldError) as info:
        _trust_body(**overrides)
    assert info.value.reason is reason


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (lambda: Trust(subject=BOB.identity, value=101), Reason.OUT_OF_RANGE),
        (lambda: Trust(subject=BOB.identity, value=False), Reason.BAD_FIELD),
        (lambda: Trust(subject=BOB.identity, context="Ünïcode", value=1), Reason.OUT_OF_RANGE),
        (lambda: Trust(subject=BOB.identity, context="ok\n", value=1), Reason.OUT_OF_RANGE),
        (lambda: Trust(subject=Thing("https://x.org"), value=1), Reason.BAD_FIELD),  # type: ignore[arg-type]
        (lambda: Certify(subject=BOB.identity, claim="x", commitment=b"1"), Reason.BAD_FIELD),
        (lambda: Rate(subject=Thing("no scheme"), value=1), Reason.OUT_OF_RANGE),
        (lambda: Rate(subject=Thing("urn:" + "x" * 509), value=1), Reason.OUT_OF_RANGE),
        (lambda: Rate(subject=BOB.identity, value=1, reference="a b"), Reason.OUT_OF_RANGE),
        (lambda: Rate(subject=BOB.identity, value=1, reference="r" * 257), Reason.OUT_OF_RANGE),
        (
            lambda: Revoke(target_kind=Kind.REVOKE, subject=BOB.identity, scope="x"),
            Reason.OUT_OF_RANGE,
        ),
        (lambda: Revoke(target_kind=1, subject=BOB.identity, scope="x"), Reason.OUT_OF_RANGE),  # type: ignore[arg-type]
        (
            lambda: Revoke(target_kind=Kind.TRUST, subject=Thing("urn:x"), scope="x"),
            Reason.BAD_FIELD,
        ),
    ],
)
def test_statements_validate_themselves(build: object, reason: Reason) -> None:
    assert callable(build)
    with pytest.raises(FieldError) as info:
        build()
    assert info.value.reason is reason


def test_oversized_input_is_refused_before_parsing() -> None:
    with pytest.raises(DecodeError) as info:
        decode_envelope(b"\x00" * (MAX_ENVELOPE_BYTES + 1))
    assert info.value.reason is Reason.TOO_LARGE


def test_max_bytes_is_configurable() -> None:
    data = sign_attestation(_trust_body(), ALICE).data
    with pytest.raises(DecodeError) as info:
        decode_envelope(data, max_bytes=len(data) - 1)
    assert info.value.reason is Reason.TOO_LARGE
    assert decode_envelope(data, max_bytes=len(data)).data == data


@given(attestations(), st.integers(0, 10**6), st.integers(-(10**6), 10**6))
def test_freshness_window(attestation: Attestation, skew: int, offset: int) -> None:
    now_ms = attestation.issued_at_ms + offset
    if attestation.issued_at_ms > now_ms + skew:
        with pytest.raises(VerificationError) as info:
            check_fresh(attestation, now_ms=now_ms, max_skew_ms=skew)
        assert info.value.reason is Reason.FROM_FUTURE
        assert info.value.reason.severity.value == "benign"
    else:
        check_fresh(attestation, now_ms=now_ms, max_skew_ms=skew)


def test_revocation_slot_is_its_targets_slot() -> None:
    trust = sign_attestation(_trust_body(), ALICE)
    revoke = sign_attestation(
        _trust_body(
            statement=Revoke(target_kind=Kind.TRUST, subject=BOB.identity, scope="carpool")
        ),
        ALICE,
    )
    assert revoke.slot == trust.slot
    assert revoke.slot.id == trust.slot.id
    assert revoke.slot.kind is Kind.TRUST


def test_thing_and_identity_subjects_have_distinct_slots() -> None:
    as_thing = Thing("urn:" + "a" * 28)
    rate_thing = sign_attestation(_trust_body(statement=Rate(subject=as_thing, value=1)), ALICE)
    rate_id = sign_attestation(
        _trust_body(statement=Rate(subject=IdentityId(as_thing.encode()), value=1)), ALICE
    )
    assert rate_thing.slot.id != rate_id.slot.id


@given(st.lists(st.tuples(attestations(), st.integers(0, 63), st.integers(0, 255)), max_size=8))
def test_checking_in_bulk_accepts_exactly_what_verify_envelope_accepts(
    cases: list[tuple[Attestation, int, int]],
) -> None:
    """`open_signed` (run in a worker process by node/signatures) then `verified_by`
    must agree with `verify_envelope` on every envelope, forged ones included."""
    envelopes = []
    for attestation, index, xor in cases:
        data = bytearray(attestation.data)
        data[len(data) - 64 + index] ^= xor  # the signature: still decodes
        envelopes.append(decode_envelope(bytes(data)))
    expected = []
    for envelope in envelopes:
        with contextlib.suppress(VerificationError):
            expected.append(verify_envelope(envelope))
    verdicts = open_signed([signed_message(e) for e in envelopes])
    assert verified_by(envelopes, verdicts) == expected
    assert set(verdicts) <= {0, 1}


def test_open_signed_refuses_a_key_of_the_wrong_size() -> None:
    signed, key = signed_message(sign_attestation(_trust_body(), ALICE).envelope)
    assert open_signed([(signed, key), (signed, key[:31]), (signed[:-1], key)]) == b"\x01\x00\x00"


def test_verified_by_wants_one_verdict_per_envelope() -> None:
    envelope = sign_attestation(_trust_body(), ALICE).envelope
    with pytest.raises(LocalProtocolError):
        verified_by([envelope, envelope], b"\x01")


@given(st.data())
def test_the_one_call_canonical_check_agrees_with_re_encoding_the_body(
    data: st.DataObject,
) -> None:
    """`decode_envelope` checks the canonical form as `pack(decoded) == data`;
    `SignedEnvelope` (the definition) re-encodes the body field by field. On
    any bytes, mutated or not, they must accept and refuse alike."""
    from protocol.attestation import SignedEnvelope, decode_envelope
    from protocol.envelope_decoding import _decode_body
    from protocol.errors import FieldError

    candidate = data.draw(st.one_of(envelopes(), envelopes().flatmap(mutations)))
    try:
        envelope = decode_envelope(candidate)
    except RemoteProtocolError as exc:
        if exc.reason is Reason.NON_CANONICAL:
            # The fields are sound but the bytes are not theirs: the definition agrees.
            fields, signature = msgpack.unpackb(candidate, raw=False, use_list=False)
            with pytest.raises(FieldError) as refused:
                SignedEnvelope(body=_decode_body(fields), signature=signature, data=candidate)
            assert refused.value.reason is Reason.NON_CANONICAL
        return
    rebuilt = SignedEnvelope(body=envelope.body, signature=envelope.signature, data=candidate)
    assert rebuilt == envelope


@given(attestations())
def test_the_slot_is_built_on_first_use_and_changes_no_comparison(attestation: Attestation) -> None:
    """`Attestation.slot` is built lazily (a check that only verifies never needs
    it): the same slot as the body's, built once, and equality and hashing are
    the same before and after."""
    fresh = decode_attestation(attestation.data)
    other = decode_attestation(attestation.data)
    assert fresh == other
    assert hash(fresh) == hash(other)
    slot = fresh.slot
    assert slot == attestation.body.slot
    assert slot.id == attestation.slot.id
    assert fresh.slot is slot  # kept, not rebuilt
    assert fresh == other
    assert hash(fresh) == hash(other)
