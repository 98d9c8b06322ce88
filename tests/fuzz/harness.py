"""Coverage-guided fuzzing of one target with atheris (libFuzzer for Python).

    python -m tests.fuzz.harness TARGET [libFuzzer options] [corpus dirs]

e.g. `python -m tests.fuzz.harness wire -max_total_time=600 corpus/wire` for a
longer run (CI runs each target for a few thousand inputs). A crash writes
`crash-*` with the input: add it to `tests/fuzz/crashers/TARGET/` so that the
test suite replays it forever.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["protocol", "node.home.config"]):
    from tests.fuzz.targets import TARGETS, check


def main() -> None:
    """Fuzz the target named by the first argument."""
    name = sys.argv.pop(1)
    if name not in TARGETS:
        raise SystemExit(f"unknown target {name!r}; targets: {', '.join(TARGETS)}")
    _seed_corpus(name, sys.argv[1:])
    atheris.Setup(sys.argv, lambda data: check(name, data))
    atheris.Fuzz()


def _seed_corpus(name: str, arguments: list[str]) -> None:
    """Put the target's valid seeds into the first corpus folder given.

    Without them libFuzzer starts from empty input and spends most of a run
    rediscovering the outer framing before it reaches the deeper checks.
    """
    folders = [Path(a) for a in arguments if not a.startswith("-")]
    if not folders:
        return
    folders[0].mkdir(parents=True, exist_ok=True)
    for seed in TARGETS[name].seeds():
        (folders[0] / f"seed-{hashlib.sha256(seed).hexdigest()[:16]}").write_bytes(seed)


if __name__ == "__main__":
    main()
