"""The pipeline's generators driven by hand (no SimPy, no Redis): the exact ops they yield."""

from __future__ import annotations

import pytest

from engine.counter.keys import StockKeys
from engine.ops import Eval, Now, Sleep, Spawn
from engine.pipeline import Ack, Consume, Message, Publish, SyncPipeline
from engine.pipeline.config import PipelineConfig
from engine.sql import DbBegin, DbCommit, DbExec, DbRollback, SqlResult

COUNTER = StockKeys("t", "sku42")


def pipeline(**config) -> SyncPipeline:
    p = SyncPipeline(PipelineConfig(**config), "sku42", "t")
    p.add_partition(COUNTER)
    return p


def step(gen, reply=None):
    return gen.send(reply)


def finish(gen, reply=None):
    """Send the last reply; the generator must end: its return value."""
    try:
        op = gen.send(reply)
    except StopIteration as stop:
        return stop.value
    raise AssertionError(f"generator wanted more: {op!r}")


def test_deduct_writes_its_record_in_the_same_script_and_the_count_trigger_spawns_once():
    p = pipeline(threshold=2)
    keys = ("t:stock:{sku42}", "t:sold:{sku42}", "t:detail:{sku42}", "t:dpending:{sku42}", "t:dmeta:{sku42}")
    gen = p.deduct(COUNTER, 3)
    assert isinstance(next(gen), Now)
    assert step(gen, 0.5) == Eval("deduct_detail", keys, (3, "0.500000", 0))  # 0: no seq seen yet
    assert finish(gen, [7, 1, 1]) == 7  # remaining 7, record 1, one pending: below the threshold
    gen = p.deduct(COUNTER, 1)
    next(gen)
    assert step(gen, 0.6).args == (1, "0.600000", 1)  # the highest seq seen so far goes along
    spawn = step(gen, [6, 2, 2])  # two pending: the count trigger fires
    assert isinstance(spawn, Spawn)
    gen = p.deduct(COUNTER, 1)  # a third record while that flush runs: no second flush
    next(gen)
    step(gen, 0.7)
    assert finish(gen, [5, 3, 3]) == 5
    flush = spawn.gen
    collect = next(flush)
    assert isinstance(collect, Now)
    assert step(flush, 0.8) == Eval("detail_collect", keys[2:4] + ("t:dbatches:{sku42}", "t:dmeta:{sku42}"),
                                    ("0.800000", 200))
    assert isinstance(step(flush, [1, ["1", "3|0.500000|s", "2", "1|0.600000|s", "3", "1|0.700000|s"]]), Now)
    publish = step(flush, 0.81)
    assert publish == Publish("t:stock-sync:sku42", {"sku": "sku42", "part": "sku42", "batch": 1,
                                                     "records": [("1", 3, 0.5), ("2", 1, 0.6), ("3", 1, 0.7)]})
    assert step(flush, None) == publish  # no confirm: published again
    finish(flush, "1-0")  # confirmed; 3 < batch_size records: the partition was drained
    assert p.stats.unconfirmed == 1 and p.stats.published == 1 and p.stats.batches["count"] == 1
    assert "sku42" not in p._flushing


def test_periodic_trigger_sleeps_then_flushes_then_resends_stale_batches():
    p = pipeline(period=0.25, resend_after=2.0)
    gen = p.periodic("sku42")
    assert next(gen) == Sleep(0.25)
    assert isinstance(step(gen), Now)
    assert step(gen, 0.25).script == "detail_collect"
    assert isinstance(step(gen, []), Now)  # nothing pending
    stale = step(gen, 0.26)
    assert stale == Eval("detail_stale", ("t:detail:{sku42}", "t:dbatches:{sku42}"), ("0.260000", 2.0))
    assert isinstance(step(gen, [[4, ["9", "2|0.100000|s"]]]), Now)
    assert step(gen, 0.26).payload["batch"] == 4  # batch 4 goes out again, same records
    assert step(gen, "5-0") == Sleep(0.25)
    assert p.stats.batches["resend"] == 1


def test_consumer_applies_in_one_transaction_then_acks_then_marks():
    p = pipeline()
    msg = Message("1-0", {"sku": "sku42", "part": "sku42", "batch": 1, "records": [[1, 3, 0.5], [2, 1, 0.6]]})
    gen = p.consume(msg)
    assert next(gen) == DbBegin()
    insert = step(gen, "txn")
    assert insert.statement == "detail_insert_batch" and insert.params[:2] == ("sku42", "sku42")
    assert step(gen, SqlResult(affected=2)) == DbExec("txn", "ledger_apply", (4, 4, "sku42"))
    assert step(gen, SqlResult(affected=1)) == DbExec("txn", "part_apply", (4, 4, "sku42"))
    assert step(gen, SqlResult(affected=1)) == DbCommit("txn")
    assert isinstance(step(gen, None), Now)
    assert step(gen, 1.0) == Ack("t:stock-sync:sku42", "1-0")
    mark = step(gen, True)
    assert isinstance(mark, Spawn)
    assert next(mark.gen) == Eval("detail_applied", ("t:detail:{sku42}", "t:dbatches:{sku42}"), (1,))
    assert p.stats.lags == pytest.approx([0.5, 0.4]) and p.stats.txn == 1


def test_consumer_loop_waits_with_its_block_timeout():
    p = pipeline(poll=0.05)
    gen = p.consumer("c0")
    assert next(gen) == Consume("t:stock-sync:sku42", "c0", 0.05)
    assert step(gen, None) == Consume("t:stock-sync:sku42", "c0", 0.05)  # nothing came: ask again


def test_ledger_moves_are_written_in_order_by_one_task_and_a_refusal_is_counted():
    p = pipeline()
    spawn = next(p.move_later("sku42", 40))  # a pre-allocation: spawns the writer
    assert isinstance(spawn, Spawn)
    assert list(p.move_later("sku42", 15, preallocation=False)) == []  # queued behind it, no second writer
    writer = spawn.gen
    assert next(writer) == DbBegin()
    assert step(writer, "txn") == DbExec("txn", "ledger_preallocate", (40, 40, "sku42", 40))
    assert step(writer, SqlResult(affected=1)) == DbExec("txn", "part_preallocate", ("sku42", "sku42", 40, 40))
    assert step(writer, SqlResult(affected=1)) == DbCommit("txn")
    assert step(writer, None) == DbBegin()  # then the release, in order
    assert step(writer, "txn2") == DbExec("txn2", "ledger_release", (15, 15, "sku42"))
    assert step(writer, SqlResult(affected=1)) == DbExec("txn2", "part_release", (15, "sku42", 15))
    assert step(writer, SqlResult(affected=0)) == DbRollback("txn2")  # refused by the partition
    assert isinstance(step(writer, None), Now)
    finish(writer, 1.0)
    assert p.stats.ledger_failures == 1 and not p._mover
