"""An inviter learns why a neighbour could not join: refused redeems (used, expired,
unknown) counted per joiner and nonce, said in words by `Node.status()`, the API's
status route, `trustnode status` and the web app's community page (SPEC §12.2)."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from node.api.views import status_view
from node.cli.render import status_table
from node.service import Node
from node.service.invite_refusals import MAX_KEPT, UNKNOWN, WINDOW_MS, RedeemRefusals
from node.service.invites import InviteBook, InviteDesk
from protocol.errors import Reason, VerificationError
from protocol.identity import IdentityId
from protocol.invite import IssuedInvite
from tests.service.api_app import TOKEN

A, B, C = (IdentityId(bytes([n]) * 32) for n in (1, 2, 3))
NONCE = bytes(range(16))
USED, EXPIRED = Reason.INVITE_USED.value, Reason.INVITE_EXPIRED.value


def test_one_refusal_in_words() -> None:
    refusals = RedeemRefusals()
    assert refusals.describe(now_ms=0) is None
    refusals.note(A, NONCE, USED, now_ms=10)
    said = "1 invite redemption refused in the last 24 h: already used"
    assert refusals.describe(now_ms=10) == said
    assert refusals.describe(now_ms=10 + WINDOW_MS - 1) == said
    assert refusals.describe(now_ms=10 + WINDOW_MS) is None  # a day later: forgotten


def test_several_causes_most_first_and_a_joiner_counts_once_a_nonce() -> None:
    refusals = RedeemRefusals()
    for _ in range(5):  # every reconnection presents the same unknown nonce again
        refusals.note(A, NONCE, UNKNOWN, now_ms=1)
    refusals.note(B, NONCE, USED, now_ms=2)
    refusals.note(C, NONCE, USED, now_ms=3)
    refusals.note(C, bytes(16), EXPIRED, now_ms=4)
    assert refusals.describe(now_ms=5) == (
        "4 invite redemptions refused in the last 24 h: 2 already used, "
        "1 not an invite of this node (or forgotten, 30 days after), 1 expired"
    )


@given(st.lists(st.tuples(st.integers(0, 2**16), st.sampled_from([USED, EXPIRED, UNKNOWN])),
                max_size=MAX_KEPT + 50))  # fmt: skip
def test_the_tally_is_bounded_and_says_when_it_dropped_some(
    joiners: list[tuple[int, str]],
) -> None:
    refusals = RedeemRefusals()
    for n, (joiner, cause) in enumerate(joiners):
        refusals.note(IdentityId(joiner.to_bytes(32, "big")), NONCE, cause, now_ms=n)
    distinct = len({j for j, _ in joiners})
    said = refusals.describe(now_ms=len(joiners))
    assert (said is None) == (distinct == 0)
    assert len(refusals) == min(distinct, MAX_KEPT)
    if said is not None:
        count = said.split(" invite")[0]
        assert count == (f"at least {MAX_KEPT}" if distinct >= MAX_KEPT else str(distinct))


async def test_the_desk_counts_used_expired_and_unknown_redeems() -> None:
    desk = InviteDesk(InviteBook(None), wall_clock_ms=lambda: 100, admit=lambda _: None)
    desk.book.put(IssuedInvite(nonce=NONCE, expires_at_ms=None, used_by=A), now_ms=0)
    desk.book.put(IssuedInvite(nonce=bytes(16), expires_at_ms=50), now_ms=0)
    await desk.redeem(A, NONCE)  # its own joiner again: welcome, not a refusal
    assert desk.refusals.describe(now_ms=100) is None
    with pytest.raises(VerificationError):
        await desk.redeem(B, NONCE)
    assert desk.refusals.describe(now_ms=100) == (
        "1 invite redemption refused in the last 24 h: already used"
    )
    with pytest.raises(VerificationError):
        await desk.redeem(B, bytes(16))
    await desk.redeem(C, bytes([9]) * 16)  # never made: ignored, but counted
    said = desk.refusals.describe(now_ms=100)
    assert said is not None
    assert said.startswith("3 invite redemptions refused in the last 24 h: ")
    assert all(w in said for w in ("1 already used", "1 expired", "1 not an invite"))


async def test_status_the_api_and_the_cli_say_why(node: Node, client: httpx.AsyncClient) -> None:
    assert (await node.status()).invite_refusals is None
    before = await client.get("/v1/status", headers={"Authorization": f"Bearer {TOKEN}"})
    assert before.json()["invite_refusals"] is None
    node.invites.book.put(IssuedInvite(nonce=NONCE, expires_at_ms=None, used_by=A), now_ms=0)
    with pytest.raises(VerificationError):
        await node.invites.redeem(B, NONCE)
    said = "1 invite redemption refused in the last 24 h: already used"
    status = await node.status()
    assert status.invite_refusals == said
    answer = await client.get("/v1/status", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.json()["invite_refusals"] == said
    console = Console(width=200, record=True)
    console.print(status_table(status_view(status), running=True))
    rows = [line.split(None, 1) for line in console.export_text().splitlines() if line.strip()]
    assert ["invites", said] in [[k, v.strip()] for k, v in rows]
