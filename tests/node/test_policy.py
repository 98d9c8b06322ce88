"""The peer policy table covers every reason; bans back off exponentially."""

from __future__ import annotations

from node.gossip.policy import MAX_BANNED, PEER_POLICY, Action, BanList
from protocol.errors import Reason, Severity
from protocol.identity import IdentityId


def test_every_reason_has_an_action() -> None:
    assert set(PEER_POLICY) == set(Reason)


def test_exactly_the_benign_reasons_drop_the_item() -> None:
    # SPEC §7 calls unknown_version and from_future alike benign: both drop the
    # item and keep the peer (unknown_version used to close the connection).
    for reason, action in PEER_POLICY.items():
        assert (action is Action.DROP) == (reason.severity is Severity.BENIGN), reason


def test_forgery_bans() -> None:
    assert PEER_POLICY[Reason.BAD_SIGNATURE] is Action.BAN
    assert PEER_POLICY[Reason.FROM_FUTURE] is Action.DROP


def test_bans_back_off_and_expire() -> None:
    now = [0.0]
    bans = BanList(clock=lambda: now[0])
    peer = IdentityId(bytes(32))
    assert not bans.is_banned(peer)
    assert bans.ban(peer) == 3600
    assert bans.is_banned(peer)
    now[0] = 3600
    assert not bans.is_banned(peer)
    assert bans.ban(peer) == 7200
    lengths = [bans.ban(peer) for _ in range(10)]
    assert lengths[-1] == 24 * 3600


def test_the_ban_list_is_bounded_against_free_identities() -> None:
    now = [0.0]
    bans = BanList(clock=lambda: now[0])
    for n in range(MAX_BANNED + 500):
        now[0] += 1.0
        bans.ban(IdentityId(n.to_bytes(32, "big")))
    assert len(bans) <= MAX_BANNED
    newest = IdentityId((MAX_BANNED + 499).to_bytes(32, "big"))
    assert bans.is_banned(newest)  # the latest bans are kept, the soonest-ending dropped
