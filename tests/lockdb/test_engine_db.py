"""DB strategies as op sequences, driven by hand and against the twins: no SimPy, no MySQL."""

import pytest
from db_helpers import HANDLE, make

from engine.model import Outcome, Request
from engine.ops import Sleep
from engine.sql import (
    DB_BEGIN,
    DB_SESSION,
    DEADLOCK,
    LOCK_WAIT_TIMEOUT,
    POOL_TIMEOUT,
    TABLE_EXISTS,
    DbCommit,
    DbError,
    DbExec,
    DbRollback,
    SqlResult,
)
from engine.tasks import TaskKind
from engine.testing import Reference, drive

REQ = Request(0, 2, 0.0)
ROW = SqlResult(((5, 7),))  # stock 5, version 7
DONE = SqlResult(affected=1)
NONE = SqlResult(affected=0)


def test_setup_creates_table_and_row_and_refuses_an_existing_table():
    s = make("db_pessimistic", stock=10)
    ops, _ = drive(s.setup(), [SqlResult(), DONE])
    assert ops == [DbExec(None, "create_stock"), DbExec(None, "insert_stock", ("sku42", 10))]
    with pytest.raises(RuntimeError, match="table_exists"):
        drive(make("db_pessimistic").setup(), [DbError(TABLE_EXISTS)])


def test_pessimistic_op_sequence():
    ops, outcome = drive(make("db_pessimistic").deduct(REQ), [HANDLE, ROW, DONE, None])
    assert ops == [DB_BEGIN, DbExec(HANDLE, "select_stock_for_update", ("sku42",)),
                   DbExec(HANDLE, "deduct_stock", (2, 2, "sku42")), DbCommit(HANDLE)]
    assert outcome is Outcome.OK


def test_pessimistic_not_enough_rolls_back():
    s = make("db_pessimistic")
    ops, outcome = drive(s.deduct(Request(0, 6, 0.0)), [HANDLE, ROW, None])
    assert ops[-1] == DbRollback(HANDLE) and outcome is Outcome.SOLD_OUT
    assert not s.sold_out_seen  # a refusal of 6 units says nothing about 1 unit


def test_pessimistic_sold_out_flag_after_last_unit():
    s = make("db_pessimistic")
    assert drive(s.deduct(Request(0, 5, 0.0)), [HANDLE, ROW, DONE, None])[1] is Outcome.OK
    assert drive(s.deduct(REQ), []) == ([], Outcome.SOLD_OUT)


@pytest.mark.parametrize("code", [LOCK_WAIT_TIMEOUT, DEADLOCK])
def test_pessimistic_error_rolls_back_and_fails_without_retry(code):
    s = make("db_pessimistic")
    ops, outcome = drive(s.deduct(REQ), [HANDLE, DbError(code), None])
    assert ops[-1] == DbRollback(HANDLE) and outcome is Outcome.ERROR
    assert s.counters() == {"retries": 0, f"err_{code}": 1}


def test_pool_timeout_needs_no_rollback():
    ops, outcome = drive(make("db_pessimistic").deduct(REQ), [DbError(POOL_TIMEOUT)])
    assert ops == [DB_BEGIN] and outcome is Outcome.ERROR


def test_immediate_retries_are_bounded_and_are_whole_new_transactions():
    s = make("db_pessimistic", 'db.retry="immediate"', "db.retry_max=2")
    error = DbError(LOCK_WAIT_TIMEOUT)
    ops, outcome = drive(s.deduct(REQ), [HANDLE, error, None] * 3)
    assert ops.count(DB_BEGIN) == 3 and outcome is Outcome.ERROR
    assert not any(isinstance(op, Sleep) for op in ops)
    assert s.counters() == {"retries": 2, "err_lock_wait_timeout": 3}


def test_retry_that_succeeds():
    s = make("db_pessimistic", 'db.retry="immediate"')
    ops, outcome = drive(s.deduct(REQ), [DbError(POOL_TIMEOUT), HANDLE, ROW, DONE, None])
    assert outcome is Outcome.OK and s.retries == 1


def test_backoff_is_full_jitter_and_capped():
    s = make("db_conditional", 'db.retry="backoff"', "db.retry_max=6", "db.retry_base=0.01", "db.retry_cap=0.03")
    ops, outcome = drive(s.deduct(REQ), [DbError(LOCK_WAIT_TIMEOUT), None] * 6 + [DbError(LOCK_WAIT_TIMEOUT)])
    sleeps = [op.seconds for op in ops if isinstance(op, Sleep)]
    assert len(sleeps) == 6 and outcome is Outcome.ERROR
    caps = [0.01, 0.02, 0.03, 0.03, 0.03, 0.03]
    assert all(0 <= d <= c for d, c in zip(sleeps, caps)), sleeps
    assert len(set(sleeps)) == 6  # jittered, not synchronised


def test_conditional_is_one_autocommit_statement():
    s = make("db_conditional")
    ops, outcome = drive(s.deduct(Request(0, 1, 0.0)), [DONE])
    assert ops == [DbExec(None, "deduct_if_enough", (1, 1, "sku42", 1))] and outcome is Outcome.OK
    ops, outcome = drive(s.deduct(Request(1, 1, 0.0)), [NONE])
    assert outcome is Outcome.SOLD_OUT and s.sold_out_seen


def test_batched_uses_the_group_commit_statement():
    ops, _ = drive(make("db_batched").deduct(REQ), [DONE])
    assert ops == [DbExec(None, "deduct_hot", (2, 2, "sku42", 2))]


def test_optimistic_op_sequence():
    s = make("db_optimistic")
    ops, outcome = drive(s.deduct(REQ), [HANDLE, ROW, DONE, None])
    assert ops == [DB_SESSION, DbExec(HANDLE, "select_stock", ("sku42",)),
                   DbExec(HANDLE, "deduct_if_version", (2, 2, "sku42", 7, 2)), DbCommit(HANDLE)]
    assert outcome is Outcome.OK


def test_optimistic_conflicts_are_retried_with_backoff_and_bounded():
    s = make("db_optimistic", "db.optimistic_max=3", "db.optimistic_base=0.001")
    replies = [HANDLE, ROW, NONE] + [None, None, HANDLE, ROW, NONE] * 3 + [None]
    ops, outcome = drive(s.deduct(REQ), replies)
    assert outcome is Outcome.ERROR and ops[-1] == DbCommit(HANDLE)  # the session is given back
    assert [op.statement for op in ops if isinstance(op, DbExec)].count("deduct_if_version") == 4
    # each backoff: give the connection back, sleep, queue for a connection again
    i = ops.index(next(op for op in ops if isinstance(op, Sleep)))
    assert ops[i - 1:i + 2] == [DbCommit(HANDLE), ops[i], DB_SESSION]
    sleeps = [op.seconds for op in ops if isinstance(op, Sleep)]
    assert len(sleeps) == 3 and all(0 <= d <= 0.001 * 2 ** i for i, d in enumerate(sleeps))
    c = s.counters()
    assert (c["cas_tries"], c["conflicts"], c["aborts"], c["abort_ratio"], c["conflict_ratio"]) == (4, 4, 1, 1.0, 1.0)


def test_optimistic_immediate_retry_when_base_is_zero():
    s = make("db_optimistic", "db.optimistic_max=1", "db.optimistic_base=0")
    ops, outcome = drive(s.deduct(REQ), [HANDLE, ROW, NONE, ROW, DONE, None])
    assert outcome is Outcome.OK and not any(isinstance(op, Sleep) for op in ops)


def test_optimistic_sees_sold_out_without_updating():
    ops, outcome = drive(make("db_optimistic").deduct(Request(0, 9, 0.0)), [HANDLE, ROW, None])
    assert outcome is Outcome.SOLD_OUT and [op.statement for op in ops if isinstance(op, DbExec)] == ["select_stock"]


@pytest.mark.parametrize("name", ["db_pessimistic", "db_optimistic", "db_conditional", "db_batched"])
def test_serial_run_against_the_twins_keeps_the_invariants(name):
    s = make(name, "sale.soldout_flag=false", stock=25)
    ref = Reference()
    ref.run(s.setup(), TaskKind.SETUP)
    outcomes = [ref.run(s.deduct(Request(i, 1 + i % 3, 0.0))) for i in range(30)]
    inventory = s.inventory(ref.read)
    assert inventory.violations() == [] and ref.errors.count == 0 and not ref.db.open
    assert inventory.sold == sum(1 + i % 3 for i, o in enumerate(outcomes) if o is Outcome.OK)
    assert inventory.remaining == 25 - inventory.sold and inventory.remaining < 3  # sold until nothing fit
    assert Outcome.SOLD_OUT in outcomes and Outcome.ERROR not in outcomes


def test_read_cache_op_sequence():
    from engine.ops import Eval

    s = make("db_conditional", "db.read_cache=true", stock=10)
    key = "t:cache:{sku42}:stock"
    ops, _ = drive(s.setup(), [SqlResult(), DONE, 1])
    assert ops[-1] == Eval("cache_init", (key,), (10,)) and s.keys() == (key,)
    ops, outcome = drive(s.deduct(REQ), [10, DONE, 8])
    assert ops == [Eval("cache_get", (key,), ()), DbExec(None, "deduct_if_enough", (2, 2, "sku42", 2)),
                   Eval("cache_deduct", (key,), (2,))] and outcome is Outcome.OK
    ops, outcome = drive(s.deduct(Request(1, 3, 0.0)), [2])  # cached 2 < 3: the DB is spared
    assert ops == [Eval("cache_get", (key,), ())] and outcome is Outcome.SOLD_OUT
    ops, outcome = drive(s.deduct(REQ), [5, NONE])  # a failed deduction leaves the cache alone
    assert outcome is Outcome.SOLD_OUT and len(ops) == 2
    assert s.counters()["cache_refusals"] == 1


def test_read_cache_gap_is_measured_on_every_snapshot():
    s = make("db_conditional", "db.read_cache=true", stock=10)
    values = {"db:stock:sku42:stock": 6, "db:stock:sku42:sold": 4, "t:cache:{sku42}:stock": 9}
    assert s.inventory(values.get).holders == {"db": 6}
    values["t:cache:{sku42}:stock"] = 6
    s.inventory(values.get)
    c = s.counters()
    assert (c["cache_max_gap"], c["cache_final_gap"], c["cache_disagree_share"]) == (3, 0, 0.5)
