"""The sync pipeline in the simulator: drain, reconcile, faults, trigger traces.

After the pipeline drains, DB deducted = Redis sold = sum of the distinct
detail records, whatever the broker does (duplicates, reordering, lost
publishes, redelivery), and no record is applied twice.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine.scenario import Scenario, ScenarioError
from engine.workload import Schedule
from sim import simulate

SMALL = ["sale.stock=1500", "workload.buyers=6000", "workload.window=0.5", "workload.qty={low=1, high=3}"]
FAULTS = {
    "clean": [],
    "duplicates": ["pipeline.duplicate=0.5"],
    "reordering": ["pipeline.reorder=0.5", "pipeline.reorder_delay=0.2", "pipeline.consumers=4"],
    "lost_publishes": ["pipeline.loss=0.4"],
    "redelivery": ["pipeline.ack_timeout=0.001", "pipeline.consumers=3"],  # acks come too late: redelivered
    "everything": ["pipeline.duplicate=0.3", "pipeline.reorder=0.3", "pipeline.loss=0.3",
                   "pipeline.ack_timeout=0.003", "pipeline.consumers=3", "pipeline.threshold=20",
                   "pipeline.batch_size=7"],
}


# sharded: 4 partitions on 2 nodes, 200 units pre-allocated each, refilled from the pool
# (so the DB ledger sees injections) and stranded units returned at the end (releases)
SHARDED = ["redis.nodes=2", "sharded.partitions=4", "sharded.preallocation=200", "sharded.subdomain_size=100",
           "sharded.threshold=20", "sharded.injection=60", "sharded.return_stranded=true"]
STRATEGIES = ("single_redis", "sharded")


def run(overrides, strategy="single_redis", seed=3):
    extra = SHARDED if strategy == "sharded" else []
    return simulate(Scenario().with_overrides([*SMALL, *extra, *overrides]), seed=seed, strategy=strategy)


def assert_reconciled(s):
    assert s["sync_differences"] == 0
    assert s["sold"] > 0
    assert s["recon_db_deducted"] == s["sold"] == s["recon_redis_sold"] == s["recon_detail_qty"] == s["recon_db_detail_qty"]
    assert s["recon_db_detail_rows"] == s["recon_detail_records"] == s["sync_records"]  # each record once in the DB
    assert s["sync_applied_twice"] == 0
    assert s["recon_db_pool"] + s["recon_db_preallocated"] + s["recon_db_deducted"] == s["initial"]
    assert s["sync_backlog_end"] == 0 and s["violations"] == 0


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("fault", list(FAULTS))
def test_db_matches_redis_after_drain(fault, strategy):
    s = run(FAULTS[fault], strategy).summary
    assert_reconciled(s)
    assert s["sold"] == s["ok_qty"]  # every OK buyer's units, and only those
    if fault in ("duplicates", "everything"):
        assert s["mq_duplicated"] > 0 and s["sync_duplicates_suppressed"] > 0 and s["sync_duplicate_batches"] > 0
    if fault in ("lost_publishes", "everything"):
        assert s["mq_lost"] > 0 and s["mq_unconfirmed"] == s["mq_lost"]
    if fault in ("reordering", "everything"):
        assert s["mq_reordered"] > 0
    if fault in ("redelivery", "everything"):
        assert s["mq_redelivered"] > 0 and s["sync_redeliveries"] > 0 and s["sync_duplicates_suppressed"] > 0


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_reordering_really_reorders_applies(strategy):
    r = run(FAULTS["reordering"], strategy)
    def order(kind):
        events = r.events[r.events["kind"] == kind].sort_values("t", kind="stable")
        return [(row.part, row.batch) for row in events.itertuples()]

    published, applied = order("sync_publish"), order("sync_apply")
    assert sorted(published) == sorted(applied) and published != applied  # a later batch committed first
    assert_reconciled(r.summary)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_batch_lost_for_good_is_resent_by_sync_status(strategy):
    # one unconfirmed publish and the producer gives up; the periodic trigger finds the batch
    # still 'sent' after resend_after and sends it again
    s = run(["pipeline.loss=0.5", "pipeline.publish_attempts=1", "pipeline.resend_after=0.5", "pipeline.period=0.2"],
            strategy, seed=1).summary
    assert s["sync_trigger_resend"] > 0 and s["mq_given_up"] > 0 and s["mq_unconfirmed"] == s["mq_lost"]
    assert_reconciled(s)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_slow_batch_resent_too_early_is_suppressed_as_duplicate(strategy):
    s = run(["pipeline.resend_after=0.02", "pipeline.period=0.05", "pipeline.delivery=0.1"], strategy).summary
    assert s["sync_trigger_resend"] > 0 and s["sync_duplicates_suppressed"] > 0
    assert_reconciled(s)


def test_write_reduction_and_lag_are_reported():
    s = run([]).summary
    assert s["db_txn"] == s["mq_batches"] - s["sync_duplicate_batches"] == s["mq_delivered"]
    assert s["db_write_reduction"] == pytest.approx(s["sync_records"] / s["db_txn"])
    assert s["db_write_reduction"] > 50  # threshold 100: most batches are full
    assert 0 < s["sync_lag_p50"] <= s["sync_lag_p99"] <= s["sync_lag_max"] <= 1.1  # period 1 s bounds the lag
    assert s["db_sync_txn_per_s"] > 10 * s["db_txn_per_s"]


def test_same_seed_same_pipeline():
    a, b = run(FAULTS["everything"]).summary, run(FAULTS["everything"]).summary
    assert {k: v for k, v in a.items() if k.startswith(("sync", "mq", "db", "recon"))} == \
        {k: v for k, v in b.items() if k.startswith(("sync", "mq", "db", "recon"))}


def test_sharded_ledger_saw_injections_and_returns():
    r = run([], "sharded")
    s = r.summary
    assert s["injections"] > 0 and s["retired"] > 0 and s["stranded"] == 0
    assert_reconciled(s)
    # the DB's pool and pre-allocated stock are where Redis says the unsold units are
    holders = r.inventory.holders
    # stranded units went back through the pool (and on to live partitions, to be sold); the DB agrees
    assert s["returned_units"] > 0 and s["recon_db_pool"] == holders["pool"]
    assert s["recon_db_preallocated"] == sum(v for k, v in holders.items() if k != "pool")


# the end game of sold-out sales 19 and 32 (experiments/soldout_sales.py, gathering on), small: sub-domains of
# 10 units, buyers asking 3-4, stranded pieces gathered into the anchor; a slow DB commit keeps the ordered
# ledger moves behind the MQ updates, so the anchor's sales reach the DB before its top-ups do
GATHERING = ["redis.nodes=2", "sale.stock=933", "workload.buyers=800", "workload.window=0.5",
             "workload.qty={low=3, high=4}", 'redis.service.default={kind="lognormal", mean=0.001, cv=0.3}',
             "sharded.policy=p2c", "sharded.partitions=8", "sharded.subdomain_size=10", "sharded.threshold=3",
             "sharded.preallocation=20", "sharded.injection=7", "sharded.return_stranded=true",
             'db.commit={kind="deterministic", mean=0.005}', "pipeline.period=0.1"]


@pytest.mark.parametrize("seed", [0, 1])
def test_gathered_releases_are_not_refused_while_the_anchor_is_ahead_of_its_preallocations(seed):
    """A retired partition's release was checked against the product's pre-allocated figure, the sum
    over partitions, which the anchor's early MQ updates had pushed below the units released: the DB
    refused the release, then the anchor's pre-allocation (the pool lacked the units)."""
    r = simulate(Scenario().with_overrides(["strategy=sharded", *GATHERING]), seed=seed)
    s = r.summary
    assert s["retired"] > 0 and s["returned_units"] > 0
    assert s["sync_ledger_failures"] == 0 and r.violations == []
    assert_reconciled(s)
    holders = r.inventory.holders  # the DB's pool and pre-allocated stock are where Redis says the units are
    assert s["recon_db_pool"] == holders["pool"]
    assert s["recon_db_preallocated"] == sum(v for k, v in holders.items() if k != "pool")


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_pipeline_off_writes_no_details(strategy):
    s = run(["pipeline.enabled=false"], strategy).summary
    assert "sync_records" not in s and "mq_lost" not in s and s["violations"] == 0


# --- trigger traces ------------------------------------------------------------
def trace(threshold, period, batch_size, times):
    scenario = Scenario().with_overrides([
        "sale.stock=12", f"pipeline.threshold={threshold}", f"pipeline.period={period}",
        f"pipeline.batch_size={batch_size}", "network.redis=0.0001", "redis.service.default=0.00001",
        "pipeline.delivery=0.001",
    ])
    times = np.asarray(times, dtype=float)
    result = simulate(scenario, seed=0, schedule=Schedule(times, np.ones(len(times), dtype=np.int64)))
    published = result.events[result.events["kind"] == "sync_publish"]
    return result, [(row.trigger, int(row.size), row.t) for row in published.itertuples()]


def test_count_and_periodic_triggers_fire_as_configured():
    # 12 buyers 1 ms apart take the 12 units, a 13th comes at 0.25 s (refused: sold out)
    result, batches = trace(threshold=5, period=0.1, batch_size=100, times=[*(0.001 * np.arange(12)), 0.25])
    assert [(trigger, size) for trigger, size, _ in batches] == [("count", 5), ("count", 5), ("periodic", 2)]
    (_, _, t5), (_, _, t10), (_, _, tp) = batches
    # the count trigger fires right after the 5th / 10th deduction (sent at 4 ms / 9 ms):
    # hop + service + hop for the deduction, hop + service + hop for the collect
    assert t5 == pytest.approx(0.004 + 2 * 0.00021, abs=1e-6)
    assert t10 == pytest.approx(0.009 + 2 * 0.00021, abs=1e-6)
    # the periodic trigger fires at period (its collect costs one round trip)
    assert tp == pytest.approx(0.1 + 0.00021, abs=1e-6)
    assert result.summary["sync_trigger_drain"] == 0
    assert_reconciled(result.summary)


def test_count_trigger_splits_into_batches_of_batch_size():
    # a flush goes on until a collect finds fewer than batch_size records: a collect cycle
    # (round trip + publish confirm) takes 0.71 ms and a buyer comes every 1 ms, so the first
    # flush, started at the 5th record, also takes the 6th and 7th; the 12th starts the second
    _, batches = trace(threshold=5, period=10.0, batch_size=2, times=[*(0.001 * np.arange(12)), 0.25])
    assert [(trigger, size) for trigger, size, _ in batches] == [("count", n) for n in (2, 2, 2, 1, 2, 2, 1)]
    assert [t for _, _, t in batches][:4] == pytest.approx([0.00442, 0.00513, 0.00584, 0.00655], abs=1e-6)


def test_periodic_trigger_alone():
    # buyers at 5, 15, ..., 115 ms; the trigger fires at 50, 100, 150 ms and takes what is pending
    _, batches = trace(threshold=1000, period=0.05, batch_size=100, times=[*(0.005 + 0.01 * np.arange(12)), 0.3])
    assert [(trigger, size) for trigger, size, _ in batches] == [("periodic", 5), ("periodic", 5), ("periodic", 2)]


@pytest.mark.parametrize(("assignment", "message"), [
    ("pipeline.threshold=0", "pipeline.threshold must be >= 1"),
    ("pipeline.loss=1", "pipeline.loss must be < 1"),
    ("pipeline.duplicate=1.5", "pipeline.duplicate must be in [0, 1]"),
    ("pipeline.period=0", "pipeline.period must be > 0"),
])
def test_bad_pipeline_settings_are_one_line_errors(assignment, message):
    with pytest.raises(ScenarioError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Scenario().with_overrides([assignment])
