"""SyncStats.merged: what several processes counted is one pipeline's figures (real mode's workers + service)."""

from __future__ import annotations

import math

from engine.pipeline.ledger import ApplyReport
from engine.pipeline.stats import SyncStats


def worker(tag: str, seqs: int) -> SyncStats:
    stats = SyncStats()
    for seq in range(1, seqs + 1):
        stats.saw_record(tag, seq)
    stats.batch_sent("count", seqs)
    return stats


def service(ids: list[str], times: list[float], now: float) -> SyncStats:
    stats = SyncStats()
    stats.applied(now, ApplyReport(tuple(ids), 0, len(ids)), times, 1)
    stats.drain_seconds = 0.25
    return stats


def test_app_workers_count_the_service_applies_and_the_figures_are_one_pipelines():
    a, b = worker("p0", 3), worker("p1", 2)
    s = service(["p0:1", "p0:2", "p0:3", "p1:1", "p1:2"], [0.1, 0.2, 0.3, 0.1, 0.2], 1.1)
    alone = [x.figures() for x in (a, b, s)]
    assert alone[0]["sync_backlog_end"] == 3 and math.isnan(alone[0]["sync_lag_p50"])  # why a sum is wrong
    fig = SyncStats.merged([a, b, s]).figures()
    assert fig["sync_records"] == 5 and fig["sync_backlog_end"] == 0
    assert fig["sync_lag_max"] == 1.0 and math.isclose(fig["sync_lag_p50"], 0.9)
    assert fig["mq_batches"] == 2 and fig["mq_batch_mean"] == 2.5 and fig["sync_drain_seconds"] == 0.25


def test_a_record_taken_as_new_by_two_processes_counts_as_applied_twice():
    one = service(["p0:1"], [0.1], 0.5)
    two = service(["p0:1"], [0.1], 0.6)
    assert SyncStats.merged([one]).applied_twice == 0
    assert SyncStats.merged([one, two]).applied_twice == 1
