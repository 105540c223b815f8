"""Random small worlds: whatever the DB settings, every DB strategy keeps the invariants and leaks nothing."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.scenario import Scenario
from sim import simulate
from sim.world import COMPONENTS

settings_ = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@settings_
@given(
    strategy=st.sampled_from(["db_pessimistic", "db_optimistic", "db_conditional", "db_batched"]),
    stock=st.integers(0, 60),
    buyers=st.integers(1, 400),
    window=st.sampled_from([0.01, 0.1, 0.5]),
    timeout=st.sampled_from([0.005, 0.05, 1.0]),
    qty_high=st.integers(1, 4),
    pool=st.integers(1, 50),
    threads=st.integers(1, 8),
    lock_wait=st.sampled_from([0.001, 0.02, 50.0]),
    acquire=st.sampled_from([0.001, 0.05, 30.0]),
    detect=st.booleans(),
    retry=st.sampled_from(["none", "immediate", "backoff"]),
    cache=st.booleans(),
    batch=st.integers(1, 8),
    seed=st.integers(0, 3),
)
def test_invariants_and_no_leaks(strategy, stock, buyers, window, timeout, qty_high, pool, threads, lock_wait,
                                 acquire, detect, retry, cache, batch, seed):
    scenario = Scenario().with_overrides([
        f"sale.stock={stock}", f"workload.buyers={buyers}", f"workload.window={window}",
        f"workload.timeout={timeout}", f"workload.qty={{low=1, high={qty_high}}}", f"db.pool_size={pool}",
        f"db.threads={threads}", f"db.lock_wait_timeout={lock_wait}", f"db.acquire_timeout={acquire}",
        f"db.deadlock_detect={'true' if detect else 'false'}", f'db.retry="{retry}"', "db.retry_max=2",
        f"db.read_cache={'true' if cache else 'false'}", f"db.batch_size={batch}",
        "network.db={kind=\"exponential\", mean=0.0002}",
    ])
    worlds = []
    COMPONENTS.append(worlds.append)
    try:
        result = simulate(scenario, seed, strategy)
    finally:
        COMPONENTS.remove(worlds.append)
    assert result.violations == []
    s = result.summary
    assert s["ok"] + s["sold_out"] + s["timeout"] + s["error"] == buyers
    assert s["ok_qty"] <= s["sold"] <= stock
    if timeout == 1.0 and lock_wait == 50.0 and acquire == 30.0 and window >= 0.1:
        assert s["error"] == 0  # nothing can fail but a buyer's patience
    db = worlds[0].db
    worlds[0].env.run(until=worlds[0].env.now + 100)  # finish in-flight rollbacks, fire pending timers
    assert all(p.free == pool and not p.waiters for p in db.pools)  # every instance's pool is whole again
    assert all(row.holder is None and not row.queue and row.group is None for row in db.rows.values())
    assert db.committed == db.working
    assert db.committed["stock"]["sku42"]["stock"] + db.committed["stock"]["sku42"]["sold"] == stock


@pytest.mark.parametrize("strategy", ["db_pessimistic", "db_optimistic"])
def test_errors_are_counted_once_per_failed_try(strategy):
    sc = Scenario().with_overrides(["workload.buyers=300", "workload.window=0.01", "db.lock_wait_timeout=0.001",
                                    'db.retry="immediate"', "db.retry_max=2", "sale.stock=10000"])
    s = simulate(sc, 0, strategy).summary
    errors = sum(v for k, v in s.items() if k.startswith("err_"))
    assert errors == s["retries"] + s["error"] - s.get("aborts", 0)
