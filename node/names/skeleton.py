"""Confusable skeletons: two names that read alike get one skeleton (Unicode TR39 §4).

An impostor calls himself by a name that *looks like* the name of someone we
trust: `Gr\u0430ce` with a Cyrillic a (U+0430), `G race`, `GRACE`, `Gracé`. Comparing
skeletons instead of strings catches those. We fold more than TR39's skeleton
does, on purpose: a warning too many costs a glance, one too few costs trust.

The table is Unicode's confusables data (confusables.txt of TR39) as the
maintained `confusable-homoglyphs` package ships it (MIT licence), read from its
data file. That file lists, for each character, the characters it is
confusable with; we take each connected group of look-alikes and map all of its
members to the group's smallest code point. Nothing here decides trust: callers
compare skeletons; the text itself is never changed or shown from here.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import unicodedata

__all__ = ["are_confusable", "skeleton", "skeletons"]

# Bidi marks wrap right-to-left entries of the data file; they are no part of a glyph.
_BIDI_MARKS = str.maketrans("", "", "\u200e\u200f")


def _group_roots(pairs: list[tuple[str, str]]) -> dict[str, str]:
    parent: dict[str, str] = {}

    def root(char: str) -> str:
        while (up := parent.get(char, char)) != char:
            parent[char] = parent.get(up, up)  # path halving keeps the walk short
            char = up
        return char

    for a, b in pairs:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {char: root(char) for char in parent}


@functools.cache
def _prototypes() -> dict[int, str]:
    """Character → its look-alike group's representative, as a `str.translate` table.

    Loaded on first use (about 10 000 entries, a few milliseconds), not at import.
    """
    data_file = importlib.resources.files("confusable_homoglyphs") / "confusables.json"
    table: dict[str, list[dict[str, str]]] = json.loads(data_file.read_text(encoding="utf-8"))
    pairs: list[tuple[str, str]] = []
    for source, glyphs in table.items():
        a = source.translate(_BIDI_MARKS)
        # Sequences (`rn` for `m`) would need TR39's full string mapping; single
        # characters carry the cross-script look-alikes impostors use.
        if len(a) != 1:
            continue
        pairs += [(a, b) for g in glyphs if len(b := g["c"].translate(_BIDI_MARKS)) == 1]
    return {ord(char): root for char, root in _group_roots(pairs).items() if char != root}


# Names repeat from one name book to the next (node.names.index rebuilds it when
# the store changes): each is folded once. Labels are at most 64 code points
# (SPEC §3.4), so a full cache holds a few megabytes.
_CACHED_NAMES = 1 << 16


@functools.lru_cache(maxsize=_CACHED_NAMES)
def skeleton(text: str, *, fold_first: bool = False) -> str:
    """A comparison key of `text`: marks and spaces dropped, look-alikes merged, case folded.

    Steps: NFKC (fullwidth `G` U+FF27 → `G`), NFD and dropping combining marks
    (`é` → `e`), dropping white space, mapping each character to its look-alike
    group (Cyrillic a U+0430 → `a`, capital `I` → the group of `l` and `1`),
    folding case, and mapping once more (folding may land in another group).
    Mapping before folding keeps `AIice` (capital i) the look-alike of `Alice`;
    folding first (`fold_first`) makes `ALICE` that of `Alice`: `skeletons`
    gives both, and names read alike when they share one.
    """
    table = _prototypes()
    bare = "".join(
        c
        for c in unicodedata.normalize("NFD", unicodedata.normalize("NFKC", text))
        if not unicodedata.combining(c) and not c.isspace()
    )
    if fold_first:
        bare = bare.casefold()
    return bare.translate(table).casefold().translate(table)


@functools.lru_cache(maxsize=_CACHED_NAMES)
def skeletons(text: str) -> frozenset[str]:
    """Both keys of `skeleton` (mapped before and after folding case)."""
    return frozenset((skeleton(text), skeleton(text, fold_first=True)))


def are_confusable(a: str, b: str) -> bool:
    """Whether `a` and `b` read alike (they share a skeleton); never raises."""
    return not skeletons(a).isdisjoint(skeletons(b))
