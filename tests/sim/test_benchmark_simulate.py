"""benchmarks/simulate.py runs the real scenario and reports what it measured."""

from __future__ import annotations

import json

import pytest

from benchmarks.simulate import main


def test_a_small_run_reports_its_figures(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--nodes", "20", "--attestations", "1", "--burst", "20", "--json"]
    assert main(argv) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["deliveries"] == 20 * 21  # every member stored every attestation
    assert figures["claims_hold"] is True
    assert figures["phases"][0]["name"] == "forming the community"
    assert figures["workload_before_s"] > 0
    assert figures["in_workloads"] > 0


def test_a_missed_target_is_reported_as_such(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--nodes", "10", "--attestations", "1", "--burst", "5", "--target-s", "0"]) == 1
    assert "MISS" in capsys.readouterr().out
