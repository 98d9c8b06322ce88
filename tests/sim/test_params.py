"""Every scenario and network parameter is range-checked before a run (issue 21, defect 3)."""

from __future__ import annotations

import math
import signal
import subprocess
import sys
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.errors import ConfigError
from node.net.simnet import LinkModel, LinkModelError, SimNetwork
from simulations.params import ParameterError, Value, check_nodes, limit_of
from simulations.runner import SCENARIOS, parse_params, run_scenario
from simulations.world import NetworkParameters


def test_every_declared_parameter_has_a_limit_its_default_meets() -> None:
    for scenario in SCENARIOS.values():
        for name, default in scenario.defaults.items():
            limit_of(name, default).check(name, default)
        parse_params(scenario, {})


@pytest.mark.parametrize(
    ("scenario", "name", "text"),
    [
        ("convergence", "loss", "2"),  # looped forever in SimNetwork.due_time
        ("convergence", "loss", "1"),
        ("convergence", "loss", "-0.1"),
        ("convergence", "loss", "nan"),
        ("convergence", "latency_min_ms", "inf"),
        ("convergence", "latency_min_ms", "-5"),
        ("convergence", "max_active", "0"),
        ("convergence", "bootstrap", "-1"),
        ("convergence", "resync_s", "0"),
        ("convergence", "burst", "1.5"),
        ("convergence", "attestations", "10000000"),
        ("convergence", "latency_shape", "pareto"),
        ("join", "community", "-3"),
        ("churn", "rates", "0.1,3"),
        ("churn", "rates", "0.1,x"),
        ("churn", "rates", ","),
        ("churn", "fresh", "1.5"),
        ("whitewash", "vouch_chance", "2"),
        ("sybil", "farm", "huge"),
        ("sybil", "graph", "ER"),
        ("flood", "farm", "0"),
    ],
)
def test_out_of_range_parameters_are_refused_by_name(scenario: str, name: str, text: str) -> None:
    with pytest.raises(ParameterError) as caught:
        parse_params(SCENARIOS[scenario], {name: text})
    assert caught.value.name == name


def test_members_picked_must_fit_in_the_community() -> None:
    whitewash = parse_params(SCENARIOS["whitewash"], {"viewers": "10", "flaggers": "5"})
    check_nodes("whitewash", 16, whitewash)
    with pytest.raises(ParameterError) as caught:
        check_nodes("whitewash", 15, whitewash)
    assert caught.value.name == "flaggers"
    with pytest.raises(ParameterError) as caught:
        run_scenario("flood", nodes=5, params={"attack_edges": "6"})
    assert caught.value.name == "attack_edges"


def test_latency_range_must_be_ordered() -> None:
    with pytest.raises(ParameterError) as caught:
        parse_params(SCENARIOS["convergence"], {"latency_min_ms": "50", "latency_max_ms": "10"})
    assert caught.value.name == "latency_max_ms"


def _parsed_or_refused(scenario: str, name: str, text: str) -> dict[str, Value] | None:
    """The parameters, or None when refused (by a ParameterError naming `name`)."""
    refused: str | None = None
    try:
        return parse_params(SCENARIOS[scenario], {name: text})
    except ParameterError as exc:
        refused = exc.name
    assert refused in (name, "latency_max_ms")
    return None


@pytest.mark.slow
@given(
    name=st.sampled_from(sorted({n for s in SCENARIOS.values() for n in s.defaults})),
    text=st.text(max_size=12) | st.floats().map(str) | st.integers().map(str),
)
def test_any_text_gives_checked_parameters_or_a_parameter_error(name: str, text: str) -> None:
    for scenario in SCENARIOS.values():
        if name not in scenario.defaults:
            continue
        params = _parsed_or_refused(scenario.name, name, text)
        if params is None:
            continue
        value = params[name]
        assert not isinstance(value, float) or math.isfinite(value)
        if name == "loss":
            assert isinstance(value, float)
            assert 0 <= value < 1


@pytest.mark.parametrize(
    "changes",
    [
        {"loss": 1.0},
        {"loss": 2.0},
        {"loss": math.nan},
        {"min_latency_s": -1.0},
        {"min_latency_s": 0.5, "max_latency_s": 0.1},
        {"max_latency_s": math.inf},
        {"retransmit_s": 0.0},
        {"window_bytes": 0},
        {"latency_shape": "pareto"},
        {"bandwidth_bytes_per_s": 0.0},
    ],
)
def test_link_model_refuses_settings_that_hang_or_break_a_run(changes: dict[str, object]) -> None:
    with pytest.raises(LinkModelError) as caught:
        LinkModel(**changes)  # type: ignore[arg-type]
    assert caught.value.name in changes
    assert isinstance(caught.value, ConfigError)


def test_sim_network_refuses_a_bad_seed_or_model() -> None:
    with pytest.raises(LinkModelError):
        SimNetwork(seed="1")  # type: ignore[arg-type]
    with pytest.raises(LinkModelError):
        SimNetwork(seed=1, model={"loss": 0.1})  # type: ignore[arg-type]


def test_network_parameters_are_checked_when_built_in_code() -> None:
    with pytest.raises(ParameterError) as caught:
        NetworkParameters(loss=2.0)
    assert caught.value.name == "loss"
    with pytest.raises(ParameterError):
        NetworkParameters(relay_quota=-1)


def _trustnode(*args: str) -> list[str]:
    return [sys.executable, "-c", "from node.cli import main; main()", *args]


@pytest.mark.slow
def test_cli_refuses_loss_2_at_once_naming_it() -> None:
    started = time.monotonic()
    done = subprocess.run(
        _trustnode("simulate", "convergence", "--nodes", "10", "--param", "loss=2"),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "loss" in done.stderr
    assert time.monotonic() - started < 30


@pytest.mark.slow
def test_cli_refuses_every_swept_value_before_running() -> None:
    done = subprocess.run(
        _trustnode("simulate", "convergence", "--sweep", "loss=0.1,2", "--workers", "1"),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "loss" in done.stderr


@pytest.mark.slow
def test_ctrl_c_ends_a_simulation_with_one_line() -> None:
    # A shell's background job starts with SIGINT ignored, and Python keeps an
    # ignored SIGINT ignored: give the child the default, as a terminal would.
    process = subprocess.Popen(
        _trustnode("simulate", "convergence", "--nodes", "200"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    time.sleep(8)  # imports done (even on a loaded machine), the community forming
    assert process.poll() is None
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert err.strip().count("\n") == 0, err
    assert "interrupted" in err
    assert "Traceback" not in out + err
