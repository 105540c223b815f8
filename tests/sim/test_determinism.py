"""Same seed, same world; arrivals independent of the strategy (common random numbers)."""

import pandas as pd
import pytest

from engine.scenario import Scenario
from engine.streams import Streams
from engine.workload import open_loop_schedule
from sim import simulate

SMALL = Scenario().with_overrides([
    "workload.buyers=20000", "workload.window=0.2", "sale.stock=3000", "workload.qty={low=1, high=3}",
    "network.redis={kind='lognormal', mean=0.0002, cv=0.5}",
])


def test_same_seed_identical_frames():
    a, b = simulate(SMALL, seed=7), simulate(SMALL, seed=7)
    pd.testing.assert_frame_equal(a.requests, b.requests)
    pd.testing.assert_frame_equal(a.timeline, b.timeline)
    assert a.summary == b.summary


def test_other_seed_differs():
    a, b = simulate(SMALL, seed=7), simulate(SMALL, seed=8)
    assert not a.requests["t_arrival"].equals(b.requests["t_arrival"])


def test_arrivals_do_not_depend_on_the_rest_of_the_scenario():
    other_world = SMALL.with_overrides(["redis.nodes=4", "redis.service.default=0.001", "sale.stock=5"])
    x = open_loop_schedule(SMALL.workload, Streams(3))
    y = open_loop_schedule(other_world.workload, Streams(3))
    assert (x.times == y.times).all() and (x.qty == y.qty).all()
    a, b = simulate(SMALL, seed=3), simulate(other_world, seed=3)
    assert a.requests["t_arrival"].equals(b.requests["t_arrival"])
    assert a.requests["qty"].equals(b.requests["qty"])


@pytest.mark.parametrize("kind", ["burst", "poisson"])
def test_schedule_shapes(kind):
    s = Scenario().with_overrides([f"workload.kind={kind}", "workload.rate=5000", "workload.duration=2",
                                   "workload.buyers=10000", "workload.window=2"])
    t = open_loop_schedule(s.workload, Streams(0)).times
    assert (t[1:] >= t[:-1]).all() and t.min() >= 0 and t.max() < 2
    assert abs(len(t) - 10000) < 400


def test_ramp_puts_three_quarters_in_the_second_half():
    s = Scenario().with_overrides(["workload.shape=ramp", "workload.buyers=100000", "workload.window=2"])
    t = open_loop_schedule(s.workload, Streams(0)).times
    assert abs((t >= 1).mean() - 0.75) < 0.01


def test_invariants_hold_under_overload_with_jitter():
    # twice the node's capacity, no sold-out flag: the queue grows and buyers give up
    overload = SMALL.with_overrides(["workload.timeout=0.005", "sale.soldout_flag=false", "redis.service.default=0.00002"])
    r = simulate(overload, seed=11)
    assert r.violations == []
    assert r.summary["timeout"] > 0
    assert r.summary["ok_qty"] <= r.summary["sold"] <= SMALL.sale.stock
