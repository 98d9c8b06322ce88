"""Who is `tn_…`? One answer for every view: the name resolver (Zooko's triangle).

A name is *mine* (a petname I gave), *theirs* (what contacts I trust call the
subject in their vouches, weighted by my trust in them) or *self-claimed* (the
subject's own profile), and a view never blurs the three: `label` marks each
(`Grace`, `"Grace" per alice`, `~Grace`), else it is the short id. Names that
read like the name of another identity I trust (a confusable skeleton,
`node.names.skeleton`) carry an impostor warning.

Pure: the caller gathers petnames, current profiles, named vouches and my trust
scores into a `NameBook`; nothing here reads a store or renders markup. Names
are data: views escape them (node/cli/render.py is the CLI's one door).
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from node.names.skeleton import skeleton, skeletons
from protocol.identity import IdentityId, short_identity_text

__all__ = ["SELF_MARK", "Impostor", "NameBook", "NameSource", "ResolvedName"]

SELF_MARK = "~"  # SPEC §3.2: a self-chosen name is shown as self-claimed


class NameSource(enum.Enum):
    """Where a shown name comes from, in order of precedence."""

    PETNAME = "petname"
    CONTACTS = "contacts"
    SELF = "self"
    ID = "id"


@dataclass(frozen=True, slots=True, kw_only=True)
class Impostor:
    """`claimed` (a name the subject goes by) reads like `resembles`, the name of `other`."""

    claimed: str
    resembles: str
    other: IdentityId

    @property
    def warning(self) -> str:
        """One line for people: what is claimed, and who really bears that name for me."""
        return (
            f"goes by {self.claimed}, like your {self.resembles} "
            f"({short_identity_text(self.other)}…): not the same identity"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ResolvedName:
    """The name of one identity as this node shows it."""

    identity: IdentityId
    source: NameSource
    name: str | None = None  # the bare name; None when only the id is known
    givers: tuple[str, ...] = ()  # for CONTACTS: who gave it, most trusted first (labels)
    impostors: tuple[Impostor, ...] = ()

    @property
    def label(self) -> str:
        """The name with its mark, as every view shows it."""
        if self.name is None or self.source is NameSource.ID:
            return f"{short_identity_text(self.identity)}…"
        if self.source is NameSource.SELF:
            return f"{SELF_MARK}{self.name}"
        if self.source is NameSource.CONTACTS:
            more = f" +{len(self.givers) - 1}" if len(self.givers) > 1 else ""
            return f'"{self.name}" per {self.givers[0]}{more}'
        return self.name


def _core(name: str) -> str:
    """`Grace` of `Grace (rue des Lilas)`: petnames often carry a qualifier."""
    head, _, _ = name.partition("(")
    return head.strip() or name


@dataclass(frozen=True, slots=True, kw_only=True)
class NameBook:
    """Everything naming needs, from `viewer`'s point of view.

    Args:
        petnames: my names for identities (unique per node).
        profiles: each identity's current self-chosen name.
        given: subject → (giver, name) of the current named vouches about it.
        trust: my trust score of identities (absent = 0); givers ≤ 0 are ignored.
    """

    viewer: IdentityId
    petnames: Mapping[IdentityId, str] = field(default_factory=dict)
    profiles: Mapping[IdentityId, str] = field(default_factory=dict)
    given: Mapping[IdentityId, Sequence[tuple[IdentityId, str]]] = field(default_factory=dict)
    trust: Mapping[IdentityId, float] = field(default_factory=dict)
    _established: dict[str, list[tuple[str, IdentityId]]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        # Skeleton → (name, identity) of the names I rely on: my petnames, and the
        # contact-given names of identities I trust.
        established: dict[str, list[tuple[str, IdentityId]]] = defaultdict(list)
        known = [(name, who) for who, name in self.petnames.items()]
        for who in self.given:
            best = self._contact_name(who)
            if best is not None and self._score(who) > 0:
                known.append((best[0], who))
        for name, who in known:
            for key in skeletons(name) | skeletons(_core(name)):
                established[key].append((name, who))
        object.__setattr__(self, "_established", dict(established))

    def _score(self, identity: IdentityId) -> float:
        return 1.0 if identity == self.viewer else self.trust.get(identity, 0.0)

    def _giver_label(self, giver: IdentityId) -> str:
        # Never recursive and never a self-claimed name unmarked: mine, ~theirs, or the id.
        if giver == self.viewer:
            return "you"
        if giver in self.petnames:
            return self.petnames[giver]
        if giver in self.profiles:
            return f"{SELF_MARK}{self.profiles[giver]}"
        return f"{short_identity_text(giver)}…"

    def _contact_name(self, subject: IdentityId) -> tuple[str, tuple[IdentityId, ...]] | None:
        """The contact-given name with the most of my trust behind it, and its givers."""
        weights: dict[str, float] = defaultdict(float)
        givers: dict[str, list[IdentityId]] = defaultdict(list)
        for giver, name in self.given.get(subject, ()):
            score = self._score(giver)
            if score > 0:
                weights[name] += score
                givers[name].append(giver)
        if not weights:
            return None
        name = min(weights, key=lambda n: (-weights[n], n))
        ranked = sorted(givers[name], key=lambda g: (-self._score(g), g))
        return name, tuple(ranked)

    def _impostors(self, identity: IdentityId, names: Sequence[str]) -> tuple[Impostor, ...]:
        found: dict[tuple[str, IdentityId], Impostor] = {}
        for claimed in names:
            for key in skeletons(claimed) | skeletons(_core(claimed)):
                for resembles, other in self._established.get(key, ()):
                    # Petnames come first in the index: the warning names mine.
                    if other != identity and (claimed, other) not in found:
                        found[(claimed, other)] = Impostor(
                            claimed=claimed, resembles=resembles, other=other
                        )
        return tuple(found.values())

    def resolve(self, identity: IdentityId) -> ResolvedName:
        """My name for `identity`: petname, else contacts', else self-claimed, else the id
        (and `you` for the viewer, whatever others call us)."""
        if identity == self.viewer:
            return ResolvedName(identity=identity, source=NameSource.PETNAME, name="you")
        petname = self.petnames.get(identity)
        if petname is not None:
            return ResolvedName(identity=identity, source=NameSource.PETNAME, name=petname)
        contact = self._contact_name(identity)
        self_name = self.profiles.get(identity)
        shown = [n for n in (contact[0] if contact else None, self_name) if n is not None]
        impostors = self._impostors(identity, shown)
        if contact is not None:
            givers = tuple(self._giver_label(g) for g in contact[1])
            return ResolvedName(
                identity=identity,
                source=NameSource.CONTACTS,
                name=contact[0],
                givers=givers,
                impostors=impostors,
            )
        if self_name is not None:
            return ResolvedName(
                identity=identity, source=NameSource.SELF, name=self_name, impostors=impostors
            )
        return ResolvedName(identity=identity, source=NameSource.ID)

    def names_of(self, identity: IdentityId) -> list[str]:
        """Every name `identity` goes by here: mine, its contacts', its own."""
        names = [self.petnames.get(identity), self.profiles.get(identity)]
        names += [name for _, name in self.given.get(identity, ())]
        return list(dict.fromkeys(n for n in names if n is not None))

    def find(self, text: str) -> list[IdentityId]:
        """Identities any of whose names contains `text` (read alike), most trusted first."""
        wanted = skeleton(text, fold_first=True)  # a search ignores case above all
        if not wanted:
            return []
        known = set(self.petnames) | set(self.profiles) | set(self.given)
        found = [
            i
            for i in known
            if any(wanted in skeleton(n, fold_first=True) for n in self.names_of(i))
        ]
        return sorted(found, key=lambda i: (i not in self.petnames, -self._score(i), i))

    def by_petname(self, text: str) -> IdentityId | None:
        """The identity I named exactly `text`, if any."""
        return next((who for who, name in self.petnames.items() if name == text), None)
