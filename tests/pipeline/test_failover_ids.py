"""Detail ids after a Redis failover that lost the last writes (issue #12).

A failover to a replica that had not seen the last writes rolls a partition's
keys back: its stock, its sold counter, its detail records and the seq that
numbers them. Sales acknowledged before the failover may already be in the DB
under their detail ids; the sales made after it must get ids the DB has never
seen, or ``INSERT IGNORE`` drops them as duplicates and the DB under-counts.
The reference interpreter (engine.testing) runs the pipeline's own generators.
"""

from __future__ import annotations

import copy

import pytest

import engine.strategies  # noqa: F401  (registers every family's scripts)
from engine import scripts
from engine.counter.keys import StockKeys
from engine.pipeline import Consume, SyncPipeline
from engine.pipeline.config import PipelineConfig
from engine.pipeline.ledger import read_ledger
from engine.pipeline.sync import DRAIN
from engine.sharded.keys import PartitionKeys
from engine.testing import Reference

STOCK = 20


def sync_everything(ref: Reference, pipeline: SyncPipeline, tag: str) -> None:
    """Flush the partition and apply every message (what the triggers and consumers do, serially)."""
    ref.run(pipeline.flush(tag, DRAIN))

    def consume_all():
        while (msg := (yield Consume(pipeline.topic, "consumer-0", 0.0))) is not None:
            yield from pipeline.consume(msg)

    ref.run(consume_all())
    ref.run_spawned()  # the detail_applied marks


def sell(ref: Reference, pipeline: SyncPipeline, counter: StockKeys, n: int) -> int:
    return sum(ref.run(pipeline.deduct(counter, 1)) >= 0 for _ in range(n))


def db_figures(ref: Reference) -> tuple[int, int]:
    ledger, rows, _qty = ref.run(read_ledger("sku42"))
    return ledger.deducted, rows


def test_sales_after_a_failover_that_lost_synced_records_all_reach_the_db():
    ref = Reference()
    counter = StockKeys("t", "sku42")
    pipeline = SyncPipeline(PipelineConfig(threshold=10_000), "sku42", "t")
    pipeline.add_partition(counter)
    scripts.get("init_stock").twin(ref.store, (counter.stock, counter.sold), (STOCK,))
    ref.run(pipeline.setup(STOCK, [("sku42", STOCK)]))

    sold = sell(ref, pipeline, counter, 3)
    replica = copy.deepcopy(ref.store)  # what the replica holds when the master dies
    sold += sell(ref, pipeline, counter, 2)  # acknowledged to the buyers...
    sync_everything(ref, pipeline, "sku42")  # ...and already in the DB
    assert db_figures(ref) == (5, 5)

    ref.store = replica  # failover: the replica is promoted, the last two sales are gone from Redis
    sold += sell(ref, pipeline, counter, 4)
    sync_everything(ref, pipeline, "sku42")

    assert sold == 9
    deducted, rows = db_figures(ref)
    assert (deducted, rows) == (sold, sold), "a sale made after the failover was dropped as a duplicate"
    assert pipeline.stats.duplicates_suppressed == 3  # records 1-3 were still pending on the replica: sent again
    ids = set(ref.db.committed["detail"])
    assert len(ids) == sold and {"sku42:4", "sku42:5"} <= ids  # the lost sales keep their rows


@pytest.mark.parametrize("rollbacks", [1, 2, 3])
def test_repeated_rollbacks_never_repeat_an_id(rollbacks):
    """Each rollback (to any earlier snapshot) moves the partition to a new epoch: ids stay unique."""
    ref = Reference()
    counter = StockKeys("t", "sku42")
    pipeline = SyncPipeline(PipelineConfig(threshold=10_000), "sku42", "t")
    pipeline.add_partition(counter)
    scripts.get("init_stock").twin(ref.store, (counter.stock, counter.sold), (STOCK * 10,))
    ref.run(pipeline.setup(STOCK * 10, [("sku42", STOCK * 10)]))
    snapshots = [copy.deepcopy(ref.store)]
    sold = 0
    for k in range(rollbacks):
        sold += sell(ref, pipeline, counter, 3)
        snapshots.append(copy.deepcopy(ref.store))
        sold += sell(ref, pipeline, counter, 2)
        sync_everything(ref, pipeline, "sku42")
        ref.store = copy.deepcopy(snapshots[k % len(snapshots)])  # back to an earlier state
    sold += sell(ref, pipeline, counter, 5)
    sync_everything(ref, pipeline, "sku42")
    assert db_figures(ref) == (sold, sold)


def test_sharded_partition_deduct_detail_moves_to_a_new_epoch_after_a_rollback():
    """The sharded script's record step is the same: a counter below ``seen`` starts a new epoch."""
    part = PartitionKeys("t", "sku42:p0")
    pipeline = SyncPipeline(PipelineConfig(), "sku42", "t")
    detail = pipeline.add_partition(part)
    store: dict = {}
    scripts.get("partition_init").twin(store, part.init_keys(), ())
    store[part.a] = 10
    keys = (*part.deduct_keys(), *pipeline.detail_keys(detail.tag))
    twin = scripts.get("partition_deduct_detail").twin
    assert twin(store, keys, (1, 1, "0.1", 0))[-2:] == [1, 1]
    assert twin(store, keys, (1, 1, "0.2", 7))[-2:] == [8, 2]  # the caller saw seq 7: rolled back
    assert store[detail.pending] == ["1", "r7.8"]
    assert store[detail.meta]["epoch"] == "r7"
