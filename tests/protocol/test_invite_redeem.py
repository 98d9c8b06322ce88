"""`protocol.invite.redeem`: the single-use rule of SPEC §12 as a state machine."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import Reason, VerificationError
from protocol.identity import IdentityId
from protocol.invite import IssuedInvite, redeem

IDENTITIES = [IdentityId(bytes([n]) * 32) for n in range(4)]
NONCE = bytes(16)


@given(
    expires=st.none() | st.integers(0, 100),
    presentations=st.lists(
        st.tuples(st.sampled_from(IDENTITIES), st.integers(0, 200)), max_size=20
    ),
)
def test_only_the_first_identity_in_time_ever_gets_in(
    expires: int | None, presentations: list[tuple[IdentityId, int]]
) -> None:
    record = IssuedInvite(nonce=NONCE, expires_at_ms=expires)
    owner: IdentityId | None = None  # the model: who holds it
    for joiner, now in presentations:
        refused: Reason | None = None
        try:
            record = redeem(record, joiner, now_ms=now)
        except VerificationError as exc:
            refused = exc.reason
        if refused is Reason.INVITE_USED:
            assert owner is not None
            assert joiner != owner
        elif refused is not None:
            assert refused is Reason.INVITE_EXPIRED
            assert owner is None
            assert expires is not None
            assert now >= expires
        else:
            if owner is None:
                assert expires is None or now < expires
                owner = joiner
            assert joiner == owner  # the same identity again: welcome, even after expiry
        assert record.used_by == owner
        assert record.nonce == NONCE
        assert record.expires_at_ms == expires


def test_edges() -> None:
    fresh = IssuedInvite(nonce=NONCE, expires_at_ms=10)
    with pytest.raises(VerificationError) as caught:
        redeem(fresh, IDENTITIES[0], now_ms=10)  # at expiry is past it (as check_invite)
    assert caught.value.reason is Reason.INVITE_EXPIRED
    bound = redeem(fresh, IDENTITIES[0], now_ms=9)
    assert redeem(bound, IDENTITIES[0], now_ms=10**9) is bound
    with pytest.raises(VerificationError) as caught:
        redeem(bound, IDENTITIES[1], now_ms=0)
    assert caught.value.reason is Reason.INVITE_USED
