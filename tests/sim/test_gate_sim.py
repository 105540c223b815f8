"""The gate in the simulator: admission bounded by the bucket, refusals counted, invariants kept."""

from __future__ import annotations

import numpy as np
import pytest

from engine.scenario import Scenario
from sim.world import simulate

# 8,000 buyers in 0.5 s over 4 instances (4,000/s each) against a gate of 500/s per instance
BURST = ["workload.buyers=8000", "workload.window=0.5", "app.instances=4", "sale.stock=100000", "redis.nodes=1",
         "pipeline.enabled=false"]
GATE = ["gate.rate=500", "gate.burst=10"]


def outcomes(result) -> dict[str, int]:
    return {k: int(v) for k, v in result.requests["outcome"].value_counts().items() if v}


@pytest.mark.parametrize("strategy", ["single_redis", "db_conditional"])
def test_a_gate_holds_each_instance_to_its_rate(strategy):
    result = simulate(Scenario().with_overrides([*BURST, *GATE]), 1, strategy)
    s = result.summary
    requests = result.requests
    ok = requests["outcome"] == "ok"
    per_instance = np.bincount(requests["id"][ok] % 4, minlength=4)  # round robin: request i on instance i % 4
    assert (per_instance <= 10 + 500 * 0.5 + 1).all(), per_instance  # burst + rate x the window
    assert (per_instance >= 500 * 0.5 - 1).all(), per_instance  # and the gate let that much through
    assert s["gate_refused"] == outcomes(result)["gated"] == 8000 - s["ok"] - s["sold_out"] - s["timeout"]
    assert s["gate_refused"] > 5000 and s["gate_queued"] == 0 and s["gate_wait_max"] == 0
    assert s["served"] == s["ok"] + s["sold_out"]  # a refusal by the gate is not served
    assert (requests.loc[requests["outcome"] == "gated", "ops"] == 0).all()
    assert result.ok and s["oversold"] == 0, result.violations


def test_without_a_gate_nothing_changes():
    plain = simulate(Scenario().with_overrides(BURST), 1, "single_redis")
    assert "gated" not in outcomes(plain) and not any(k.startswith("gate_") for k in plain.summary)
    off = simulate(Scenario().with_overrides([*BURST, "gate.rate=0", "gate.room=5"]), 1, "single_redis")
    assert off.summary == plain.summary  # gate.rate=0: no gate, whatever the other keys say


def test_the_waiting_room_delays_then_admits_or_refuses_after_max_wait():
    scenario = Scenario().with_overrides([*BURST, *GATE, "gate.room=40", "gate.max_wait=0.05"])
    result = simulate(scenario, 1, "single_redis")
    s, requests = result.summary, result.requests
    gated = requests[requests["outcome"] == "gated"]
    # refused at once (room full) or after waiting max_wait in the room; nothing else
    assert np.isin(gated["latency"].round(9), [0.0, 0.05]).all()
    assert (gated["latency"] > 0).sum() > 0 and (gated["latency"] == 0).sum() > 0
    assert s["gate_queued"] > 0 and s["gate_position_max"] == 40
    assert 0 < s["gate_wait_mean"] <= s["gate_wait_max"] <= 0.05 + 1e-9
    # admitted buyers who waited: their latency includes the wait (up to max_wait) plus the round trip
    assert requests.loc[requests["outcome"] == "ok", "latency"].max() > 0.02
    ok = requests["outcome"] == "ok"
    per_instance = np.bincount(requests["id"][ok] % 4, minlength=4)
    assert (per_instance <= 10 + 500 * (0.5 + 0.05) + 1).all(), per_instance
    assert result.ok


def test_a_gated_refusal_costs_the_app_like_a_local_refusal():
    scenario = Scenario().with_overrides([
        "workload.buyers=3", "workload.window=0.000001", "app.instances=1", "gate.rate=1", "gate.burst=1",
        "network.client=0.001", "app.cpu_request=0.0002", "app.cpu_refusal=0.0001", "app.workers=8"])
    requests = simulate(scenario, 0, "single_redis").requests
    assert requests["outcome"].tolist() == ["ok", "gated", "gated"]
    assert requests["latency"].iloc[1:].to_numpy() == pytest.approx(2 * 0.001 + 0.0002 + 0.0001)


def test_closed_loop_users_meet_the_gate_too():
    scenario = Scenario().with_overrides([
        "workload.kind=closed", "workload.users=50", "workload.duration=0.5", "workload.think=0.005",
        "sale.stock=100000", "app.instances=2", "gate.rate=300", "gate.burst=5", "gate.room=10", "gate.max_wait=0.02"])
    result = simulate(scenario, 2, "db_pessimistic")
    s = result.summary
    assert s["ok"] <= 2 * (5 + 300 * (0.5 + 0.02 + 1.0))  # the last users may be admitted up to their timeout
    assert s["gate_refused"] > s["ok"] and s["gate_queued"] > 0
    assert s["ok"] + s["sold_out"] + s["timeout"] + s["error"] + s["gate_refused"] == s["requests"]
    assert result.ok
