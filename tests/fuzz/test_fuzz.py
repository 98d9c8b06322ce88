"""The decoders' contract under fuzzing: any input -> a value or a typed error.

Three layers: every seed and every crasher ever found is replayed; hypothesis
mutates valid inputs (flips, inserts, deletes, truncations); and, where atheris
is installed, each target gets a short coverage-guided run from its seeds
(`python -m tests.fuzz.harness TARGET -max_total_time=600` for a long one).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz.targets import TARGETS, check

CRASHERS = Path(__file__).with_name("crashers")
ATHERIS = (
    subprocess.run(
        [sys.executable, "-c", "import atheris"], capture_output=True, check=False
    ).returncode
    == 0
)


def _crashers() -> list[tuple[str, Path]]:
    return [
        (d.name, f) for d in sorted(CRASHERS.iterdir()) if d.is_dir() for f in sorted(d.iterdir())
    ]


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_seeds_decode_or_fail_typed(name: str) -> None:
    seeds = TARGETS[name].seeds()
    assert seeds
    for seed in seeds:
        check(name, seed)


@pytest.mark.parametrize(("name", "path"), _crashers(), ids=lambda v: str(v))
def test_crashers_stay_fixed(name: str, path: Path) -> None:
    check(name, path.read_bytes())


@st.composite
def _mutated(draw: st.DrawFn, name: str) -> bytes:
    data = bytearray(draw(st.sampled_from(TARGETS[name].seeds())))
    for _ in range(draw(st.integers(1, 6))):
        action = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "byte"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if action == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "byte" and data:
            data[at] = draw(st.integers(0, 255))
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif action == "delete" and data:
            del data[at : at + draw(st.integers(1, 8))]
        elif action == "truncate":
            del data[at:]
    return bytes(data)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_mutated_valid_inputs_keep_the_contract(name: str) -> None:
    @settings(max_examples=150, deadline=None)
    @given(_mutated(name))
    def run(data: bytes) -> None:
        check(name, data)

    run()


@pytest.mark.slow
@pytest.mark.skipif(not ATHERIS, reason="atheris is not installed on this platform")
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_short_coverage_guided_run(name: str, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for number, seed in enumerate(TARGETS[name].seeds()):
        (corpus / f"seed{number}").write_bytes(seed)
    run = subprocess.run(
        [sys.executable, "-m", "tests.fuzz.harness", name, "-runs=20000", "-max_len=4096",
         "-rss_limit_mb=2048", "-timeout=10", "-seed=1", str(corpus)],
        capture_output=True, text=True, timeout=300, check=False,
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Done 20000 runs" in run.stderr
