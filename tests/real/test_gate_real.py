"""The gate in real mode: the room really waits on the event loop; counts shaped as in the simulator."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from engine.real import RealOptions, RedisTarget, run_real
from engine.scenario import Scenario
from sim.world import simulate

pytestmark = pytest.mark.real

# 2,000 buyers in 0.4 s over 2 instances (2,500/s each) against a gate of 500/s per instance
GATED = ["sale.stock=100000", "workload.buyers=2000", "workload.window=0.4", "workload.timeout=5", "redis.nodes=3",
         "app.instances=2", "pipeline.enabled=false", "gate.rate=500", "gate.burst=10", "gate.room=20",
         "gate.max_wait=0.02"]


def test_a_gate_in_real_mode_counts_like_the_simulator(cluster):
    scenario = Scenario().with_overrides(GATED)
    namespace = f"fstest-{uuid.uuid4().hex[:10]}"
    real = run_real(scenario, 5, "single_redis", RealOptions(RedisTarget(cluster.url), namespace=namespace))
    sim = simulate(scenario, 5, "single_redis")
    assert real.ok, real.violations
    r, s = real.summary, sim.summary
    requests = real.requests
    assert r["timeout"] == 0 and r["error"] == 0
    assert r["ok"] + r["gate_refused"] == 2000 == s["ok"] + s["gate_refused"]
    assert r["served"] == r["ok"] and r["sold"] == r["ok_qty"] == r["ok"]
    # each instance let through at most burst + rate x (the buyers' span + max_wait, + the send lag)
    span = float(requests["t_arrival"].max()) + 0.02 + r["send_lag_max"]
    ok = requests["outcome"] == "ok"
    per_instance = np.bincount(requests["id"][ok] % 2, minlength=2)
    assert (per_instance <= 10 + 500 * span + 1).all(), per_instance
    # the same shape as the simulation: about rate x window admitted, the rest refused by the gate
    assert abs(r["ok"] - s["ok"]) <= 0.1 * s["ok"], (r["ok"], s["ok"])
    assert r["gate_queued"] > 0 and r["gate_position_max"] == 20
    assert 0 < r["gate_wait_mean"] <= r["gate_wait_max"] <= 0.02 + 1e-6
    gated = requests[requests["outcome"] == "gated"]
    assert (gated["ops"] == 0).all()
    assert (gated["latency"] >= 0.02 - 1e-3).any()  # refused after really waiting max_wait in the room
