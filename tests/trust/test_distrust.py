"""A flag dated by `distrust_body` always supersedes the vouch it replaces."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.trust import TrustEngine
from node.trust.distrust import distrust_body
from protocol.attestation import Attestation, AttestationBody, sign_attestation
from protocol.errors import LocalProtocolError
from protocol.identity import IdentityKey
from protocol.statement import Trust

ME, ANN, BOB = (IdentityKey.from_seed(bytes([n + 90]) * 32) for n in range(3))
NOW = 1_800_000_000_000


def _vouch(at: int, key: IdentityKey = ANN, value: int = 100) -> Attestation:
    body = AttestationBody(
        issuer=key.identity, issued_at_ms=at, statement=Trust(subject=BOB.identity, value=value)
    )
    return sign_attestation(body, key)


@settings(max_examples=30, deadline=None)
@given(st.integers(-100, -1), st.integers(-5, 5))
def test_a_flag_issued_in_the_vouchs_millisecond_wins(value: int, skew: int) -> None:
    vouch = _vouch(NOW)
    flag = sign_attestation(
        distrust_body(ANN.identity, BOB.identity, value=value, now_ms=NOW + skew, previous=vouch),
        ANN,
    )
    assert flag.issued_at_ms > vouch.issued_at_ms
    for order in ([vouch, flag], [flag, vouch]):
        engine = TrustEngine(ME.identity, now_ms=NOW + 10, attestations=order)
        assert engine.edges()[0].value == value


def test_the_helper_refuses_what_would_not_supersede() -> None:
    with pytest.raises(LocalProtocolError):
        distrust_body(ANN.identity, BOB.identity, value=10, now_ms=NOW, previous=None)
    other = _vouch(NOW, key=ME)
    with pytest.raises(LocalProtocolError):
        distrust_body(ANN.identity, BOB.identity, value=-50, now_ms=NOW, previous=other)
    with pytest.raises(LocalProtocolError):
        distrust_body(
            ANN.identity, BOB.identity, value=-50, now_ms=NOW, previous=None, expires_at_ms=NOW
        )
