"""What we do to a peer for each reason a protocol error can carry: one table (STYLE §10.5).

The table is about *items*: an envelope inside a `push` or `deliver` that is
refused (SPEC §9.2). Exactly the benign reasons (a clock slightly ahead, a newer
attestation version, our own quota) drop the item and keep the peer; the other
reasons close the connection, and forged signatures, non-canonical bytes and
failed handshakes also ban the identity for a while, doubling on every repeat
(1 h, 2 h, ... at most 24 h). An error in the message stream itself (a wire
message that does not decode, a broken session rule, a bad record) always ends
the connection, whatever the reason: the stream cannot be resynchronised. There
the table only says whether to ban as well.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from protocol.errors import Reason
from protocol.identity import IdentityId

__all__ = ["PEER_POLICY", "Action", "BanList"]


class Action(enum.Enum):
    """The consequence of a protocol error for the peer that caused it."""

    DROP = "drop"  # ignore the offending item, keep the connection
    CLOSE = "close"  # close the connection; the peer may reconnect
    BAN = "ban"  # close and refuse the identity for a while


PEER_POLICY: dict[Reason, Action] = {
    Reason.FROM_FUTURE: Action.DROP,
    Reason.EXPIRED: Action.DROP,
    Reason.QUOTA: Action.DROP,
    # A newer peer may forward attestations of a version we do not speak yet.
    Reason.UNKNOWN_VERSION: Action.DROP,
    Reason.TOO_LARGE: Action.CLOSE,
    Reason.MALFORMED: Action.CLOSE,
    Reason.TRAILING_BYTES: Action.CLOSE,
    Reason.UNKNOWN_KIND: Action.CLOSE,
    Reason.BAD_FIELD: Action.CLOSE,
    Reason.OUT_OF_RANGE: Action.CLOSE,
    Reason.NON_CANONICAL: Action.BAN,
    Reason.BAD_TEXT: Action.DROP,
    Reason.BAD_CHECKSUM: Action.DROP,
    Reason.BAD_SIGNATURE: Action.BAN,
    Reason.DECRYPT_FAILED: Action.BAN,
    Reason.BAD_HANDSHAKE: Action.BAN,
    Reason.UNEXPECTED_MESSAGE: Action.CLOSE,
    # Only ever a session rule (no hello in time): the connection ends, no ban.
    Reason.TIMEOUT: Action.DROP,
    # A refused invite (SPEC §12): as for a timeout, being a session rule the
    # connection ends; no ban (an honest holder of a forwarded invite causes it).
    Reason.INVITE_USED: Action.DROP,
    Reason.INVITE_EXPIRED: Action.DROP,
}

_FIRST_BAN_S = 3600.0
MAX_BANNED = 10_000
_MAX_BAN_S = 24 * 3600.0


@dataclass
class BanList:
    """Banned identities with exponential back-off, on an injected monotonic clock."""

    clock: Callable[[], float]
    _until: dict[IdentityId, float] = field(default_factory=dict)
    _strikes: dict[IdentityId, int] = field(default_factory=dict)

    def ban(self, identity: IdentityId) -> float:
        """Ban `identity`; return the ban's length in seconds.

        An attacker can make identities for free, so the list is bounded: at
        `MAX_BANNED` entries, the bans that end soonest are forgotten first.
        """
        strikes = self._strikes.get(identity, 0)
        length = min(_FIRST_BAN_S * (1 << min(strikes, 16)), _MAX_BAN_S)
        self._strikes[identity] = strikes + 1
        self._until[identity] = self.clock() + length
        if len(self._until) > MAX_BANNED:
            for forgotten in sorted(self._until, key=self._until.__getitem__)[: MAX_BANNED // 10]:
                del self._until[forgotten]
                self._strikes.pop(forgotten, None)
        return length

    def __len__(self) -> int:
        """How many identities the list remembers."""
        return len(self._until)

    def is_banned(self, identity: IdentityId) -> bool:
        """Whether `identity` is banned now."""
        until = self._until.get(identity)
        return until is not None and self.clock() < until
