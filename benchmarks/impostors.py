"""How often the impostor warning fires when it should, and when it should not.

For each of a list of first names (Latin, with a few Cyrillic, Greek and
accented ones), the viewer's petname is that name on one identity, and an
impostor's self-chosen profile is a disguised copy of it on another. Per way of
disguise it counts how many copies the resolver flags (`detected`) and how
many are refused before they could be shown (a label must not hold control,
bidi or format characters: SPEC §3.4). Separately, every ordered pair of
*different* names from the list is tried (the profile one name, the petname
the other): a warning there is a false alarm.

Pure and fast (no store, no network): `python -m benchmarks.impostors [--json]`.
"""

from __future__ import annotations

import argparse
import json
import sys
import unicodedata
from collections.abc import Callable

from node.names import NameBook
from protocol.identity import IdentityKey
from protocol.label import MAX_NAME_LABEL_BYTES, MAX_NAME_LABEL_CODE_POINTS, is_label

NAMES = [
    "Alice", "Anna", "Bob", "Claire", "David", "Emma", "Eric", "Grace", "Hugo", "Inès",
    "Jean", "Jeanne", "Karim", "Léa", "Louis", "Lucas", "Manon", "Marc", "Marie", "Mehdi",
    "Nathan", "Nina", "Olivier", "Paul", "Pierre", "Rose", "Sarah", "Sophie", "Thomas",
    "Yanis", "Zoé", "Chloé", "Camille", "Julien", "Martin", "Michel", "Nicolas", "Omar",
    "Romain", "Simon", "Théo", "Victor", "Yasmine", "Élodie", "Agnès", "Bernard", "Cécile",
    "Denis", "Fatima", "Gilles", "Hélène", "Isabelle", "Jacques", "Kevin", "Laura",
    "Mathieu", "Noémie", "Océane", "Patrick", "Quentin", "Rémi", "Sylvie", "Tristan",
    "Valérie", "William", "Xavier", "Yves", "Иван", "Ольга", "Νίκος", "Ελένη",
    "Grace (rue des Lilas)", "Marc B", "Anne-Marie", "Jean-Luc",
]  # fmt: skip
# Cross-script look-alikes an impostor types by hand (Cyrillic and Greek letters).
_HOMOGLYPHS = {
    "a": "\u0430", "e": "\u0435", "o": "\u043e", "p": "\u0440", "c": "\u0441", "x": "\u0445",
    "y": "\u0443", "i": "\u0456", "A": "\u0391", "B": "\u0392", "E": "\u0415", "H": "\u041d",
    "K": "\u039a", "M": "\u041c", "O": "\u039f", "P": "\u0420", "T": "\u0422", "X": "\u03a7",
    "C": "\u0421", "I": "\u0406", "J": "\u0408", "N": "\u039d", "S": "\u0405", "Z": "\u0396",
    "\u0430": "a", "\u043e": "o", "\u0435": "e", "\u0440": "p", "\u0441": "c",
    "\u03bf": "o", "\u03b9": "i", "\u0391": "A", "\u0395": "E", "\u039d": "N",
}  # fmt: skip


def _swap_all(name: str) -> str:
    return "".join(_HOMOGLYPHS.get(c, c) for c in name)


def _swap_one(name: str) -> str:
    for n, c in enumerate(name):
        if c in _HOMOGLYPHS:
            return name[:n] + _HOMOGLYPHS[c] + name[n + 1 :]
    return name


def _fullwidth(name: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in name)


def _strip_accents(name: str) -> str:
    bare = unicodedata.normalize("NFD", name)
    return unicodedata.normalize("NFC", "".join(c for c in bare if not unicodedata.combining(c)))


def _add_accent(name: str) -> str:
    return unicodedata.normalize("NFC", name[0] + "\u0301" + name[1:])


DISGUISES: dict[str, Callable[[str], str]] = {
    "identical": lambda n: n,
    "one Cyrillic/Greek letter": _swap_one,
    "every letter swapped": _swap_all,
    "upper case": str.upper,
    "lower case": str.lower,
    "a space inside": lambda n: n[:1] + " " + n[1:],
    "spaces around": lambda n: f"  {n} ",
    "fullwidth letters": _fullwidth,
    "accents dropped": _strip_accents,
    "an accent added": _add_accent,
    "qualifier added": lambda n: f"{n} (boulangerie)",
    "l for I / 1 for l": lambda n: n.replace("l", "1").replace("I", "l"),
    "zero-width space": lambda n: n[:1] + "\u200b" + n[1:],
    "right-to-left override": lambda n: "\u202e" + n,
    "rn for m (a sequence)": lambda n: n.replace("m", "rn").replace("M", "RN"),
}
ME, YOURS, IMPOSTOR = (IdentityKey.from_seed(bytes([n]) * 32).identity for n in (1, 2, 3))


def _flagged(petname: str, claimed: str) -> bool:
    book = NameBook(viewer=ME, petnames={YOURS: petname}, profiles={IMPOSTOR: claimed})
    return bool(book.resolve(IMPOSTOR).impostors)


def _is_label(text: str) -> bool:
    return is_label(text, max_code_points=MAX_NAME_LABEL_CODE_POINTS,
                    max_bytes=MAX_NAME_LABEL_BYTES)  # fmt: skip


def measure() -> dict[str, object]:
    """Detection per disguise, and false alarms between different names."""
    per_disguise: dict[str, dict[str, int]] = {}
    for label, disguise in DISGUISES.items():
        copies = {n: disguise(n) for n in NAMES}
        changed = {n: c for n, c in copies.items() if c != n or label == "identical"}
        refused = sum(not _is_label(c) for c in changed.values())
        shown = {n: c for n, c in changed.items() if _is_label(c)}
        detected = sum(_flagged(n, c) for n, c in shown.items())
        per_disguise[label] = {
            "tried": len(changed), "refused": refused, "shown": len(shown), "detected": detected,
        }  # fmt: skip
    pairs = false_alarms = 0
    alarms: list[str] = []
    for petname in NAMES:
        for claimed in NAMES:
            if petname == claimed:
                continue
            pairs += 1
            if _flagged(petname, claimed):
                false_alarms += 1
                alarms.append(f"{claimed} ~ {petname}")
    shown_total = sum(d["shown"] for d in per_disguise.values())
    detected_total = sum(d["detected"] for d in per_disguise.values())
    return {
        "names": len(NAMES),
        "per_disguise": per_disguise,
        "disguised_shown": shown_total,
        "disguised_detected": detected_total,
        "detection_rate": round(detected_total / shown_total, 4),
        "pairs_of_different_names": pairs,
        "false_alarms": false_alarms,
        "false_alarm_rate": round(false_alarms / pairs, 5),
        "false_alarm_examples": alarms[:10],
    }


def main(argv: list[str] | None = None) -> int:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    figures = measure()
    if args.json:
        print(json.dumps(figures, indent=2, ensure_ascii=False))
        return 0
    print(f"{'disguise':<28} tried refused shown detected")
    for label, row in figures["per_disguise"].items():  # type: ignore[attr-defined]
        print(f"{label:<28} {row['tried']:>5} {row['refused']:>7} {row['shown']:>5} "
              f"{row['detected']:>8}")  # fmt: skip
    for key in ("detection_rate", "pairs_of_different_names", "false_alarms", "false_alarm_rate"):
        print(f"{key}: {figures[key]}")
    print("false alarms, e.g.:", "; ".join(figures["false_alarm_examples"]))  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main())
