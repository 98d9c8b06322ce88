"""Whether our addresses can be dialled from outside: verdicts with hysteresis, sans I/O.

Peers dial back the addresses we ask about (SPEC §15.2) and say which reached
us. One answer proves little - a peer may be flaky, behind a firewall of its
own, or lying - and verdicts that follow every answer flap (go-libp2p #2046:
AutoNAT v1 switching between public and private every few minutes). So an
address's verdict changes only when the latest answers of `need` *distinct*
peers all agree on the other verdict (all of the peers that can answer, when
fewer than `need` can). A mixed run of answers keeps the verdict it has. Each
peer counts once per address: its newest answer replaces its older one.

`Verdicts` holds no clock and does no I/O: `node/gossip/reachability.py` feeds
it answers and reads `confirmed`, `state` and `flaps`.
"""

from __future__ import annotations

import enum
from collections import OrderedDict

from protocol.identity import IdentityId

__all__ = ["State", "Verdict", "Verdicts"]

_MAX_ADDRESSES = 32  # addresses with a verdict (ours: a handful; observed ones are bounded too)


class Verdict(enum.Enum):
    """What the answers so far say about one address."""

    UNKNOWN = "unknown"
    REACHABLE = "reachable"
    UNREACHABLE = "unreachable"


class State(enum.Enum):
    """The node's overall reachability."""

    UNKNOWN = "unknown"  # not enough answers yet
    REACHABLE = "reachable"  # at least one address confirmed
    BEHIND_NAT = "behind_nat"  # every address with a verdict is unreachable


class Verdicts:
    """Per-address verdicts from dial-back answers, changing only on agreement."""

    def __init__(self, *, need: int = 3, memory: int = 8) -> None:
        if not 1 <= need <= memory:
            raise ValueError("need must be in 1..memory")
        self._need = need
        self._memory = memory
        # address -> peer -> reached?, oldest answer first
        self._answers: dict[str, OrderedDict[IdentityId, bool]] = {}
        self._verdicts: dict[str, Verdict] = {}
        self.flaps = 0  # changes between REACHABLE and UNREACHABLE (a stable network: 0)

    def record(self, address: str, peer: IdentityId, reached: bool, *, able: int) -> bool:
        """One peer's answer about `address`; True when the verdict changed.

        `able` is how many peers could answer now (connected and speaking
        dial-back): with fewer than `need`, all of them must agree.
        """
        answers = self._answers.get(address)
        if answers is None:
            if len(self._answers) >= _MAX_ADDRESSES:
                return False
            answers = self._answers[address] = OrderedDict()
        answers.pop(peer, None)
        answers[peer] = reached
        while len(answers) > self._memory:
            answers.popitem(last=False)
        required = max(1, min(self._need, able))
        latest = list(answers.values())[-required:]
        if len(latest) < required or len(set(latest)) != 1:
            return False  # not enough agreement: the verdict stays
        verdict = Verdict.REACHABLE if latest[0] else Verdict.UNREACHABLE
        before = self._verdicts.get(address, Verdict.UNKNOWN)
        if verdict is before:
            return False
        if before is not Verdict.UNKNOWN:
            self.flaps += 1
        self._verdicts[address] = verdict
        return True

    def verdict(self, address: str) -> Verdict:
        """The address's current verdict."""
        return self._verdicts.get(address, Verdict.UNKNOWN)

    @property
    def confirmed(self) -> tuple[str, ...]:
        """The addresses peers agree reach us, in the order they were first asked about."""
        return tuple(a for a in self._answers if self.verdict(a) is Verdict.REACHABLE)

    @property
    def state(self) -> State:
        """Reachable when any address is confirmed; behind NAT when every address
        with a verdict is unreachable; unknown before any verdict."""
        verdicts = set(self._verdicts.values())
        if Verdict.REACHABLE in verdicts:
            return State.REACHABLE
        if Verdict.UNREACHABLE in verdicts:
            return State.BEHIND_NAT
        return State.UNKNOWN
