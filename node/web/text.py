"""Peers' text made inert for people: escaping is the template's job (autoescape);
this makes the characters that reorder or hide text visible, so a name cannot
pretend to be another by bidi tricks (U+202E and friends) or invisible marks."""

from __future__ import annotations

import unicodedata

__all__ = ["visible"]

# Bidi embeddings, overrides, isolates and marks; zero-width characters.
_SHOWN = {
    *range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C,
    0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF,
}  # fmt: skip


def visible(text: object) -> str:
    """`text` with each bidi control, zero-width or other format/control character
    shown as `⟨U+XXXX⟩` instead of acting on the text around it."""
    out = []
    for char in str(text):
        code = ord(char)
        if code in _SHOWN or unicodedata.category(char) in {"Cc", "Cf"}:
            out.append(f"⟨U+{code:04X}⟩")
        else:
            out.append(char)
    return "".join(out)
