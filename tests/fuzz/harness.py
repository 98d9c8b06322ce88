"""Coverage-guided fuzzing of one target with atheris (libFuzzer for Python).

    python -m tests.fuzz.harness TARGET [libFuzzer options] [corpus dirs]

e.g. `python -m tests.fuzz.harness wire -max_total_time=600 corpus/wire` for a
longer run (CI runs each target for a few thousand inputs). A crash writes
`crash-*` with the input: add it to `tests/fuzz/crashers/TARGET/` so that the
test suite replays it forever.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["protocol", "node.config"]):
    from tests.fuzz.targets import TARGETS, check


def main() -> None:
    """Fuzz the target named by the first argument."""
    name = sys.argv.pop(1)
    if name not in TARGETS:
        raise SystemExit(f"unknown target {name!r}; targets: {', '.join(TARGETS)}")
    atheris.Setup(sys.argv, lambda data: check(name, data))
    atheris.Fuzz()


if __name__ == "__main__":
    main()
