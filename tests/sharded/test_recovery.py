"""Recovery of two-step stock transfers stranded by an app crash between their scripts.

A transfer between the pool and a partition is two scripts on two nodes. Each test
drives the strategy on the serial reference interpreter until one transfer has run
its first script, then drops the task there (its generator is closed, as when the
app process dies), runs recovery and checks that every unit is in a partition or
back in the pool, exactly once: conservation with nothing left in flight, and a
second recovery changes nothing.
"""

from __future__ import annotations

import copy

import numpy as np

from engine.model import Outcome, Request
from engine.ops import Eval, Sleep
from engine.scenario import Scenario
from engine.sharded.strategy import Refill, Sharded
from engine.tasks import TaskKind
from engine.testing import Reference, Task

STOCK = 100


def make(**sharded) -> tuple[Sharded, Reference]:
    settings = {"partitions": 3, "subdomain_size": 10, "threshold": 3, "preallocation": 20, "injection": 7,
                "policy": "round_robin", **sharded}
    overrides = [f"sharded.{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in settings.items()]
    scenario = Scenario().with_overrides([f"sale.stock={STOCK}", "redis.nodes=3", "pipeline.enabled=false",
                                          "app.instances=1", *overrides])
    strategy = Sharded(scenario, np.random.default_rng(1), namespace="t")
    ref = Reference()
    ref.run(strategy.setup(), TaskKind.SETUP)
    strategy.oracle = ref.read
    return strategy, ref


def crash_after(ref: Reference, task: Task, script: str) -> None:
    """Step ``task`` until the script ``script`` has run, then drop the task: the app died there."""
    for _ in range(1000):
        op = ref.step(task)
        assert not task.finished, f"{task!r} finished before running {script}"
        if isinstance(op, Eval) and op.script == script:
            ref.abandon(task)
            return
    raise AssertionError(f"{task!r} never ran {script}")


def units_held(strategy: Sharded, ref: Reference) -> int:
    inventory = strategy.inventory(ref.read)
    return sum(inventory.holders.values()) + inventory.sold


def recover_all(strategy: Sharded, ref: Reference) -> None:
    for i in range(len(strategy.parts)):
        ref.run(strategy.recover(i), TaskKind.BACKGROUND)


def assert_recovered(strategy: Sharded, ref: Reference, stranded: int) -> None:
    """Before recovery ``stranded`` units are in flight; after it none, each unit once; a replay is a no-op."""
    before = strategy.inventory(ref.read)
    assert sum(before.in_flight.values()) == stranded and before.violations() == []
    recover_all(strategy, ref)
    after = strategy.inventory(ref.read)
    assert after.in_flight == {} and after.violations() == []
    assert units_held(strategy, ref) == STOCK  # pool + partitions + sold, nothing in flight
    assert strategy.stats["recovered_transfers"] >= 1
    snapshot = copy.deepcopy(ref.store)
    recover_all(strategy, ref)  # a second recovery finds nothing to do
    assert ref.store == snapshot


def test_a_top_up_stranded_after_pool_take_reaches_its_partition():
    strategy, ref = make()
    part = strategy.parts[0]
    ref.store[strategy.pool.stock] += 19
    ref.store[part.a], ref.store[part.b] = 1, 0
    ref.store[part.meta]["dry"] = 1  # the pool once answered empty: only a top-up refills it
    app = strategy.apps[0]
    refresher = ref.start(strategy._refresher(app, 0), TaskKind.BACKGROUND)
    ref.run_until(refresher, Sleep)
    ref.run_until(refresher, Sleep)
    assert app.jobs == [Refill(0, -1, "top:a0:1", 7, -1)]
    crash_after(ref, ref.live(TaskKind.SPAWN)[0], "pool_take")
    assert not app.jobs
    assert_recovered(strategy, ref, stranded=7)
    assert ref.store[part.a] + ref.store[part.b] == 8  # the 7 units landed in the partition, once


def test_a_retirement_stranded_after_partition_retire_reaches_the_pool():
    strategy, ref = make()
    drain = ref.start(strategy.drain(), TaskKind.DRAIN)  # return_stranded: the drain retires every partition
    crash_after(ref, drain, "partition_retire")
    pool = ref.store[strategy.pool.stock]
    assert_recovered(strategy, ref, stranded=20)
    assert ref.store[strategy.pool.stock] == pool + 20


def test_a_bounce_stranded_after_partition_inject_reaches_the_pool():
    strategy, ref = make()
    part = strategy.parts[0]
    ref.store[part.a] = 3
    ref.store[strategy.pool.stock] += 7
    assert ref.run(strategy.deduct(Request(0, 1, 0.0))) == Outcome.OK  # switch to B, refill ticket for A
    ref.store[part.a] += 6  # A fills up meanwhile (units from the pool): the refill will not fit
    ref.store[strategy.pool.stock] -= 6
    job = ref.live(TaskKind.SPAWN)[0]
    crash_after(ref, job, "partition_inject")  # 2 credited, 5 bounced: pool_return never runs
    assert ref.store[part.a] == 10
    assert_recovered(strategy, ref, stranded=5)
    assert ref.store[part.applied]["p0:e1"] == 7 and "back:p0:e1" in ref.store[strategy.pool.tickets]


def test_a_refill_stranded_after_pool_take_is_injected_once_and_clears_its_ticket():
    strategy, ref = make()
    part = strategy.parts[0]
    ref.store[part.a] = 3
    ref.store[strategy.pool.stock] += 7
    ref.run(strategy.deduct(Request(0, 1, 0.0)))
    crash_after(ref, ref.live(TaskKind.SPAWN)[0], "pool_take")
    assert_recovered(strategy, ref, stranded=7)
    assert (ref.store[part.a], ref.store[part.b]) == (9, 10) and ref.store[part.meta]["pend0"] == 0


def test_a_slow_transfer_is_not_replayed_before_it_is_old_and_not_applied_twice_after():
    strategy, ref = make()
    drain = ref.start(strategy.drain(), TaskKind.DRAIN)
    for _ in range(100):  # the drain runs partition_retire for partition 0, and is merely slow
        op = ref.step(drain)
        if isinstance(op, Eval) and op.script == "partition_retire":
            break
    app = strategy.apps[0]
    ref.run(app.recovery.run(0, older_than=1.0), TaskKind.BACKGROUND)  # seen in flight: its age starts now
    assert strategy.inventory(ref.read).in_flight == {"return": 20}
    ref.t += 1.0
    ref.run(app.recovery.run(0, older_than=1.0), TaskKind.BACKGROUND)  # old enough: completed
    assert strategy.inventory(ref.read).in_flight == {} and strategy.stats["recovered_transfers"] == 1
    pool = ref.store[strategy.pool.stock]
    ref.settle((TaskKind.DRAIN,))  # the slow original lands later: its pool_return is a no-op
    assert ref.store[strategy.pool.stock] == pool + 40  # partitions 1 and 2; partition 0's 20 counted once
    assert strategy.inventory(ref.read).violations() == [] and units_held(strategy, ref) == STOCK


def test_the_recovery_loop_runs_in_the_background_for_the_partitions_its_app_looks_after():
    strategy, ref = make(recovery_interval=0.5)
    loops = strategy.background()
    assert len(loops) == 3 + 1 + 3  # refreshers, pool refresher, one recovery loop per partition
    strategy, ref = make(recovery_interval=float("inf"))
    assert len(strategy.background()) == 3 + 1  # off


def test_a_retired_partition_bounces_a_recovered_refill_back_to_the_pool():
    strategy, ref = make()
    part = strategy.parts[0]
    ref.store[part.a] = 3
    ref.store[strategy.pool.stock] += 7
    ref.run(strategy.deduct(Request(0, 1, 0.0)))
    crash_after(ref, ref.live(TaskKind.SPAWN)[0], "pool_take")
    ref.run(strategy._retire(strategy.apps[0], 0, topup=False), TaskKind.SPAWN)  # meanwhile it is retired
    assert_recovered(strategy, ref, stranded=7)
    assert ref.store[part.a] == ref.store[part.b] == 0
