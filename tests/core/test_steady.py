"""Steady-state latency: the summary's figures over the requests that arrive after ``report.warmup``."""

import math

import numpy as np
import pytest

from engine.model import Outcome
from engine.result import requests_frame, steady_figures
from engine.scenario import Scenario, ScenarioError
from sim.world import simulate


def _frame(t_arrival, latency, outcome):
    t_arrival = np.asarray(t_arrival, dtype=float)
    n = len(t_arrival)
    return requests_frame(t_arrival, t_arrival + np.asarray(latency, dtype=float), np.asarray(outcome),
                          np.ones(n, dtype=np.int64), np.zeros(n, dtype=np.int64), np.ones(n, dtype=np.int64))


def test_steady_figures_leave_out_the_warm_up():
    # a slow start (50 ms) then a fast steady state (1 ms): the warm-up must not weigh on the p99
    t = np.linspace(0, 1, 1000, endpoint=False)
    latency = np.where(t < 0.2, 0.05, 0.001)
    outcome = np.where(np.arange(1000) % 10 == 0, Outcome.SOLD_OUT, Outcome.OK)
    figures = steady_figures(_frame(t, latency, outcome), 0.2)
    assert figures["steady_requests"] == 800
    assert figures["steady_p99"] == pytest.approx(0.001)
    assert figures["steady_ok_p99"] == pytest.approx(0.001)
    assert np.percentile(latency, 99) == pytest.approx(0.05)  # what the whole run's p99 says


def test_steady_figures_without_requests_after_the_warm_up_are_nan():
    figures = steady_figures(_frame([0.0, 0.1], [0.01, 0.02], [Outcome.SOLD_OUT, Outcome.OK]), 0.5)
    assert figures["steady_requests"] == 0 and math.isnan(figures["steady_p99"]) and math.isnan(figures["steady_ok_p99"])
    only_refused = steady_figures(_frame([0.0, 0.6], [0.01, 0.02], [Outcome.OK, Outcome.SOLD_OUT]), 0.5)
    assert only_refused["steady_p99"] == pytest.approx(0.02) and math.isnan(only_refused["steady_ok_p99"])


def test_a_run_reports_them_only_with_a_warm_up():
    base = Scenario().with_overrides(["workload.kind=poisson", "workload.rate=20000", "workload.duration=0.1",
                                      "sale.stock=100000", "pipeline.enabled=false"])
    assert "steady_p99" not in simulate(base, seed=1).summary
    result = simulate(base.with_overrides(["report.warmup=0.05"]), seed=1)
    requests = result.requests
    after = requests[requests["t_arrival"] >= 0.05]
    assert 0 < result.summary["steady_requests"] == len(after) < len(requests)
    assert result.summary["steady_p99"] == pytest.approx(np.percentile(after["latency"], 99))


def test_warm_up_must_not_be_negative():
    with pytest.raises(ScenarioError, match="report.warmup must be >= 0"):
        Scenario().with_overrides(["report.warmup=-1"])
