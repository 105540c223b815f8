"""Every strategy meets every fault kind: it runs and accounts for it, or the scenario is refused clearly."""

from __future__ import annotations

import pytest

from engine.faults.config import KINDS
from engine.fields import ScenarioError
from engine.scenario import Scenario
from engine.strategies import STRATEGIES
from sim import simulate

BASE = ("sale.stock=300", "workload.buyers=900", "workload.window=0.3", "workload.timeout=0.3", "redis.nodes=1",
        "redis.replicas=1", "redis.node_timeout=0.05", "faults.f.at=0.1", "faults.f.duration=0.05",
        "faults.f.instance=1", "app.instances=2", "network.redis={kind='lognormal', mean=0.0002, cv=0.5}",
        "db.read_cache=true")
REFUSED = {  # (strategy prefix, kind) -> words of the refusal
    ("db_", "app_crash"): "transaction", ("sharded", "app_crash"): "registry",
    ("db_", "mq_outage"): "async pipeline", ("db_", "consumer_crash"): "async pipeline",
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_strategy_meets_fault(strategy, kind):
    scenario = Scenario().with_overrides([*BASE, f"strategy={strategy}", f"faults.f.kind='{kind}'"])
    words = "not simulated yet" if kind == "db_outage" else next(
        (w for (prefix, k), w in REFUSED.items() if strategy.startswith(prefix) and k == kind), None)
    if words is not None:
        with pytest.raises(ScenarioError, match=words):
            simulate(scenario, 2)
        return
    result = simulate(scenario, 2)
    s = result.summary
    assert len(result.faults) == 1 and s["faults_fired"] == 1
    assert s["lost_acknowledged"] == max(0, s["acknowledged_units"] - s["sold"])
    assert s["acknowledged_units"] == s["ok_qty"]
    assert result.violations == []  # what a fault broke is reported apart, with its cause
    assert s["broken_by_fault"] == len(result.broken_by_fault)


@pytest.mark.parametrize("strategy", ["single_redis", "sharded"])
def test_a_fault_that_never_fires_changes_nothing(strategy):
    # the faulty cluster draws exactly what the plain one does (service times, hops), in the same order
    common = [f"strategy={strategy}", "sale.stock=300", "workload.buyers=900", "workload.window=0.3",
              "redis.nodes=2", "network.redis={kind='lognormal', mean=0.0002, cv=0.5}", "app.instances=2",
              "app.cpu_op={kind='lognormal', mean=2e-5, cv=0.5}"]
    plain = simulate(Scenario().with_overrides(common), 5)
    faulty = simulate(Scenario().with_overrides([*common, "redis.replicas=1", "faults.f.kind='redis_crash'",
                                                 "faults.f.at=100"]), 5)
    assert faulty.faults.empty
    columns = ["t_arrival", "t_done", "outcome", "qty", "node", "ops"]
    assert plain.requests[columns].equals(faulty.requests[columns])
