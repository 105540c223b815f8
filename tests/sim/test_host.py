"""One host under every server (host.cores): CPU work of Redis, the app tier and the DB shares its cores."""

from __future__ import annotations

import pytest

from engine.scenario import Scenario, ScenarioError
from sim import simulate
from sim.host import Host
from tests.sim.test_app_tier import OP, D, H, R, S, at_times, trace_scenario


class Clock:
    now = 0.0


def test_a_segment_takes_the_earliest_gap_on_any_core():
    clock = Clock()
    host = Host(2, clock)
    assert host.start(0.0, 1.0) == 0.0  # core 1
    assert host.start(2.0, 1.0) == 2.0  # core 1 again, later: [0,1) and [2,3) booked
    assert host.start(0.0, 1.0) == 0.0  # core 2
    assert host.start(0.5, 0.5) == 1.0  # both busy at 0.5; both free at 1: core 2 (fewer bookings ahead)
    assert host.start(0.5, 2.0) == 1.5  # core 1's gap [1, 2) is too short; core 2 is free from 1.5
    clock.now = 10.0
    assert host.start(10.0, 1.0) == 10.0  # the old bookings are forgotten
    assert host.busy == 6.5 and host.waited == 2 and host.wait_total == pytest.approx(1.5)
    with pytest.raises(ValueError):
        Host(0, clock)


def test_trace_one_core_serialises_app_and_redis():
    # One request alone on one core: nothing overlaps, so nothing waits: the same trace as without a host.
    alone = simulate(trace_scenario("host.cores=1"), seed=0, schedule=at_times(0.0)).requests["t_done"].tolist()
    assert alone == pytest.approx([H + R + OP + 2 * D + S + H], abs=1e-12)
    # Two requests at once. B's app segment is booked [H + R + OP, H + 2(R + OP)) when A's ends; A reaches
    # Redis at H + R + OP + D, inside it, and takes the core when B's segment is over.
    two = simulate(trace_scenario("host.cores=1"), seed=0, schedule=at_times(0.0, 0.0)).requests
    a_redis = H + R + OP + D
    b_segment_end = H + 2 * (R + OP)
    assert a_redis < b_segment_end
    assert two["t_done"].iloc[0] == pytest.approx(b_segment_end + S + D + H, abs=1e-12)


def closed_loop(*extra: str) -> dict:
    scenario = Scenario().with_overrides([
        "workload.kind=closed", "workload.users=64", "workload.think=0", "workload.duration=0.5",
        "workload.timeout=inf", "sale.stock=10000000", "pipeline.enabled=false", "redis.nodes=1",
        "redis.service.default=0.00005", "network.redis=0", "app.instances=1", "app.workers=1",
        "app.cpu_request=0.00005", *extra])
    return simulate(scenario, seed=0).summary


def test_a_saturated_host_serves_the_sum_of_the_costs_not_the_largest():
    own = closed_loop()["throughput"]  # app and Redis each have a CPU: 1 / 50 us each, in parallel
    shared = closed_loop("host.cores=1")  # one core for both: 1 / (50 + 50) us
    assert own == pytest.approx(20_000, rel=0.03)
    assert shared["throughput"] == pytest.approx(10_000, rel=0.03)
    assert shared["host_util"] == pytest.approx(1.0, abs=0.03) and shared["host_wait_mean"] > 0
    two = closed_loop("host.cores=2")["throughput"]  # enough cores: as if each had its own
    assert two == pytest.approx(own, rel=0.03)


def test_no_host_by_default_and_bad_cores_refused():
    assert Scenario().host.cores == 0
    assert "host_util" not in closed_loop()
    with pytest.raises(ScenarioError, match="host.cores"):
        Scenario().with_overrides(["host.cores=-1"])
    assert closed_loop("host.cores=3")["host_wait_max"] == 0.0
