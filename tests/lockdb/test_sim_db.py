"""The simulated MySQL: exact traces on tiny worlds, then the mechanisms one by one."""

import math

import numpy as np
import pytest

from engine.model import Outcome
from engine.ops import NOW, Sleep
from engine.scenario import Scenario
from engine.sql import DB_BEGIN, DEADLOCK, LOCK_WAIT_TIMEOUT, DbCommit, DbError, DbExec, DbRollback, db_key
from engine.streams import Streams
from engine.workload import Schedule
from sim import simulate
from sim.world import COMPONENTS, World

H = 0.0002  # one-way hop
S = 0.00005  # statement service
C = 0.001  # commit (log flush)
B = 0.00001  # BEGIN
G = 0.000005  # lock hand-off on lock_sys
at = lambda x: pytest.approx(x, abs=1e-12)  # noqa: E731


def scenario(*extra):
    return Scenario().with_overrides([
        f"network.db={H}", f"db.service.default={S}", f"db.service.select_stock={S}",
        f"db.service.select_stock_for_update={S}", f"db.commit={C}", f"db.begin={B}", f"db.grant_cost={G}",
        "db.rollback=0.00002", "sale.stock=100", "workload.timeout=10",
        "app.instances=1",  # one instance: one sold-out flag, one pool of db.pool_size
        *extra,
    ])


def at_times(*times):
    return Schedule(np.array(times, dtype=float), np.ones(len(times), dtype=np.int64))


def run_capturing_world(sc, strategy, schedule=None, seed=0):
    worlds = []
    COMPONENTS.append(worlds.append)
    try:
        result = simulate(sc, seed, strategy, schedule=schedule)
    finally:
        COMPONENTS.remove(worlds.append)
    return result, worlds[0]


def test_conditional_trace():
    r = simulate(scenario(), 0, "db_conditional", schedule=at_times(0.0)).requests
    assert r["latency"].tolist() == [at(2 * H + S + C)]  # hop, update, flush with the lock held, hop


def test_pessimistic_trace_and_lock_queue():
    r = simulate(scenario(), 0, "db_pessimistic", schedule=at_times(0.0, 0.0)).requests
    first = 8 * H + B + 2 * S + C  # BEGIN, SELECT ... FOR UPDATE, UPDATE, COMMIT: four round trips
    # the second queues on the row at 3H+B and is handed the lock through lock_sys at commit end
    release = 7 * H + B + 2 * S + C
    second = release + G + S + H + 2 * H + S + 2 * H + C
    assert r["t_done"].tolist() == [at(first), at(second)]
    assert r["outcome"].tolist() == ["ok", "ok"]


def test_deadlock_detection_holds_lock_sys_and_delays_hand_offs():
    detect = 0.01  # per transaction already waiting on the row
    r = simulate(scenario(f"db.detect_cost={detect}"), 0, "db_pessimistic", schedule=at_times(0.0, 0.0, 0.0)).requests
    # the third waiter searches past one waiter: lock_sys is busy until 3H+B+detect, later than the first
    # commit ends (7H+B+2S+C), so the hand-off to the second waits for the mutex
    granted = 3 * H + B + detect + G
    assert r["t_done"].tolist()[1] == at(granted + S + 5 * H + S + C)
    off = simulate(scenario(f"db.detect_cost={detect}", "db.deadlock_detect=false"), 0, "db_pessimistic",
                   schedule=at_times(0.0, 0.0, 0.0)).requests
    assert off["t_done"].tolist()[1] == at(7 * H + B + 2 * S + C + G + S + 5 * H + S + C)


def test_invariants_hold_for_every_strategy_under_overload_and_sellout():
    sc = scenario("sale.stock=300", "workload.buyers=4000", "workload.window=0.5", "workload.timeout=0.5",
                  "db.pool_size=200", "workload.qty.low=1", "workload.qty.high=3")
    for name in ("db_pessimistic", "db_optimistic", "db_conditional", "db_batched"):
        result, world = run_capturing_world(sc, name)
        inventory = result.inventory
        assert result.violations == [], name
        assert inventory.sold + inventory.holders["db"] == 300 and inventory.holders["db"] >= 0
        s = result.summary
        assert s["ok_qty"] <= inventory.sold  # a buyer who timed out may still have bought
        db = world.db
        world.env.run()  # let in-flight rollbacks of abandoned transactions finish
        # nothing leaks: every connection is back, every row lock free, nothing waiting
        assert all(p.free == 200 and not p.waiters for p in db.pools), name
        assert all(row.holder is None and not row.queue for row in db.rows.values()), name
        assert db.committed == db.working, name


def test_batched_groups_updates_and_never_oversells():
    result, world = run_capturing_world(scenario("sale.stock=500", "workload.buyers=3000", "workload.window=0.05"),
                                        "db_batched")
    s = result.summary
    assert result.violations == [] and s["sold"] == 500 and s["ok"] == 500
    assert s["db_groups"] < s["db_statements"] / 10  # many updates per lock hand-off and flush


def test_overload_makes_the_row_work_for_buyers_who_left():
    result = simulate(scenario("workload.buyers=3000", "workload.window=0.5", "workload.timeout=0.2",
                               "sale.stock=100000"), 0, "db_pessimistic")
    s = result.summary
    assert s["timeout"] > 0.5 * s["requests"]
    assert s["db_abandoned"] > 0 and s["db_lock_wait_mean"] > 0.05
    assert result.violations == []


def test_lock_wait_timeout_and_retries_are_new_load():
    base = ["workload.buyers=400", "workload.window=0.05", "db.lock_wait_timeout=0.02", "sale.stock=100000",
            "workload.timeout=5"]
    none = simulate(scenario(*base), 0, "db_pessimistic").summary
    assert none["db_lock_timeouts"] > 0 and none["err_lock_wait_timeout"] == none["error"] > 0
    retry = simulate(scenario(*base, 'db.retry="backoff"', "db.retry_max=2"), 0, "db_pessimistic").summary
    assert retry["retries"] > 0 and retry["db_statements"] > none["db_statements"]
    assert retry["retries"] <= 2 * 400


def test_pool_timeout():
    s = simulate(scenario("db.pool_size=2", "db.acquire_timeout=0.002", "workload.buyers=200", "workload.window=0.01"),
                 0, "db_pessimistic").summary
    assert s["db_pool_timeouts"] > 0 and s["err_pool_timeout"] == s["db_pool_timeouts"]


def two_rows_world(*extra):
    world = World(scenario(*extra), Streams(0))

    def setup():
        yield DbExec(None, "create_stock")
        for sku in ("a", "b"):
            yield DbExec(None, "insert_stock", (sku, 10))

    world.run_to_end(setup())
    return world


def crossing(first, second, log, tag, pause=0.001):
    txn = yield DB_BEGIN
    yield DbExec(txn, "select_stock_for_update", (first,))
    yield Sleep(pause)  # both hold their first row before asking for the second
    reply = yield DbExec(txn, "select_stock_for_update", (second,))
    log.append((tag, reply if isinstance(reply, DbError) else "got", (yield NOW)))
    yield DbRollback(txn) if isinstance(reply, DbError) else DbCommit(txn)


def test_real_deadlock_is_detected_and_the_requester_rolled_back():
    world = two_rows_world()
    log = []
    world.interpreter.start(crossing("a", "b", log, "A"), lambda t, v: None)
    world.interpreter.start(crossing("b", "a", log, "B"), lambda t, v: None)
    world.env.run()
    assert [entry[:2] for entry in log] == [("B", DbError(DEADLOCK)), ("A", "got")]
    assert world.db.stats["deadlocks"] == 1


def test_without_detection_only_the_lock_wait_timeout_breaks_a_deadlock():
    world = two_rows_world("db.deadlock_detect=false", "db.lock_wait_timeout=0.05")
    t0 = world.env.now  # after setup
    log = []
    world.interpreter.start(crossing("a", "b", log, "A"), lambda t, v: None)
    world.interpreter.start(crossing("b", "a", log, "B", pause=0.002), lambda t, v: None)
    world.env.run()
    assert log[0][:2] == ("A", DbError(LOCK_WAIT_TIMEOUT)) and log[1][1] == "got"
    assert log[0][2] - t0 == pytest.approx(6 * H + B + S + 0.001 + 0.05, abs=1e-9)


def test_plain_reads_see_committed_data_and_rollback_restores():
    world = two_rows_world()
    seen = []

    def writer(finish):
        txn = yield DB_BEGIN
        yield DbExec(txn, "deduct_stock", (4, 4, "a"))
        yield Sleep(0.01)
        yield finish(txn)

    def reader():
        yield Sleep(0.005)
        seen.append((yield DbExec(None, "select_stock", ("a",))).first)
        seen.append(world.read(db_key("stock", "a", "stock")))

    world.interpreter.start(writer(DbRollback), lambda t, v: None)
    world.interpreter.start(reader(), lambda t, v: None)
    world.env.run()
    assert seen == [(10, 0), 10]  # MVCC: the uncommitted update is invisible
    assert world.db.working["stock"]["a"]["stock"] == 10  # rolled back
    world.interpreter.start(writer(DbCommit), lambda t, v: None)
    world.env.run()
    assert world.read(db_key("stock", "a", "stock")) == 6 and world.read(db_key("stock", "a", "sold")) == 4


def test_same_seed_same_result():
    sc = scenario("workload.buyers=2000", "workload.window=0.2", "workload.timeout=0.3",
                  "network.db={kind=\"exponential\", mean=0.0002}")
    a = simulate(sc, 3, "db_optimistic").summary
    b = simulate(sc, 3, "db_optimistic").summary
    assert a == b or all(a[k] == b[k] or (isinstance(a[k], float) and math.isnan(a[k])) for k in a)


def test_outcomes_of_a_tiny_sellout():
    r = simulate(scenario("sale.stock=2"), 0, "db_conditional", schedule=at_times(0.0, 0.0, 0.0, 0.1)).requests
    assert r["outcome"].tolist() == ["ok", "ok", "sold_out", "sold_out"]
    assert r["ops"].tolist() == [1, 1, 1, 0]  # the 4th is refused locally (sold-out flag)
    assert Outcome.OK == 0


def test_read_cache_drifts_when_buyers_leave_after_the_commit():
    sc = scenario("db.read_cache=true", "sale.stock=200", "workload.buyers=3000", "workload.window=0.3",
                  "workload.timeout=0.2")
    result = simulate(sc, 0, "db_conditional")
    s = result.summary
    assert result.violations == []
    # every OK buyer decremented the cache; the buyers who timed out after their commit did not
    assert s["cache_final_gap"] == s["sold"] - s["ok_qty"] > 0
    assert s["db_replies_to_gone"] >= s["sold"] - s["ok_qty"] and s["db_abandoned"] == 0  # autocommit: no txn
    assert 0 < s["cache_disagree_share"] <= 1 and s["cache_max_gap"] >= s["cache_final_gap"]
    calm = simulate(scenario("db.read_cache=true", "sale.stock=50", "workload.buyers=400", "workload.window=2"),
                    0, "db_conditional").summary
    assert calm["cache_final_gap"] == 0 and calm["sold"] == 50 and calm["cache_max_gap"] <= 2
