"""The README's commands and examples stay true (STYLE §9)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def test_first_screen_has_the_two_commands() -> None:
    demo, tests = _blocks("bash")[:2]
    assert demo.strip().startswith("python3 -m venv .venv && .venv/bin/pip install .")
    assert demo.strip().endswith(".venv/bin/trustnode demo")
    assert (
        tests.strip()
        == "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/pytest"
    )


def test_ci_installs_and_tests_as_the_readme_says() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "python3 -m venv .venv" in ci
    assert ".venv/bin/pip install --quiet -e '.[test]'" in ci
    assert ".venv/bin/pytest" in ci


def test_python_examples_run() -> None:
    examples = _blocks("python")
    assert examples
    for example in examples:
        exec(compile(example, "README.md", "exec"), {})  # our own README
