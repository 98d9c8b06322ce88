"""Labels: the few fields of free human text a person writes (SPEC §3.4).

A display name in a `profile`, the "about" line beside it, and the name a voucher
knows a subject by are the only places where the protocol carries text that is
not ASCII. Such text is a vector for impersonation and for tricks on the reader
(bidi overrides, invisible joiners, look-alike spaces, terminal escapes), so a
label is bounded twice (code points for the reader, bytes for the envelope) and
refused, never repaired, when it is not in Unicode NFC or holds a character of a
refused general category. This module owns that one rule; it knows nothing of
statements, and it never normalises: normalising would give one label two
encodings, hence one attestation two ids.
"""

from __future__ import annotations

import unicodedata

from protocol.errors import FieldError, Reason

__all__ = [
    "MAX_ABOUT_BYTES",
    "MAX_ABOUT_CODE_POINTS",
    "MAX_NAME_LABEL_BYTES",
    "MAX_NAME_LABEL_CODE_POINTS",
    "REFUSED_CATEGORIES",
    "UNICODE_VERSION",
    "check_label",
    "is_label",
]

MAX_NAME_LABEL_CODE_POINTS = 64
MAX_NAME_LABEL_BYTES = 128
MAX_ABOUT_CODE_POINTS = 140
MAX_ABOUT_BYTES = 280
# The Unicode version whose categories and NFC we apply: SPEC §3.4 names 14.0.0
# (Python 3.11's). Unassigned characters (Cn) are allowed, so later versions can
# differ only on characters assigned since; see the SPEC.
UNICODE_VERSION = unicodedata.unidata_version
# Control (Cc), format (Cf: bidi controls, zero-width joiners and spaces, the
# BOM, tag characters), surrogate (Cs), private use (Co), line and paragraph
# separators (Zl, Zp): none has a visible form a reader can check.
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})
_SPACE = " "


def _refused_character(text: str) -> str | None:
    """The first character a label may not hold, or None."""
    for char in text:
        category = unicodedata.category(char)
        # Of the space separators (Zs) only U+0020 is allowed: no-break, thin,
        # ideographic and other spaces look like it and would make names that
        # read alike compare unequal.
        if category in REFUSED_CATEGORIES or (category == "Zs" and char != _SPACE):
            return char
    return None


def check_label(value: object, field: str, *, max_code_points: int, max_bytes: int) -> None:
    """Refuse `value` unless it is a valid label (SPEC §3.4).

    Checks, all of them `OUT_OF_RANGE` but the first: a str (else `BAD_FIELD`);
    1 to `max_bytes` bytes of UTF-8 and at most `max_code_points` code points; no
    refused character; no space first or last; in NFC. Messages name the code
    point of a refused character, never the text (which may be hostile).

    Raises:
        FieldError: `BAD_FIELD` or `OUT_OF_RANGE`.
    """
    if type(value) is not str:
        raise FieldError(Reason.BAD_FIELD, f"{field} must be a string")
    # Bytes first: it bounds the rest of the work (a str of n bytes has at most
    # n code points). A lone surrogate has no UTF-8 form: refused as Cs below.
    size = len(value.encode("utf-8", "surrogatepass"))
    if not 1 <= size <= max_bytes or len(value) > max_code_points:
        raise FieldError(
            Reason.OUT_OF_RANGE,
            f"{field} is 1 to {max_code_points} characters and {max_bytes} bytes",
        )
    refused = _refused_character(value)
    if refused is not None:
        raise FieldError(
            Reason.OUT_OF_RANGE,
            f"{field} holds U+{ord(refused):04X} ({unicodedata.category(refused)}), refused",
        )
    if value[0] == _SPACE or value[-1] == _SPACE:
        raise FieldError(Reason.OUT_OF_RANGE, f"{field} starts or ends with a space")
    if not unicodedata.is_normalized("NFC", value):
        raise FieldError(Reason.OUT_OF_RANGE, f"{field} is not in Unicode NFC")


def is_label(value: object, *, max_code_points: int, max_bytes: int) -> bool:
    """Whether `value` is a valid label (SPEC §3.4); never raises."""
    try:
        check_label(value, "label", max_code_points=max_code_points, max_bytes=max_bytes)
    except FieldError:
        return False
    return True
