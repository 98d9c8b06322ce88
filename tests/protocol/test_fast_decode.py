"""The fast decoder agrees with the reference decoder on any bytes (issue 28).

`decode_envelope` first tries `_fast_envelope`, which checks the SPEC §2.5 rules
straight on msgpack's output and builds the records without their constructors;
whatever it refuses goes through `_decode_envelope_reference` (the records'
own checks), which names the reason. The fast path must therefore accept
exactly what the reference accepts, and decode it to the same value (same
types too: a `True` where `1` belongs compares equal, but is not the same
value). The reasons themselves are checked by the vector and order tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgpack
from hypothesis import example, given
from hypothesis import strategies as st

from protocol.attestation import (
    Attestation,
    AttestationBody,
    SignedEnvelope,
    attestation_id,
    decode_envelope,
    encode_body,
    sign_attestation,
)
from protocol.envelope_decoding import _decode_envelope_reference, _fast_envelope
from protocol.errors import RemoteProtocolError
from protocol.statement import Trust
from tests.strategies import KEYS, bodies, mutations

_SIGNATURES = st.binary(min_size=64, max_size=64)
# Values near every rule's edge, of every msgpack type a field may wrongly hold.
_EDGE_INTS = [-(2**63), -129, -128, -101, -100, -33, -32, -1, 0, 1, 2, 3, 4, 5, 6, 100, 101]
_EDGE_INTS += [127, 128, 255, 256, 2**16, 2**32, 2**53 - 2, 2**53 - 1, 2**53, 2**64 - 1]
_EDGE_STRS = ["", "general", "profile", "Carpool", "a" * 64, "a" * 65, "-x", "urn:tool:1"]
_EDGE_STRS += ["urn:bad thing", "x", " Grace", "Grace", "Gr\u200bace", "e\u0301", "\u00e9"]
_EDGE_STRS += ["ref-1", "a" * 257, "urn:" + "a" * 509, "urn:" + "a" * 508]
_FIELD_VALUES = st.one_of(
    st.sampled_from(_EDGE_INTS),
    st.integers(-(2**63), 2**64 - 1),
    st.sampled_from(_EDGE_STRS),
    st.text(max_size=70),
    st.sampled_from([k.identity for k in KEYS]),
    st.binary(min_size=31, max_size=33),
    st.none(),
    st.booleans(),
    st.floats(allow_nan=False),
    st.just(()),
    st.just({}),
)


def _envelope_bytes(body: AttestationBody, signature: bytes) -> bytes:
    return b"\x92" + encode_body(body) + b"\xc4\x40" + signature


@st.composite
def _edited(draw: st.DrawFn) -> bytes:
    """A valid envelope with one field replaced, added or removed, re-packed in
    canonical msgpack: gets past msgpack and the shape checks, to each field's."""
    body = draw(bodies())
    fields: list[object] = list(msgpack.unpackb(encode_body(body), use_list=False))
    edit = draw(st.sampled_from(["replace", "replace", "replace", "append", "drop"]))
    if edit == "append":
        fields.append(draw(_FIELD_VALUES))
    elif edit == "drop":
        del fields[draw(st.integers(0, len(fields) - 1))]
    else:
        fields[draw(st.integers(0, len(fields) - 1))] = draw(_FIELD_VALUES)
    signature = draw(_SIGNATURES | st.binary(max_size=65) | _FIELD_VALUES)
    packed: bytes = msgpack.packb([fields, signature], use_bin_type=True)
    return packed


def _valid(draw: st.DrawFn) -> bytes:
    return _envelope_bytes(draw(bodies()), draw(_SIGNATURES))


_CANDIDATES = st.one_of(
    st.composite(_valid)(),
    st.composite(_valid)().flatmap(mutations),
    _edited(),
    st.binary(max_size=300),
)


def _assert_agree(data: bytes) -> None:
    try:
        reference: SignedEnvelope | None = _decode_envelope_reference(data)
    except RemoteProtocolError:
        reference = None
    fast = _fast_envelope(data)
    if reference is None:
        assert fast is None
        return
    assert fast is not None
    assert fast == reference
    assert repr(fast) == repr(reference)  # the same types, not just equal values
    assert type(fast.data) is bytes
    assert fast.body.slot == reference.body.slot


@given(_CANDIDATES)
@example(b"\x92\x98\x01\x01")
@example(b"\x92\x98\xc3\x01")
def test_fast_and_reference_decoders_agree(data: bytes) -> None:
    _assert_agree(data)


@given(bodies(), _SIGNATURES)
def test_valid_envelopes_take_the_fast_path(body: AttestationBody, signature: bytes) -> None:
    """Every valid envelope is accepted by the fast path itself, so the
    reference decoder runs only for refused bytes."""
    data = _envelope_bytes(body, signature)
    fast = _fast_envelope(data)
    assert fast is not None
    assert fast.body == body
    assert decode_envelope(data) == fast


def test_a_bytearray_is_decoded_to_bytes() -> None:
    """Callers may hand in a bytearray (a socket buffer): the envelope keeps bytes."""
    body = AttestationBody(
        issuer=KEYS[0].identity,
        issued_at_ms=1,
        statement=Trust(subject=KEYS[1].identity, context="general", value=1),
    )
    data = _envelope_bytes(body, b"\x00" * 64)
    envelope = decode_envelope(bytearray(data))  # type: ignore[arg-type]
    assert type(envelope.data) is bytes
    assert envelope.data == data


@dataclass(frozen=True, slots=True, eq=False)
class _Tagged(Attestation):
    """A subclass built by its own dataclass __init__, as node/trust's
    MemberAttestation is: `Attestation.__post_init__` must still set the id."""

    tag: int = 0

    def __post_init__(self) -> None:
        Attestation.__post_init__(self)


def test_a_dataclass_subclass_of_attestation_gets_its_id() -> None:
    body = AttestationBody(
        issuer=KEYS[0].identity,
        issued_at_ms=1,
        statement=Trust(subject=KEYS[1].identity, context="general", value=1),
    )
    attestation = sign_attestation(body, KEYS[0])
    tagged = _Tagged(attestation.envelope, tag=1)
    assert tagged.id == attestation.id == attestation_id(attestation.data)
    assert tagged.slot == attestation.slot
