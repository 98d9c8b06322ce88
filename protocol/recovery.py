"""Recovery of a lost root key by custodians (SPEC §18).

A member designates k-of-n *custodians* among the members it vouches for.
When its root key is lost, it makes a new key; k custodians each sign a
recovery naming the old key and the new one; after a waiting period during
which any key of the member (the old root, a device, an earlier root of its
chain) can veto, every node reads the new key as the old one's successor, as
after a rotation (SPEC §17.2). Nothing secret is ever published: custodians
hold no shard, they vouch that "this new key is really her".

Statements (v1 certifications with reserved `key:` claims, SPEC §16.1):

* designation, by a root key of the member, one per custodian `C`:
  `certify(subject=C, claim="key:custodian/" + hex(D[:16]), commitment=D)`,
  `D = custodian_set_digest(k, custodians)`. The claim carries the digest so
  that each designation has slots of its own: a later designation never
  supersedes an earlier one in the store, and every node can still read both.
  A designation may carry its own waiting period `W` (24 h to 30 days, whole
  hours): the claim ends in `/<hours>` and `D` is hashed with it (domain v2),
  so every node reads the same `W` from the statements themselves, never
  from its own configuration; without it, `W` is 72 h (domain v1);
* recovery, by a custodian: `certify(subject=old, claim="key:recover",
  commitment=new)`: one slot per (custodian, old key), the newest counts;
* veto, by a key of the member: `certify(subject=target, claim="key:veto")`,
  target the new key of a recovery, or the digest `D` of a designation.

`successors_at` is the reference reading: a function of the set of
statements and of a time `now_ms`, never of their arrival order. Pure: no
I/O, no clock (the caller says what time it is).
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from protocol.attestation import Attestation
from protocol.identity import IdentityId
from protocol.statement import Certify, Kind, Revoke

__all__ = [
    "CUSTODIAN_CLAIM_PREFIX",
    "DEFAULT_LOCK_MS",
    "DEFAULT_WAIT_MS",
    "MAX_CUSTODIANS",
    "MAX_WAIT_MS",
    "MIN_WAIT_MS",
    "RECOVER_CLAIM",
    "VETO_CLAIM",
    "Designation",
    "Recovery",
    "RecoveryBook",
    "custodian_set_digest",
    "designation_statements",
    "recovery_statement",
    "veto_statement",
]

CUSTODIAN_CLAIM_PREFIX = "key:custodian/"
RECOVER_CLAIM = "key:recover"
VETO_CLAIM = "key:veto"
DEFAULT_WAIT_MS = 72 * 3600 * 1000
"""How long a complete recovery waits for a veto before it takes effect (SPEC §18.3)."""
DEFAULT_LOCK_MS = 72 * 3600 * 1000
"""How long a new designation waits before it replaces the previous one (SPEC §18.2)."""
MAX_CUSTODIANS = 32  # a bound on n, so reading a designation's k costs at most n hashes
_HOUR_MS = 3600 * 1000
MIN_WAIT_MS = 24 * _HOUR_MS
"""The shortest waiting period a designation may carry (SPEC §18.1): a day to notice."""
MAX_WAIT_MS = 30 * 24 * _HOUR_MS
"""The longest: a member locked out for more than a month is better served by a fresh key."""
_SET_DOMAIN = b"trustnode/custodians/v1\x00"
_SET_DOMAIN_V2 = b"trustnode/custodians/v2\x00"  # with the designation's own wait
_TAG_BYTES = 16
_TAG_HEX = 2 * _TAG_BYTES


def _check_wait(wait_ms: int) -> None:
    if wait_ms % _HOUR_MS or not MIN_WAIT_MS <= wait_ms <= MAX_WAIT_MS:
        raise ValueError("a designation's wait is whole hours, from 24 h to 30 days")


def custodian_set_digest(
    k: int, custodians: Iterable[IdentityId], *, wait_ms: int | None = None
) -> bytes:
    """The set digest D (SPEC §18.1).

    `H("trustnode/custodians/v1\\0" || u8(k) || sorted custodians)`, or with a
    wait of its own, `H("trustnode/custodians/v2\\0" || u8(k) || u16(hours) ||
    sorted custodians)`: the wait is bound into D, so no statement of the set
    can carry another.

    Raises:
        ValueError: k or n out of range, or a wait outside 24 h..30 days.
    """
    keys = sorted(set(custodians))
    if not 1 <= k <= len(keys) <= MAX_CUSTODIANS:
        raise ValueError(f"need 1 <= k <= n <= {MAX_CUSTODIANS}, got k={k}, n={len(keys)}")
    if wait_ms is None:
        head = _SET_DOMAIN + bytes([k])
    else:
        _check_wait(wait_ms)
        head = _SET_DOMAIN_V2 + bytes([k]) + (wait_ms // _HOUR_MS).to_bytes(2, "big")
    return hashlib.blake2b(head + b"".join(keys), digest_size=32).digest()


def designation_claim(digest: bytes, *, wait_ms: int | None = None) -> str:
    """A designation's claim: `key:custodian/` + 32 hex digits (+ `/<hours>` with a wait)."""
    tag = CUSTODIAN_CLAIM_PREFIX + digest[:_TAG_BYTES].hex()
    return tag if wait_ms is None else f"{tag}/{wait_ms // _HOUR_MS}"


def designation_wait(claim: str) -> int | None:
    """The wait a designation claim carries, in ms (None: none, so 72 h).

    Raises:
        ValueError: a suffix that is not the canonical decimal hours of an
            allowed wait (reject, never repair: `/096` or `/12` designate nothing).
    """
    rest = claim[len(CUSTODIAN_CLAIM_PREFIX) + _TAG_HEX :]
    if not rest:
        return None
    hours = rest[1:]
    if rest[0] != "/" or not hours.isdigit() or not hours.isascii() or str(int(hours)) != hours:
        raise ValueError("not a designation's wait")
    wait_ms = int(hours) * _HOUR_MS
    _check_wait(wait_ms)
    return wait_ms


def designation_statements(
    k: int, custodians: Iterable[IdentityId], *, wait_ms: int | None = None
) -> list[Certify]:
    """What a root signs to designate `custodians`, any `k` of whom can recover it.

    With `wait_ms`, recoveries under this designation wait that long, and a
    later designation replaces it only that long after it (SPEC §18.2-§18.3).
    """
    keys = sorted(set(custodians))
    digest = custodian_set_digest(k, keys, wait_ms=wait_ms)
    claim = designation_claim(digest, wait_ms=wait_ms)
    return [Certify(subject=c, claim=claim, commitment=digest) for c in keys]


def recovery_statement(old: IdentityId, new: IdentityId) -> Certify:
    """What a custodian signs: "`new` is really the member whose key `old` was lost"."""
    return Certify(subject=old, claim=RECOVER_CLAIM, commitment=new)


def veto_statement(target: bytes) -> Certify:
    """What a key of the member signs to veto a recovery (its new key) or a designation (D)."""
    return Certify(subject=IdentityId(target), claim=VETO_CLAIM)


@dataclass(frozen=True, slots=True)
class Designation:
    """A complete custodian set: who, how many, since when (the latest statement's time)."""

    digest: bytes
    k: int
    custodians: tuple[IdentityId, ...]
    issued_at_ms: int
    issuers: frozenset[IdentityId]
    # Its waiting period and lock (SPEC §18.1); None: it carries none (the book's default).
    own_wait_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Recovery:
    """The state of recoveries of `old` to `new` (for views and explain)."""

    old: IdentityId
    new: IdentityId
    custodians: tuple[IdentityId, ...]  # members whose current recovery names `new`
    k: int | None  # of the designation in force (None: no designation)
    complete_at_ms: int | None  # the k-th custodian's time
    effective_at_ms: int | None  # complete + wait
    vetoed_by: tuple[tuple[IdentityId, int], ...]  # (key, time) of counting vetoes


Member = Callable[[IdentityId], IdentityId]
Counts = Callable[[IdentityId, int], bool]
IsRoot = Callable[[IdentityId], bool]


@dataclass(slots=True)
class RecoveryBook:
    """Every designation, recovery and veto seen (SPEC §18); answers are set functions."""

    wait_ms: int = DEFAULT_WAIT_MS
    lock_ms: int = DEFAULT_LOCK_MS
    # (digest, its own wait or None) -> {(issuer, custodian): issued_at_ms}
    _designations: dict[tuple[bytes, int | None], dict[tuple[IdentityId, IdentityId], int]] = field(
        default_factory=dict
    )
    # (custodian key, old) -> ((issued_at_ms, id), new or None when withdrawn)
    _recoveries: dict[tuple[IdentityId, IdentityId], tuple[tuple[int, bytes], bytes | None]] = (
        field(default_factory=dict)
    )
    # target -> {vetoer key: earliest issued_at_ms}
    _vetoes: dict[bytes, dict[IdentityId, int]] = field(default_factory=dict)
    _seen: set[bytes] = field(default_factory=set)

    def add(self, attestation: Attestation) -> bool:
        """Take one attestation; True when it is a recovery statement not seen before."""
        statement = attestation.statement
        if attestation.id in self._seen:
            return False
        at = attestation.issued_at_ms
        issuer = attestation.issuer
        if isinstance(statement, Certify):
            claim = statement.claim
            if claim.startswith(CUSTODIAN_CLAIM_PREFIX):
                digest = statement.commitment
                try:
                    wait = designation_wait(claim)
                except ValueError:
                    return False
                if digest is None or claim != designation_claim(digest, wait_ms=wait):
                    return False  # a malformed designation designates nothing
                slots = self._designations.setdefault((digest, wait), {})
                pair = (issuer, IdentityId(statement.subject))
                slots[pair] = min(slots.get(pair, at), at)
            elif claim == RECOVER_CLAIM:
                if statement.commitment is None:
                    return False
                self._newest(issuer, IdentityId(statement.subject), (at, attestation.id),
                             statement.commitment)  # fmt: skip
            elif claim == VETO_CLAIM:
                vetoes = self._vetoes.setdefault(bytes(statement.subject), {})
                vetoes[issuer] = min(vetoes.get(issuer, at), at)
            else:
                return False
        elif (
            isinstance(statement, Revoke)
            and statement.target_kind is Kind.CERTIFY
            and statement.scope == RECOVER_CLAIM
            and isinstance(statement.subject, bytes)
        ):
            # A custodian withdraws: the newest statement in its slot is a revocation.
            self._newest(issuer, IdentityId(statement.subject), (at, attestation.id), None)
        else:
            return False
        self._seen.add(attestation.id)
        return True

    def _newest(
        self, custodian: IdentityId, old: IdentityId, order: tuple[int, bytes], new: bytes | None
    ) -> None:
        slot = (custodian, old)
        held = self._recoveries.get(slot)
        if held is None or order > held[0]:
            self._recoveries[slot] = (order, new)

    def __bool__(self) -> bool:
        return bool(self._recoveries or self._designations)

    def changes_between(self, before_ms: int, now_ms: int) -> bool:
        """Whether a reading at `now_ms` may differ from one at `before_ms` (same set).

        Time enters the reading only as "a designation's lock is over" and "a
        recovery's waiting period is over", and each such instant is a
        statement's time plus the lock or the wait: a superset of the instants
        at which any answer can change, so a clock that moves without crossing
        one changes nothing (the engine asks this on every question).
        """
        low, high = min(before_ms, now_ms), max(before_ms, now_ms)
        # Which designation's wait applies depends on the reading; every one that
        # some designation carries is a candidate. A member may sign one with each
        # of the 697 allowed waits, so each statement's time is looked up in the
        # sorted waits (is there a w with low - at < w <= high - at?) rather than
        # tried against every one: statements x log(waits), not statements x waits.
        waits = sorted(
            {self.lock_ms, self.wait_ms} | {w for _, w in self._designations if w is not None}
        )

        def crosses(at: int) -> bool:
            first = bisect.bisect_right(waits, low - at)  # the first w > low - at
            return first < len(waits) and waits[first] <= high - at

        for slots in self._designations.values():
            if any(crosses(at) for at in slots.values()):
                return True
        return any(crosses(at) for (at, _), _ in self._recoveries.values())

    def lock_of(self, designation: Designation) -> int:
        """How long a change waits while `designation` is in force (SPEC §18.2)."""
        own = designation.own_wait_ms
        return self.lock_ms if own is None else own

    def wait_of(self, designation: Designation) -> int:
        """How long a complete recovery under `designation` waits (SPEC §18.3)."""
        own = designation.own_wait_ms
        return self.wait_ms if own is None else own

    def designations(
        self, member: IdentityId, *, of: Member, counts: Counts, is_root: IsRoot
    ) -> list[Designation]:
        """`member`'s complete designations, oldest first (SPEC §18.1).

        Only root keys of the member designate (a stolen device cannot swap
        custodians), each statement counting at its date; a designation is
        complete when the subjects of its statements hash, with some k, to D.
        """
        found: list[Designation] = []
        for (digest, wait), slots in self._designations.items():
            mine = {
                pair: at
                for pair, at in slots.items()
                if is_root(pair[0]) and of(pair[0]) == member and counts(pair[0], at)
            }
            if not mine:
                continue
            keys = sorted({custodian for _, custodian in mine})
            if len(keys) > MAX_CUSTODIANS:
                continue
            for k in range(1, len(keys) + 1):
                if custodian_set_digest(k, keys, wait_ms=wait) == digest:
                    found.append(Designation(
                        digest, k, tuple(keys), max(mine.values()),
                        frozenset(issuer for issuer, _ in mine), wait,
                    ))  # fmt: skip
                    break
        return sorted(found, key=lambda d: (d.issued_at_ms, d.digest))

    def vetoes(
        self, target: bytes, member: IdentityId, *, of: Member, counts: Counts
    ) -> list[tuple[IdentityId, int]]:
        """Vetoes of `target` by keys of `member` that count at their date, by time."""
        found = [
            (key, at)
            for key, at in self._vetoes.get(target, {}).items()
            if of(key) == member and counts(key, at)
        ]
        return sorted(found, key=lambda v: (v[1], v[0]))

    def in_force(
        self, member: IdentityId, now_ms: int, *, of: Member, counts: Counts, is_root: IsRoot
    ) -> Designation | None:
        """The designation that governs `member`'s recovery at `now_ms` (SPEC §18.2).

        The newest complete one that is not vetoed and whose time lock has
        passed; the first designation a member ever made has no lock (there
        is nothing to swap yet). The lock is the one the designation in force
        carries (`lock_of`): a thief's new designation cannot shorten the wait
        that protects the member's current one.
        """
        usable = [
            d
            for d in self.designations(member, of=of, counts=counts, is_root=is_root)
            if not self.vetoes(d.digest, member, of=of, counts=counts)
        ]
        current: Designation | None = None
        for d in usable:  # oldest first
            if current is None or d.issued_at_ms + self.lock_of(current) <= now_ms:
                current = d
        return current

    def recoveries(
        self, now_ms: int, *, of: Member, counts: Counts, is_root: IsRoot
    ) -> list[Recovery]:
        """Every (old, new) some custodian names, read at `now_ms` (SPEC §18.3)."""
        named: dict[tuple[IdentityId, IdentityId], dict[IdentityId, int]] = {}
        for (custodian, old), ((at, _), new) in self._recoveries.items():
            if new is None or not counts(custodian, at):
                continue
            votes = named.setdefault((old, IdentityId(new)), {})
            who = of(custodian)
            votes[who] = min(votes.get(who, at), at)
        found: list[Recovery] = []
        for (old, new), votes in sorted(named.items()):
            member = of(old)
            design = self.in_force(member, now_ms, of=of, counts=counts, is_root=is_root)
            allowed = set() if design is None else {of(c) for c in design.custodians}
            times = sorted(at for who, at in votes.items() if who in allowed and who != member)
            complete = effective = None
            if design is not None and len(times) >= design.k:
                complete = times[design.k - 1]
                effective = complete + self.wait_of(design)
            found.append(Recovery(
                old, new, tuple(sorted(w for w in votes if w in allowed)),
                None if design is None else design.k, complete, effective,
                tuple(self.vetoes(new, member, of=of, counts=counts)),
            ))  # fmt: skip
        return found

    def successors_at(
        self, now_ms: int, *, of: Member, counts: Counts, is_root: IsRoot
    ) -> dict[IdentityId, tuple[IdentityId, int]]:
        """old -> (new, effective time) for every recovery that counts at `now_ms`.

        Counts: complete under the designation in force, its waiting period
        over, no counting veto of it, `new` not `old`, not a key of another
        member. When several new keys qualify for one old key, the earliest
        effective (then the smallest key) wins, so every node agrees.
        """
        best: dict[IdentityId, tuple[IdentityId, int]] = {}
        for r in self.recoveries(now_ms, of=of, counts=counts, is_root=is_root):
            if (
                r.effective_at_ms is None
                or r.effective_at_ms > now_ms
                or r.vetoed_by
                or r.new == r.old
                or of(r.new) != r.new
                or not is_root(r.new)
            ):
                continue
            held = best.get(r.old)
            if held is None or (r.effective_at_ms, r.new) < (held[1], held[0]):
                best[r.old] = (r.new, r.effective_at_ms)
        return best
