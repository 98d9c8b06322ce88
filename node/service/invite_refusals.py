"""The `redeem`s an inviter's node refused lately, told in words for `trustnode status`.

A neighbour who could not join usually asks the inviter, not the log: "1 invite
redemption refused in the last 24 h: already used" tells the inviter to make a
new code (SPEC §12.2). We count one per joiner and nonce (a joiner presents its
nonce on every connection: one whose nonce we do not know would otherwise count
once a reconnection), keep at most `MAX_KEPT` of them, in memory only (a restart
starts the count again: the log keeps the history), and never store what a peer
sent beyond its identity and nonce.
"""

from __future__ import annotations

from collections import Counter, OrderedDict

from protocol.errors import Reason
from protocol.identity import IdentityId

__all__ = ["MAX_KEPT", "UNKNOWN", "WINDOW_MS", "RedeemRefusals"]

UNKNOWN = "unknown"  # a nonce we never made, or forgot (node.service.invite_book)
WINDOW_MS = 86_400_000
MAX_KEPT = 1_000
_WORDS = {
    Reason.INVITE_USED.value: "already used",
    Reason.INVITE_EXPIRED.value: "expired",
    UNKNOWN: "not an invite of this node (or forgotten, 30 days after)",
}


class RedeemRefusals:
    """The refused redeems of the last `WINDOW_MS`, one per (joiner, nonce)."""

    def __init__(self) -> None:
        # (joiner, nonce) -> (when last refused, why); the oldest first.
        self._seen: OrderedDict[tuple[IdentityId, bytes], tuple[int, str]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def note(self, joiner: IdentityId, nonce: bytes, cause: str, *, now_ms: int) -> None:
        """Count a refusal: `cause` is `invite_used`, `invite_expired` or `UNKNOWN`."""
        assert cause in _WORDS
        key = (joiner, nonce)
        self._seen.pop(key, None)
        self._seen[key] = (now_ms, cause)
        while len(self._seen) > MAX_KEPT:
            self._seen.popitem(last=False)

    def describe(self, *, now_ms: int) -> str | None:
        """In words, e.g. `2 invite redemptions refused in the last 24 h: 1 already used,
        1 expired`; None when there were none."""
        recent = [cause for at, cause in self._seen.values() if now_ms - at < WINDOW_MS]
        if not recent:
            return None
        counts = Counter(recent)
        oldest_ms = next(iter(self._seen.values()))[0]
        full = len(self._seen) == MAX_KEPT and now_ms - oldest_ms < WINDOW_MS  # some dropped
        count = f"{'at least ' if full else ''}{len(recent)}"
        plural = "" if len(recent) == 1 else "s"
        if len(counts) == 1:
            causes = _WORDS[recent[0]]
        else:
            causes = ", ".join(f"{n} {_WORDS[c]}" for c, n in counts.most_common())
        return f"{count} invite redemption{plural} refused in the last 24 h: {causes}"
