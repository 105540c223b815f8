"""Faults beyond a Redis node's own: a network partition, an MQ outage, a consumer crash (docs/faults.md)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.fields import ScenarioError
from engine.scenario import Scenario
from sim import simulate

AT = 0.05
# one node, no delays, 10 us scripts, 400 one-unit buyers over 0.2 s for 1,000 units: nothing sells out
BASE = ("strategy=single_redis", "sale.stock=1000", "workload.buyers=400", "workload.window=0.2", "redis.nodes=1",
        "network.redis=0.0", "redis.service={default={kind='deterministic', mean=1e-5}}", "pipeline.threshold=10",
        "faults.f.at=0.05")


def run(*overrides: str, seed: int = 1):
    return simulate(Scenario().with_overrides([*BASE, *overrides]), seed)


def test_partition_delays_packets_to_the_first_tcp_retransmission_after_it():
    result = run("faults.f.kind='partition'", "faults.f.duration=0.03", "workload.timeout=0.5", "app.instances=2",
                 "app.routing='round_robin'")
    requests = result.requests
    cut = requests[(requests["t_arrival"] >= AT) & (requests["t_arrival"] < AT + 0.03)]
    on_0 = cut[cut["id"] % 2 == 0]  # round robin: even ids go to instance 0, the partitioned one
    on_1 = cut[cut["id"] % 2 == 1]
    assert len(on_0) > 0 and len(on_1) > 0
    # sent at t, dropped, retransmitted at t + 200 ms (already after the partition's end): latency 200 ms + S
    assert np.allclose(on_0["latency"], 0.2 + 1e-5)
    assert np.allclose(on_1["latency"], 1e-5)  # the other instance is not cut off
    assert result.summary["error"] == 0 and result.summary["lost_acknowledged"] == 0
    assert result.faults.iloc[0]["target"] == "instance 0 <-> node 0"


def test_partition_longer_than_the_client_timeout_times_requests_out():
    result = run("faults.f.kind='partition'", "faults.f.duration=0.03", "workload.timeout=0.1", "app.instances=1")
    requests = result.requests
    cut = requests[(requests["t_arrival"] >= AT) & (requests["t_arrival"] < AT + 0.03)]
    assert len(cut) > 0 and (cut["outcome"] == "timeout").all()
    # the deductions still happened on the node (a retransmitted command is served): sold, not acknowledged
    assert result.summary["sold"] == result.summary["acknowledged_units"] + int(cut["qty"].sum())


def test_mq_outage_delays_the_sync_and_loses_nothing():
    plain = run("faults.f.kind='mq_outage'", "faults.f.duration=0.1", "faults.f.at=10")  # never fires
    result = run("faults.f.kind='mq_outage'", "faults.f.duration=0.1")
    s, p = result.summary, plain.summary
    assert s["mq_unconfirmed"] > 0 == p["mq_unconfirmed"]  # publishes during the outage were retried
    assert s["sync_lag_max"] > 0.1 - 0.01 > p["sync_lag_max"]  # records waited for the broker
    assert s["recon_db_deducted"] == s["sold"] == 400 and s["sync_differences"] == 0
    assert result.violations == [] and result.broken_by_fault == []


def test_consumer_crash_before_ack_redelivers_the_batch_and_the_db_stays_right():
    result = run("faults.f.kind='consumer_crash'", "faults.f.instance=1", "faults.f.duration=0.1")
    s = result.summary
    row = result.faults.iloc[0]
    assert row["target"] == "consumer 1" and "consumer-1 died before acknowledging" in row["note"]
    assert row["t_recovered"] == pytest.approx(row["t_fire"] + 0.1, abs=0.05)
    assert s["mq_redelivered"] >= 1 and s["sync_duplicates_suppressed"] > 0  # applied once only
    assert s["recon_db_deducted"] == s["sold"] and s["sync_applied_twice"] == 0 and s["sync_differences"] == 0
    assert result.violations == [] and result.broken_by_fault == []


def test_mq_faults_need_the_pipeline():
    with pytest.raises(ScenarioError, match="async pipeline"):
        run("faults.f.kind='mq_outage'", "faults.f.duration=0.1", "pipeline.enabled=false")
    with pytest.raises(ScenarioError, match="consumer"):
        run("faults.f.kind='consumer_crash'", "faults.f.instance=5")


APP = ("faults.f.kind='app_crash'", "faults.f.instance=1", "faults.f.duration=0.05", "app.instances=2",
       "app.routing='round_robin'", "network.redis=0.0005")


def test_app_crash_errors_its_requests_and_restarts_empty():
    result = run(*APP)
    requests, s = result.requests, result.summary
    on_1 = requests[requests["id"] % 2 == 1]
    in_flight = on_1[(on_1["t_arrival"] < AT) & (on_1["t_arrival"] > AT - 0.001)]  # a 1 ms round trip
    refused = on_1[(on_1["t_arrival"] > AT) & (on_1["t_arrival"] < AT + 0.05)]
    after = on_1[on_1["t_arrival"] > AT + 0.05]
    assert len(in_flight) > 0 and (in_flight["outcome"] == "error").all()
    assert np.allclose(in_flight["t_done"], AT)  # answered when the instance died
    assert len(refused) > 0 and (refused["outcome"] == "error").all()
    assert np.allclose(refused["latency"], 0.0, atol=1e-12)
    assert len(after) > 0 and (after["outcome"] == "ok").all()
    assert result.faults.iloc[0]["requests_errored"] == s["error"] == len(in_flight) + len(refused)
    # the deductions of the requests in flight happened: sold, but their buyers were told error
    sent = in_flight[in_flight["t_arrival"] < AT - 0.0005]  # their command had reached Redis
    assert s["sold_unacknowledged"] == s["sold"] - s["acknowledged_units"] >= len(sent) > 0
    assert result.violations == []


def test_app_crash_forgets_the_sold_out_flag():
    # 100 units, sold out long before the crash: instance 1 refuses locally (no Redis op) until it dies;
    # restarted empty, its first buyer goes to Redis again to learn the sale is over
    at = 0.15
    result = run(*APP, "sale.stock=100", f"faults.f.at={at}", "faults.f.duration=0.02")
    requests = result.requests
    on_1 = requests[requests["id"] % 2 == 1]
    before = on_1[(on_1["t_arrival"] > at - 0.02) & (on_1["t_arrival"] < at)]
    after = on_1[on_1["t_arrival"] > at + 0.02]
    assert len(before) > 0 and (before["ops"] == 0).all()
    assert after["ops"].iloc[0] == 1 and after["outcome"].iloc[0] == "sold_out" and (after["ops"].iloc[1:] == 0).all()
    on_0 = requests[(requests["id"] % 2 == 0) & (requests["t_arrival"] > at)]
    assert (on_0["ops"] == 0).all()  # instance 0 never forgot


def test_app_crash_where_its_memory_is_not_modelled_is_refused():
    with pytest.raises(ScenarioError, match="registry"):
        run(*APP, "strategy=sharded")
    with pytest.raises(ScenarioError, match="transaction"):
        run(*APP, "strategy=db_conditional")



@pytest.mark.parametrize("instance", [0, 1])
def test_app_crash_with_the_app_tier_leaves_the_pipeline_service_running(instance):
    # with CPU costs each instance runs on its own CPU and the pipeline's triggers and consumers on the
    # pipeline service's: a crash of any instance leaves the sync running, and the DB ends up right
    result = run(*APP, f"faults.f.instance={instance}", "app.cpu_op={kind='deterministic', mean=2e-5}",
                 "app.cpu_request={kind='deterministic', mean=2e-5}")
    s = result.summary
    assert s["error"] == result.faults.iloc[0]["requests_errored"] > 0
    assert s["recon_db_deducted"] == s["sold"] and s["sync_differences"] == 0
    assert result.violations == [] and result.broken_by_fault == []
    on_k = result.requests[result.requests["id"] % 2 == instance]
    assert (on_k[on_k["t_arrival"] > AT + 0.05]["outcome"] == "ok").all()
