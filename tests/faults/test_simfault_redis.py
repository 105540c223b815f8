"""Redis faults in the simulator, on exact small sales (docs/faults.md, "In the simulator").

The base sale: one Redis node, no network delay, a deterministic 10 us script, 100 units, 400 buyers
of one unit each over 0.2 s. With no delay anywhere a request's reply comes back the instant its
script ends, and the write reaches the replica ``redis.replica_lag`` after that: which writes a crash
loses can be read off the requests table.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from engine.fields import ScenarioError
from engine.model import Outcome
from engine.scenario import Scenario
from sim import simulate

S = 1e-5  # service time of every script
LAG = 0.01
AT = 0.05
TIMEOUT = 0.05
BASE = ("strategy=single_redis", "sale.stock=100", "workload.buyers=400", "workload.window=0.2", "redis.nodes=1",
        "network.redis=0.0", "redis.service={default={kind='deterministic', mean=1e-5}}", "pipeline.enabled=false",
        f"redis.replica_lag={LAG}", f"redis.node_timeout={TIMEOUT}", "faults.crash.kind='redis_crash'",
        f"faults.crash.at={AT}")


def run(*overrides: str, seed: int = 1):
    return simulate(Scenario().with_overrides([*BASE, *overrides]), seed)


def ok(requests: pd.DataFrame) -> pd.DataFrame:
    return requests[requests["outcome"] == "ok"]


def test_crash_with_replica_loses_exactly_the_acknowledged_writes_of_the_last_lag():
    result = run("redis.replicas=1")
    requests, summary = result.requests, result.summary
    acked = ok(requests)
    # the deductions that ended in the last LAG before the crash had not reached the replica
    in_window = acked[(acked["t_done"] > AT - LAG) & (acked["t_done"] <= AT)]
    expected = int(in_window["qty"].sum())
    assert expected > 0
    assert summary["lost_acknowledged"] == expected
    assert summary["lost_acknowledged_checked"] == expected  # the per-request check agrees
    assert summary["lost_acknowledged_requests"] == len(in_window)
    # the rolled-back units went back on sale and were sold again: promised beyond the stock
    assert summary["sold"] == 100 and summary["acknowledged_units"] == 100 + expected
    assert summary["oversold_promised"] == expected and summary["restored"] == expected
    row = result.faults.iloc[0]
    assert (row["kind"], row["target"], row["t_fire"]) == ("redis_crash", "node 0", AT)
    assert row["t_recovered"] == pytest.approx(AT + TIMEOUT)
    assert row["units_rolled_back"] == expected
    # no master for node_timeout: every request in that window that went to Redis (not refused by its
    # instance's sold-out flag) failed fast (hop 0: at once)
    during = requests[(requests["t_arrival"] > AT) & (requests["t_arrival"] < AT + TIMEOUT) & (requests["ops"] > 0)]
    assert len(during) > 0 and (during["outcome"] == "error").all()
    assert (during["latency"] == 0).all()
    assert summary["error"] == row["requests_errored"] == len(during)
    assert summary["strategy_errors"] == 0  # a fault's error is not the strategy's
    # the oversell is reported, with its size and cause, as broken by the fault: not a pass
    assert result.violations == []
    assert any(v.startswith("oversell: acknowledged") and f"oversold_promised {expected}" in v
               and "redis_crash 'crash'" in v for v in result.broken_by_fault)
    assert not result.ok


def test_crash_without_replica_restarts_empty_after_duration():
    result = run("faults.crash.duration=0.03")
    requests, summary = result.requests, result.summary
    before = ok(requests)
    assert (before["t_done"] <= AT).all()  # nothing sold after the crash: the restarted node is empty
    sold_before = int(before["qty"].sum())
    assert summary["sold"] == 0 and summary["remaining"] == 0
    assert summary["lost_acknowledged"] == sold_before == summary["acknowledged_units"]
    assert summary["vanished_units"] == 100  # neither sold nor held anywhere: conservation broken
    row = result.faults.iloc[0]
    assert row["t_recovered"] == pytest.approx(AT + 0.03)
    assert row["units_rolled_back"] == sold_before and row["units_vanished"] == 100 - sold_before
    after = requests[(requests["t_arrival"] > AT) & (requests["ops"] > 0)]
    assert len(after) > 0 and (after["outcome"] == "error").all()  # CLUSTERDOWN, then NO_STOCK_KEY from the empty node
    assert any(v.startswith("conservation:") for v in result.broken_by_fault)
    assert result.violations == []


def test_crash_without_replica_for_ever_fails_every_later_request_fast():
    result = run()  # duration = inf, redis.replicas = 0
    requests = result.requests
    after = requests[(requests["t_arrival"] > AT) & (requests["ops"] > 0)]
    assert len(after) > 0 and (after["outcome"] == "error").all() and (after["latency"] == 0).all()
    assert math.isnan(result.faults.iloc[0]["t_recovered"])
    assert result.faults.iloc[0]["requests_errored"] == len(after)


def test_crash_errors_the_commands_in_flight_one_hop_later():
    # a 1 ms hop each way: commands sent but not answered when the node dies see a connection reset
    result = run("redis.replicas=1", "network.redis=0.001")
    requests = result.requests
    row = result.faults.iloc[0]
    assert row["commands_lost"] > 0
    cut = requests[(requests["t_arrival"] <= AT) & (requests["outcome"] == "error")]
    assert len(cut) == row["commands_lost"]
    assert np.allclose(cut["t_done"], AT + 0.001)


def test_forced_failover_loses_the_lag_without_downtime():
    result = run("redis.replicas=1", "faults.crash.kind='redis_failover'", "faults.crash.force=true")
    acked = ok(result.requests)
    expected = int(acked[(acked["t_done"] > AT - LAG) & (acked["t_done"] <= AT)]["qty"].sum())
    assert expected > 0 and result.summary["lost_acknowledged"] == expected
    assert result.summary["error"] == 0
    assert result.faults.iloc[0]["t_recovered"] == AT


def test_manual_failover_loses_nothing_and_holds_the_node_for_the_catch_up():
    plain = run("redis.replicas=1", "faults.crash.kind='redis_failover'", "faults.crash.at=10")  # after the sale
    result = run("redis.replicas=1", "faults.crash.kind='redis_failover'")
    summary = result.summary
    assert summary["lost_acknowledged"] == 0 and summary["error"] == 0 and result.broken_by_fault == []
    row = result.faults.iloc[0]
    hold = row["t_recovered"] - AT
    done = plain.requests[plain.requests["ops"] > 0]["t_done"]
    last_script = float(done[done <= AT].max())  # the end of the last script the master ran before the failover
    assert hold == pytest.approx(last_script + LAG - AT)  # until the replica has it
    requests = result.requests
    held = requests[(requests["t_arrival"] > AT) & (requests["t_arrival"] < AT + hold) & (requests["ops"] > 0)]
    assert len(held) > 0 and (held["t_done"] >= AT + hold - 1e-12).all()
    assert plain.faults.empty  # a fault planned after the sale never fires


def test_failover_needs_a_replica():
    with pytest.raises(ScenarioError, match="needs a replica"):
        run("faults.crash.kind='redis_failover'")


def test_wait_keeps_acknowledged_writes_and_costs_the_replica_lag():
    result = run("redis.replicas=1", "redis.wait_replicas=1", "redis.wait_timeout=0.05")
    summary = result.summary
    assert summary["lost_acknowledged"] == 0 and summary["oversold_promised"] == 0
    acked = ok(result.requests)
    before = acked[acked["t_arrival"] < AT]
    assert np.allclose(before["latency"], S + LAG)  # the deduction, then WAIT until the replica has it
    assert (acked["ops"] == 2).all()  # EVAL + WAIT
    # once the replica was promoted there is no replica left (redis.replicas = 1): WAIT times out
    after = acked[acked["t_arrival"] > AT + TIMEOUT]
    assert len(after) > 0 and np.allclose(after["latency"], S + 0.05, atol=1e-4)
    assert result.faults.iloc[0]["writes_lost"] > 0  # unacknowledged writes were lost, and only those


def test_wait_shorter_than_the_lag_times_out_and_still_loses():
    result = run("redis.replicas=1", "redis.wait_replicas=1", "redis.wait_timeout=0.002")
    acked = ok(result.requests)
    assert np.allclose(acked[acked["t_arrival"] < AT]["latency"], S + 0.002)
    assert result.summary["lost_acknowledged"] > 0


def test_pause_holds_the_backlog():
    result = run("faults.crash.kind='redis_pause'", "faults.crash.duration=0.02")
    requests = result.requests
    assert result.summary["error"] == 0 and result.summary["lost_acknowledged"] == 0
    paused = requests[(requests["t_arrival"] > AT) & (requests["t_arrival"] < AT + 0.02) & (requests["ops"] > 0)]
    assert len(paused) > 0 and (paused["t_done"] >= AT + 0.02).all()
    assert result.faults.iloc[0]["t_recovered"] == pytest.approx(AT + 0.02)


def test_slow_node_multiplies_service_time_for_its_duration():
    # a light load (50 buyers/s), unlimited stock: no queue, so a request's latency is its service time
    result = run("faults.crash.kind='slow_node'", "faults.crash.duration=0.4", "faults.crash.factor=20",
                 "faults.crash.at=0.2", "workload.buyers=50", "workload.window=1.0", "sale.stock=1000")
    requests = result.requests
    inside = requests[(requests["t_arrival"] > 0.2) & (requests["t_arrival"] < 0.6)]
    outside = requests[(requests["t_arrival"] < 0.2) | (requests["t_arrival"] > 0.61)]
    assert len(inside) > 0 and len(outside) > 0
    assert inside["latency"].min() == pytest.approx(20 * S)
    assert np.allclose(outside["latency"], S)


def test_random_faults_come_from_the_faults_stream():
    a = run("redis.replicas=5", "faults.crash.rate=20", "faults.crash.at=0.0", seed=3)
    b = run("redis.replicas=5", "faults.crash.rate=20", "faults.crash.at=0.0", seed=3)
    c = run("redis.replicas=5", "faults.crash.rate=20", "faults.crash.at=0.0", seed=4)
    pd.testing.assert_frame_equal(a.faults, b.faults)
    assert len(a.faults) >= 2 and not a.faults["t_fire"].equals(c.faults["t_fire"])
    # the buyers are the same with or without faults (common random numbers)
    plain = simulate(Scenario().with_overrides([b for b in BASE if not b.startswith("faults.")]), 3)
    assert np.array_equal(plain.requests["t_arrival"], a.requests["t_arrival"])
    assert plain.faults.empty and plain.broken_by_fault == []


@pytest.mark.parametrize("overrides", [
    ("strategy=single_redis", "pipeline.enabled=true"),
    ("strategy=sharded",),
    ("strategy=sharded", "pipeline.enabled=true", "app.instances=2",
     "app.cpu_op={kind='deterministic', mean=2e-5}"),
])
def test_every_redis_strategy_survives_a_crash_and_accounts_for_it(overrides):
    result = run("redis.replicas=1", "sale.stock=300", "workload.buyers=1200", *overrides)
    summary = result.summary
    assert summary["lost_acknowledged"] == summary["lost_acknowledged_checked"]
    assert summary["lost_acknowledged"] == max(0, summary["acknowledged_units"] - summary["sold"])
    assert summary["error"] == result.faults["requests_errored"].sum()
    assert result.violations == []


def test_db_strategy_with_read_cache_sees_cache_errors_and_keeps_the_db_right():
    result = run("strategy=db_conditional", "db.read_cache=true", "workload.buyers=200", "workload.window=0.4",
                 "faults.crash.duration=0.05")
    summary = result.summary
    assert result.faults.iloc[0]["requests_errored"] > 0
    assert summary["error"] >= result.faults.iloc[0]["requests_errored"]
    assert summary["lost_acknowledged"] == 0  # the DB holds every sale: the cache only lost its copy
    assert result.violations == []


def test_faults_a_strategy_or_the_simulator_cannot_act_on_are_refused():
    with pytest.raises(ScenarioError, match="uses no Redis"):
        run("strategy=db_pessimistic")
    with pytest.raises(ScenarioError, match="not simulated yet"):
        run("faults.crash.kind='db_outage'", "faults.crash.duration=0.1")


def test_outcome_codes_match_the_loss_helper():
    assert Outcome.OK == 0  # sim.faults reads acknowledged requests by this code


def test_a_second_failover_without_a_replica_left_does_nothing():
    result = run("redis.replicas=1", "faults.crash.kind='redis_failover'", "faults.crash.force=true",
                 "faults.again.kind='redis_crash'", "faults.again.at=0.06", "faults.again.duration=inf",
                 "faults.late.kind='redis_failover'", "faults.late.at=0.15")
    rows = result.faults.set_index("name")
    # the forced failover keeps a replica (the old master rejoins); the crash promotes it; none is left after
    assert rows.loc["again", "t_recovered"] == pytest.approx(0.06 + TIMEOUT)
    assert "no replica left" in rows.loc["late", "note"]


def test_a_master_lost_without_replica_takes_the_whole_cluster_down_after_node_timeout():
    # sharded on 2 nodes, no replica: node 0 crashes at AT and restarts (empty) at AT + 0.1. Until
    # node_timeout has passed, node 1 still serves; then every node answers CLUSTERDOWN until node 0 is back.
    result = run("strategy=sharded", "redis.nodes=2", "sale.stock=1000", "faults.crash.duration=0.1")
    requests = result.requests
    on_1 = requests[(requests["node"] == 1) & (requests["ops"] > 0)]
    early = on_1[(on_1["t_arrival"] > AT) & (on_1["t_arrival"] < AT + TIMEOUT)]
    down = on_1[(on_1["t_arrival"] > AT + TIMEOUT) & (on_1["t_arrival"] < AT + 0.1)]
    assert len(early) > 0 and (early["outcome"] == "ok").all()
    assert len(down) > 0 and (down["outcome"] == "error").all()
    assert "whole cluster down" in result.faults.iloc[0]["note"]
