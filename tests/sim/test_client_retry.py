"""Client retries with an idempotency key (issue #14 item 3): ``workload.retry``.

A buyer whose request times out (or errs) sends it again after ``workload.backoff``,
with the same request id. single_redis deducts through ``deduct_once``: a request id
seen before gets its first reply back, so a retry never deducts twice, even when the
first attempt's deduction landed after the client gave up. The audit hash counts the
deductions per id (read at drain: ``duplicate_deductions``). Without the key
(``SingleRedis.keyed = False``: every attempt deducts) the same sale sells units twice.
"""

from __future__ import annotations

import pytest

from engine.counter.strategy import SingleRedis
from engine.fields import ScenarioError
from engine.scenario import Scenario
from engine.strategies import STRATEGIES
from sim.cli import main
from sim.world import simulate

# A slow, random hop to Redis (exponential, mean 1 ms) and a 4 ms timeout: some buyers give up while
# their deduction is still on its way, or its reply is; they retry.
LOSSY = ["workload.buyers=3000", "workload.window=0.1", "sale.stock=2000", "sale.soldout_flag=false",
         "network.redis={kind='exponential', mean=0.001}", "workload.timeout=0.004", "workload.retry=3"]


@pytest.mark.parametrize("pipeline", [True, False])
def test_a_retried_deduction_returns_the_first_outcome_and_never_deducts_twice(pipeline):
    scenario = Scenario().with_overrides([*LOSSY, f"pipeline.enabled={str(pipeline).lower()}"])
    result = simulate(scenario, seed=1)
    s = result.summary
    assert s["retried_buyers"] > 100 and s["client_retries"] >= s["retried_buyers"]
    assert s["duplicate_deductions"] == 0
    # every unit sold was acknowledged to the buyer it was sold to: the late deductions were replayed
    assert s["sold"] == 2000 and s["ok_qty"] == s["sold"]
    assert result.violations == []
    requests = result.requests
    assert (requests["outcome"] == "ok").sum() == 2000 and len(requests) == 3000


@pytest.mark.parametrize("pipeline", [True, False])
def test_without_the_key_a_retry_deducts_again(pipeline, monkeypatch):
    monkeypatch.setattr(SingleRedis, "keyed", False)
    scenario = Scenario().with_overrides([*LOSSY, f"pipeline.enabled={str(pipeline).lower()}"])
    s = simulate(scenario, seed=1).summary
    assert s["duplicate_deductions"] > 50
    # sold = (request ids that deducted) + duplicates, and only some of those ids heard "ok"
    assert s["sold"] == 2000 and s["ok_qty"] <= s["sold"] - s["duplicate_deductions"] < s["sold"]


def test_closed_loop_users_retry_too():
    scenario = Scenario().with_overrides([*LOSSY, "workload.kind='closed'", "workload.users=50",
                                          "workload.duration=0.3", "sale.stock=100000"])
    s = simulate(scenario, seed=2).summary
    assert s["retried_buyers"] > 10 and s["duplicate_deductions"] == 0
    assert s["ok_qty"] == s["sold"]


def test_no_retry_no_figures_and_the_same_arrivals():
    plain = Scenario().with_overrides(LOSSY[:-1])
    s = simulate(plain, seed=1).summary
    assert "client_retries" not in s and "duplicate_deductions" not in s
    retried = simulate(plain.with_overrides(["workload.retry=2"]), seed=1)
    first = simulate(plain, seed=1)
    assert len(retried.requests) == len(first.requests)
    assert (retried.requests["t_arrival"].values == first.requests["t_arrival"].values).all()


@pytest.mark.parametrize("name", [n for n in STRATEGIES if n != "single_redis"])
def test_strategies_without_an_idempotency_key_refuse_retries(name):
    scenario = Scenario().with_overrides(["workload.retry=1", f"strategy='{name}'"])
    with pytest.raises(ScenarioError, match=rf"workload.retry > 0: {name} cannot deduct a retried request only "
                                            r"once \(no idempotency key\); strategies that can: single_redis"):
        simulate(scenario, seed=0)


def test_the_command_line_refuses_retries_where_they_are_not_supported(capsys):
    assert main(["run", "--strategy", "sharded", "--set", "workload.retry=1", "--set", "workload.buyers=100"]) == 2
    assert main(["run", "--real", "--set", "workload.retry=1"]) == 2
    assert main(["run", "--set", "workload.retry=-1"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert "sharded cannot deduct a retried request only once" in err[0]
    assert "simulated only" in err[1]
    assert err[2] == "flashsim: error: workload.retry must be >= 0 (got -1)"


def test_buyers_answered_with_an_error_by_a_crashed_app_retry_without_a_second_deduction():
    scenario = Scenario().with_overrides([
        "workload.buyers=3000", "workload.window=0.1", "sale.stock=2000", "sale.soldout_flag=false",
        "workload.timeout=0.02", "workload.retry=2", "redis.nodes=1",
        "faults.c={kind='app_crash', at=0.03, instance=1, duration=0.01}"])
    s = simulate(scenario, seed=1).summary
    assert s["retried_buyers"] > 20 and s["duplicate_deductions"] == 0
    assert s["sold"] == 2000 and s["ok_qty"] <= s["sold"]
