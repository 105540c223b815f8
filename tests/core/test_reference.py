"""The serial reference interpreter (engine.testing) itself: what each op means there."""

from __future__ import annotations

import numpy as np
import pytest

from engine.counter.keys import StockKeys
from engine.model import Outcome, Request
from engine.ops import NOW, Eval, Sleep, Spawn
from engine.pipeline.ops import Ack, Consume, Message, Publish
from engine.scenario import Scenario
from engine.sql import DB_BEGIN, DB_SESSION, LOCK_WAIT_TIMEOUT, DbCommit, DbError, DbExec, DbRollback, SqlResult
from engine.strategies import strategy_class
from engine.tasks import TaskFailed, TaskKind
from engine.testing import CrossSlot, Reference, drive

KEYS = StockKeys("t", "sku42").all()


def test_eval_runs_the_twin_and_counts_a_round_trip():
    ref = Reference()

    def gen():
        created = yield Eval("init_stock", KEYS, (5,))
        left = yield Eval("deduct", KEYS, (2,))
        return created, left

    task = ref.start(gen())
    assert ref.run(task) == (1, 3) and task.ops == 2
    assert ref.store == {KEYS[0]: 3, KEYS[1]: 2} and ref.read(KEYS[1]) == 2
    assert ref.log == task.trace == [Eval("init_stock", KEYS, (5,)), Eval("deduct", KEYS, (2,))]


def test_keys_in_two_slots_are_a_crossslot_error_thrown_into_the_generator():
    ref = Reference()

    def gen():
        try:
            yield Eval("deduct", ("t:stock:{a}", "t:sold:{b}"), (1,))
        except CrossSlot as err:
            return str(err)

    assert ref.run(gen()).startswith("CROSSSLOT") and ref.store == {}


def test_clock_now_sleep_and_spawn():
    ref = Reference(t=10.0)
    seen = []

    def child():
        seen.append(("child", (yield NOW)))

    def parent():
        seen.append(("start", (yield NOW)))
        yield Sleep(0.5)
        seen.append(("slept", (yield NOW)))
        yield Spawn(child())
        seen.append(("spawned", (yield NOW)))

    task = ref.start(parent())
    ref.run(task)
    assert seen == [("start", 10.0), ("slept", 10.5), ("spawned", 10.5)]  # the spawn is queued, not run
    assert task.ops == 0  # Now, Sleep and Spawn are no round trips
    assert [t.kind for t in ref.live()] == [TaskKind.SPAWN]
    assert ref.run_spawned() == 1 and seen[-1] == ("child", 10.5) and not ref.live()


def test_failure_rule_a_request_errs_any_other_task_stops():
    ref = Reference()

    def broken():
        yield NOW
        raise ValueError("boom")

    assert ref.run(broken()) is Outcome.ERROR
    assert ref.run(broken()) is Outcome.ERROR
    assert ref.errors.figures() == {"strategy_errors": 2, "first_strategy_error": "ValueError: boom"}
    for kind in (TaskKind.SETUP, TaskKind.DRAIN, TaskKind.BACKGROUND, TaskKind.SPAWN):
        with pytest.raises(TaskFailed, match=f"{kind.value} task failed: ValueError: boom"):
            Reference().run(broken(), kind)


def test_stop_rule_ends_background_and_spawned_tasks_only():
    ref = Reference()

    def forever():
        while True:
            yield Sleep(1.0)

    tasks = {kind: ref.start(forever(), kind) for kind in TaskKind}
    for task in tasks.values():
        ref.step(task)
    ref.stop()
    assert {k for k, t in tasks.items() if t.finished} == {TaskKind.BACKGROUND, TaskKind.SPAWN}
    assert ref.step(tasks[TaskKind.REQUEST]) == Sleep(1.0)  # a request runs on to its end


def test_unknown_op_is_refused():
    def gen():
        yield "not an op"

    with pytest.raises(TypeError, match="no meaning for op"):
        Reference().run(gen())


# --- SQL --------------------------------------------------------------------------
def stock_row(ref: Reference, units: int = 10) -> None:
    def gen():
        yield DbExec(None, "create_stock")
        yield DbExec(None, "insert_stock", ("sku42", units))

    ref.run(gen(), TaskKind.SETUP)


def test_transactions_commit_roll_back_and_read_committed():
    ref = Reference()
    stock_row(ref)

    def buy(end):
        txn = yield DB_BEGIN
        row = yield DbExec(txn, "select_stock_for_update", ("sku42",))
        done = yield DbExec(txn, "deduct_stock", (2, 2, "sku42"))
        yield end(txn)
        return row, done

    row, done = ref.run(buy(DbRollback))
    assert row.first == (10, 0) and done.affected == 1  # stock, version and ref.read("db:stock:sku42:stock") == 10
    ref.run(buy(DbCommit))
    assert ref.read("db:stock:sku42:stock") == 8 and ref.read("db:stock:sku42:sold") == 2
    assert not ref.db.open and not ref.db.locks


def test_a_locked_row_waits_up_to_the_lock_wait_timeout_and_plain_reads_see_committed_data():
    ref = Reference(lock_wait_timeout=5.0)
    stock_row(ref)

    def holder(pause=0.0):
        txn = yield DB_BEGIN
        yield DbExec(txn, "deduct_stock", (3, 3, "sku42"))
        yield Sleep(pause)  # still holding the row here
        yield DbCommit(txn)

    def other():
        seen = yield DbExec(None, "select_stock", ("sku42",))  # MVCC read: not blocked
        first = yield DbExec(None, "deduct_if_enough", (1, 1, "sku42", 1))
        session = yield DB_SESSION
        second = yield DbExec(session, "deduct_if_enough", (1, 1, "sku42", 1))
        yield DbCommit(session)
        return seen, first, second

    hold = ref.start(holder())
    ref.step(hold)
    ref.step(hold)
    seen, first, second = ref.run(other())  # alone: nobody releases the row
    assert seen == SqlResult(((10, 0),)) and first == second == DbError(LOCK_WAIT_TIMEOUT)
    assert ref.t == 10.0  # two waits of 5 s on the reference clock
    ref.run(hold)
    assert ref.read("db:stock:sku42:stock") == 7 and not ref.db.locks

    ref = Reference(lock_wait_timeout=5.0)  # scheduled: the waiter gets the row when the holder commits
    stock_row(ref)
    hold, waiter = ref.start(holder(pause=1.0)), ref.start(other())
    ref.run_scheduled(lambda: hold.finished and waiter.finished)
    seen, first, second = waiter.value
    assert seen == SqlResult(((10, 0),)) and first.affected == 1 and second.affected == 1
    assert ref.t == 1.0 and waiter.ops == 5  # it waited for the commit, not for the timeout; asked once each
    assert ref.read("db:stock:sku42:stock") == 10 - 3 - 2 and not ref.db.open and not ref.db.locks


# --- MQ -----------------------------------------------------------------------------
def test_mq_is_at_least_once_on_the_reference_clock():
    ref = Reference(ack_timeout=0.5)

    def flow():
        msg_id = yield Publish("topic", {"records": [(1, 2, 0.5)]})
        first = yield Consume("topic", "c1", 0.1)
        nothing = yield Consume("topic", "c2", 0.1)  # delivered to c1, not timed out yet
        yield Sleep(0.6)
        again = yield Consume("topic", "c2", 0.1)
        acked = yield Ack("topic", again.msg_id)
        twice = yield Ack("topic", first.msg_id)
        empty = yield Consume("topic", "c1", 0.1)
        return msg_id, first, nothing, again, acked, twice, empty

    msg_id, first, nothing, again, acked, twice, empty = ref.run(flow())
    assert first == Message(msg_id, {"records": [[1, 2, 0.5]]}, 1)  # through JSON, as on the wire
    assert nothing is None and again.msg_id == msg_id and again.deliveries == 2
    assert acked is True and twice is False and empty is None
    assert (ref.mq.delivered, ref.mq.redelivered, ref.mq.acked) == (2, 1, 1)


def test_an_empty_consume_waits_its_block():
    ref = Reference()

    def consumer():
        yield Consume("topic", "c", 0.25)
        return (yield NOW)

    assert ref.run(consumer()) == 0.25


# --- a whole sale ----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["single_redis", "sharded", "db_conditional"])
def test_a_sale_sells_out_and_keeps_every_invariant(name):
    scenario = Scenario().with_overrides(["sale.stock=60", "redis.nodes=3", "sharded.partitions=3",
                                          "sharded.subdomain_size=10", "sharded.preallocation=20",
                                          "sharded.threshold=3", "sharded.injection=5", "pipeline.threshold=4"])
    strategy = strategy_class(name)(scenario, np.random.default_rng(0), namespace="t")
    requests = [Request(i, 1 + i % 2, 0.001 * i) for i in range(60)]
    ref = Reference()
    sale = ref.sale(strategy, requests)
    inventory = strategy.inventory(ref.read)
    assert inventory.violations() == [] and strategy.reconciliation_differences() == []
    assert inventory.sold == 60 == sum(r.qty for r, o in zip(requests, sale.outcomes) if o is Outcome.OK)
    assert Outcome.SOLD_OUT in sale.outcomes and ref.errors.count == 0
    assert all(task.finished for task in ref.tasks)  # the stop rule ended the background loops
    if strategy.reconciliation() is not None:
        assert strategy.reconciliation().db_deducted == 60
    if name == "sharded":  # setup spawned the DB pre-allocations (one writer); the sale waited for it
        assert len(sale.setup_spawned) == 1
        assert [op.statement for op in sale.setup_spawned[0].trace if isinstance(op, DbExec)][:2] == \
            ["ledger_preallocate", "part_preallocate"]


def test_drive_answers_from_a_script():
    def gen():
        a = yield Eval("deduct", KEYS, (1,))
        b = yield NOW
        return a, b

    assert drive(gen(), [4, 0.5]) == ([Eval("deduct", KEYS, (1,)), NOW], (4, 0.5))
    with pytest.raises(AssertionError, match="wanted more"):
        drive(gen(), [4])
