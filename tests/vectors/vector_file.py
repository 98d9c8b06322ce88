"""How every vector generator writes its file: one text form (stable key order,
two-space indent, final newline), so the checked-in files and the tests that
compare them against a fresh build agree byte for byte."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def render(vectors: Any) -> str:
    """The file's exact text: stable key order, two-space indent, final newline."""
    return json.dumps(vectors, indent=2) + "\n"


def write_vectors(path: Path, vectors: Any) -> int:
    """Rewrite the vector file at `path`; print its path and digest; exit status 0."""
    text = render(vectors)
    path.write_text(text, encoding="utf-8")
    digest = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
    print(f"wrote {path} ({len(text)} bytes, blake2b-128 {digest})")
    return 0
