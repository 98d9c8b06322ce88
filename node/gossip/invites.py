"""The gossip side of single-use invites (SPEC §9.2 `redeem`, §12).

The gossip node only carries the messages: it asks an `InviteDesk` what to
present to a peer after hello, hands it the `redeem` messages it receives and
the `error` messages that answer them. What an invite is worth, and where the
records live, is the service's business (`node.service.invites`).
"""

from __future__ import annotations

from typing import Protocol

from protocol.identity import IdentityId

__all__ = ["INVITES_CAPABILITY", "InviteDesk"]

# Named in hello by a node that records the invites it makes and answers `redeem`.
INVITES_CAPABILITY = "invites"


class InviteDesk(Protocol):
    """Both ends of an invite, as a gossip session sees them."""

    def to_present(self, peer: IdentityId) -> bytes | None:
        """The nonce to send `peer` in `redeem` (it is our inviter), else None."""
        ...

    async def redeem(self, peer: IdentityId, nonce: bytes) -> None:
        """`peer` presents `nonce`: bind it, or refuse.

        Raises:
            VerificationError: `INVITE_USED` or `INVITE_EXPIRED`; the session
                sends it as `error` and closes.
        """
        ...

    def refused(self, peer: IdentityId, code: str, detail: str) -> None:
        """`peer` sent `error` `code` before closing (ours to note when it is our inviter)."""
        ...
