"""The sharded strategy as op sequences, without SimPy and without Redis.

The serial reference interpreter (:mod:`engine.testing`) feeds each ``Eval``
to the script's Python twin on one in-memory store (keys carry distinct tags,
so one dict stands for the whole cluster), answers ``Now`` from its clock,
keeps ``Spawn``ed tasks until a test runs them, and steps background loops
up to their ``Sleep``. Tests assert the exact ops a request yields and the
state after.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine import scripts
from engine.model import Outcome, Request
from engine.ops import Eval, Sleep
from engine.scenario import Scenario, ScenarioError
from engine.sharded.registry import Registry, State
from engine.sharded.strategy import Refill, Retire, Sharded
from engine.tasks import TaskKind
from engine.testing import Reference


class Traced(Reference):
    """The reference, plus the views these tests read: Eval trace by partition tag, spawned tasks."""

    @property
    def trace(self) -> list[tuple[str, str]]:
        return [(op.script, op.keys[0].split("{")[1].split("}")[0]) for op in self.log if isinstance(op, Eval)]

    @property
    def spawned(self) -> list:
        return self.live(TaskKind.SPAWN)

    def loop(self, gen):
        """A background loop as a task, run up to (and including) its first Sleep."""
        task = self.start(gen, TaskKind.BACKGROUND)
        self.run_until(task, Sleep)
        return task


def make(**sharded) -> tuple[Sharded, Traced]:
    settings = {"partitions": 3, "subdomain_size": 10, "threshold": 3, "preallocation": 20, "injection": 7,
                "policy": "round_robin", **sharded}
    overrides = [f"sharded.{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in settings.items()]
    # the Redis-side op sequence alone (the sync pipeline's detail records: tests/pipeline)
    scenario = Scenario().with_overrides(["sale.stock=100", "redis.nodes=3", "pipeline.enabled=false", "app.instances=1",
                                          *overrides])
    strategy = Sharded(scenario, np.random.default_rng(1), namespace="t")
    driver = Traced()
    driver.run(strategy.setup(), TaskKind.SETUP)
    assert not driver.spawned  # without the pipeline, setup spawns nothing
    strategy.oracle = driver.read
    driver.log.clear()
    return strategy, driver


def buy(strategy: Sharded, driver: Traced, qty: int = 1, rid: int = 0) -> Outcome:
    return driver.run(strategy.deduct(Request(rid, qty, 0.0)))


def subs(strategy: Sharded, driver: Traced, i: int) -> tuple[int, int]:
    part = strategy.parts[i]
    return driver.store[part.a], driver.store[part.b]


def conserved(strategy: Sharded, driver: Traced) -> None:
    assert strategy.inventory(driver.store.get).violations() == []


# --- setup and placement ---------------------------------------------------
def test_setup_fills_both_sub_domains_from_the_pool_and_places_partitions_evenly():
    strategy, driver = make()
    assert [subs(strategy, driver, i) for i in range(3)] == [(10, 10)] * 3
    assert driver.store[strategy.pool.stock] == 40
    assert strategy.part_node == [0, 1, 2]  # balanced placement: one partition per node
    conserved(strategy, driver)
    assert [v.remaining for v in strategy.apps[0].registry.views] == [20, 20, 20]


def test_one_request_is_one_script_on_one_partition():
    strategy, driver = make()
    assert buy(strategy, driver) == Outcome.OK
    assert driver.trace == [("partition_deduct", strategy.parts[0].tag)]
    assert subs(strategy, driver, 0) == (9, 10)
    conserved(strategy, driver)


# --- selection ---------------------------------------------------------------
def registry(policy: str, remaining: list[int]) -> Registry:
    reg = Registry([0, 1, 2, 3][: len(remaining)], policy, np.random.default_rng(7))
    for view, units in zip(reg.views, remaining):
        view.remaining = units
    return reg


def test_round_robin_cycles_over_sufficient_partitions_only():
    reg = registry("round_robin", [5, 0, 5, 1])
    assert [reg.select(2) for _ in range(4)] == [0, 2, 0, 2]
    assert reg.select(1, tried=(0, 2)) == 3
    assert reg.select(6) is None


def test_random_picks_every_eligible_partition_and_never_an_insufficient_one():
    reg = registry("random", [5, 0, 5, 5])
    picks = [reg.select(1) for _ in range(400)]
    assert set(picks) == {0, 2, 3}
    assert max(np.bincount(picks)) < 200


def test_p2c_prefers_the_partition_believed_to_hold_more():
    reg = registry("p2c", [3, 9])
    assert {reg.select(1) for _ in range(50)} == {1}
    reg.views[1].state = State.DRAINED
    assert reg.select(1) == 0


def test_p2c_load_prefers_the_node_with_fewer_outstanding_requests():
    reg = registry("p2c_load", [3, 9])
    reg.outstanding[1] = 4
    assert {reg.select(1) for _ in range(50)} == {0}


def test_unknown_policy_is_a_one_line_error():
    with pytest.raises(ScenarioError, match="sharded.policy must be one of random, round_robin, p2c, p2c_load"):
        Scenario().with_overrides(["sharded.policy=best"])
    with pytest.raises(ScenarioError, match="threshold must be in 1..subdomain_size"):
        Scenario().with_overrides(["sharded.threshold=500"])


# --- switch and injection ------------------------------------------------------
def test_switch_below_threshold_issues_one_refill_ticket_for_the_drained_sub_domain():
    strategy, driver = make()
    driver.store[strategy.parts[0].a] = 3  # at the threshold
    assert buy(strategy, driver) == Outcome.OK
    assert subs(strategy, driver, 0) == (2, 10)
    app = strategy.apps[0]
    assert app.registry.views[0].active == 1
    assert app.jobs == [Refill(0, 0, "p0:e1", 7, 0)] and len(driver.spawned) == 1  # its own task
    assert strategy.stats["switches"] == 1
    assert [e["kind"] for e in strategy.event_log] == ["switch"]
    # the next deductions on partition 0 (now on B) issue no second ticket for A
    strategy.apps[0].registry._cursor = -1
    assert buy(strategy, driver) == Outcome.OK
    assert len(app.jobs) == 1 and subs(strategy, driver, 0) == (2, 9)


def test_injection_moves_pool_stock_by_ticket_exactly_once():
    strategy, driver = make()
    driver.store[strategy.parts[0].a] = 3
    driver.store[strategy.pool.stock] += 7  # keep the sale's total: A lost 7 units to the pool
    buy(strategy, driver)
    app = strategy.apps[0]
    job = app.jobs[0]
    driver.log.clear()
    driver.run_spawned()
    assert driver.trace == [("pool_take", "sku42:pool"), ("partition_inject", strategy.parts[0].tag)]
    assert subs(strategy, driver, 0) == (9, 10)
    assert driver.store[strategy.pool.stock] == 40
    assert strategy.stats["injections"] == 1 and not app.jobs
    conserved(strategy, driver)
    # the same ticket again (a retry, a recovery): nothing moves
    driver.run(strategy._refill(app, job), TaskKind.SPAWN)
    assert strategy.stats["duplicate_tickets"] == 1
    assert subs(strategy, driver, 0) == (9, 10) and driver.store[strategy.pool.stock] == 40
    conserved(strategy, driver)


def test_stock_between_pool_take_and_inject_is_counted_in_flight():
    strategy, driver = make()
    part, pool = strategy.parts[1], strategy.pool
    grant = scripts.get("pool_take").twin(driver.store, pool.take_keys(1), ("x1", 5, 0, -1))
    inventory = strategy.inventory(driver.store.get)
    assert grant == 5 and inventory.in_flight == {"injection": 5} and inventory.violations() == []
    scripts.get("partition_inject").twin(driver.store, part.inject_keys(0), ("x1", 5, -1, 10))
    inventory = strategy.inventory(driver.store.get)
    assert subs(strategy, driver, 1) == (10, 10) and driver.store[part.returned] == 5  # A was full: all bounced
    assert inventory.in_flight == {"return": 5} and inventory.violations() == []
    scripts.get("pool_return").twin(driver.store, pool.return_keys(1), ("back:x1", 5))
    inventory = strategy.inventory(driver.store.get)
    assert inventory.in_flight == {} and inventory.violations() == []


# --- fallback, false sold-outs, removal -------------------------------------------
def empty(strategy: Sharded, driver: Traced, *partitions: int) -> None:
    """Move all stock of these partitions to the pool behind the registry's back (it stays stale)."""
    for i in partitions:
        part = strategy.parts[i]
        driver.store[strategy.pool.stock] += driver.store[part.a] + driver.store[part.b]
        driver.store[part.a] = driver.store[part.b] = 0


def test_fallback_tries_other_partitions_before_saying_sold_out():
    strategy, driver = make()
    empty(strategy, driver, 0, 1)
    assert buy(strategy, driver) == Outcome.OK
    tags = [tag for _, tag in driver.trace]
    assert tags == [p.tag for p in strategy.parts]
    assert strategy.stats["fallbacks"] == 2 and strategy.stats["partition_refusals"] == 2
    assert strategy.stats["false_sold_outs"] == 0
    assert [v.state for v in strategy.apps[0].registry.views] == [State.DRAINED, State.DRAINED, State.ACTIVE]


def test_without_fallback_a_refused_buyer_waits_for_news_instead_of_hearing_sold_out():
    strategy, driver = make(fallback=0)
    empty(strategy, driver, 0)
    buyer = driver.start(strategy.deduct(Request(0, 1, 0.0)))
    driver.run_until(buyer, Sleep)  # partition 0 refused; the bound is spent, yet stock remains: wait
    assert driver.trace == [("partition_deduct", strategy.parts[0].tag)]
    assert strategy.stats["bound_waits"] == 1 and strategy.stats["refused_waiting"] == 0
    assert buy(strategy, driver, rid=4) == Outcome.OK  # news: another buyer's reply
    assert driver.run(buyer) == Outcome.OK  # starts over and finds partition 1 or 2
    assert strategy.stats["waits"] == 1 and strategy.stats["false_sold_outs"] == 0


def test_a_finite_refill_wait_refuses_after_it_even_while_stock_may_remain():
    strategy, driver = make(fallback=0, refill_wait=0.01)
    empty(strategy, driver, 0)
    assert buy(strategy, driver) == Outcome.SOLD_OUT
    assert strategy.stats["refused_waiting"] == 1 and driver.t == pytest.approx(0.01)


def test_a_refusal_says_whether_a_refill_is_still_out():
    strategy, driver = make()
    part = strategy.parts[0]
    driver.store[part.a], driver.store[part.b] = 0, 0
    driver.store[part.meta]["pend1"] = 4  # a refill ticket for B is out
    reply = scripts.get("partition_deduct").twin(driver.store, part.deduct_keys(), (1, 3))
    assert reply == [-1, 0, 0, 0, 4]
    registry = strategy.apps[0].registry
    registry.on_pool(0)
    assert registry.on_refused(0, 0, refill_pending=True) is State.DRAINED  # stock may still arrive
    assert registry.on_refused(0, 0, refill_pending=False) is State.REMOVED


@pytest.mark.parametrize(("a", "b", "switched", "ticket"), [
    (3, 3, 1, 1),  # A falls below the threshold, B is at it: switch, refill A
    (3, 2, 0, 0),  # B is below the threshold too: stay on A (B's refill is out, or the pool is dry)
    (1, 1, 1, 1),  # A empties: switch to whatever B holds, and refill A
])
def test_switch_rule_at_the_threshold(a, b, switched, ticket):
    strategy, driver = make()
    part = strategy.parts[0]
    driver.store[part.a], driver.store[part.b] = a, b
    if b < 3:
        driver.store[part.meta]["pend1"] = 9
    reply = scripts.get("partition_deduct").twin(driver.store, part.deduct_keys(), (1, 3))
    assert reply[0] == 0 and reply[3] == switched and (reply[4] > 0) == bool(ticket)


def test_exhausted_partitions_leave_the_registry_and_the_app_stops_asking():
    strategy, driver = make(preallocation=2, threshold=1, subdomain_size=1)
    driver.store[strategy.pool.stock] = 0  # sell only what the partitions hold: 6 units
    strategy.apps[0].registry.on_pool(0)
    strategy.scenario = strategy.scenario.with_overrides(["sale.stock=6"])
    strategy.initial = 6
    outcomes = [buy(strategy, driver, rid=k) for k in range(6)]
    assert outcomes == [Outcome.OK] * 6
    registry = strategy.apps[0].registry
    # a partition that sold its last unit may still have a refill on its way: drained, not removed
    assert [v.state for v in registry.views] == [State.DRAINED] * 3 and not registry.exhausted
    driver.run_spawned()  # their refills find the pool empty
    assert strategy.stats["dry_refills"] == 3 and not strategy.apps[0].jobs
    for i in range(3):  # the refresh reads: empty, no ticket out, and the pool is empty
        refresher = driver.loop(strategy._refresher(strategy.apps[0], i))  # up to its out-of-phase start Sleep
        driver.run_until(refresher, Sleep)
    assert registry.exhausted and strategy.stats["removals"] == 3
    assert registry.unsold_bound(6) == 0  # the refreshes read every partition's sold counter
    driver.log.clear()
    assert buy(strategy, driver) == Outcome.SOLD_OUT
    assert driver.trace == []  # refused at once: the app knows nothing remains unsold
    assert strategy.stats["refused_exhausted"] == 1
    assert strategy.stats["false_sold_outs"] == 0
    conserved(strategy, driver)


def test_a_refresh_revives_a_partition_another_app_refilled():
    strategy, driver = make()
    reg = strategy.apps[0].registry
    reg.on_refused(2, 0)
    assert reg.views[2].state is State.DRAINED
    refresher = driver.loop(strategy._refresher(strategy.apps[0], 2))  # up to its out-of-phase start Sleep
    driver.run_until(refresher, Sleep)
    assert driver.trace[-1] == ("partition_status", strategy.parts[2].tag)
    assert reg.views[2].state is State.ACTIVE and reg.views[2].remaining == 20


def test_a_lost_refill_ticket_is_re_run_by_the_refresh():
    strategy, driver = make()
    driver.store[strategy.parts[0].a] = 3
    driver.store[strategy.pool.stock] += 7
    buy(strategy, driver)
    app = strategy.apps[0]
    app.jobs.clear()  # the request that got the ticket timed out before spawning it: nobody runs it
    for task in driver.spawned:
        driver.abandon(task)
    refresher = driver.loop(strategy._refresher(app, 0))  # up to its out-of-phase start Sleep
    for _ in range(Sharded.RECOVER_AFTER - 1):
        driver.run_until(refresher, Sleep)
        assert not app.jobs  # maybe just slow
    driver.run_until(refresher, Sleep)
    assert app.jobs == [Refill(0, 0, "p0:e1", 7, 0)] and strategy.stats["recovered_tickets"] == 1
    driver.run_spawned()
    assert subs(strategy, driver, 0) == (9, 10)
    conserved(strategy, driver)


# --- stranded stock -------------------------------------------------------------------
def test_a_piece_too_small_for_a_waiting_buyer_is_gathered_into_the_anchor_partition():
    strategy, driver = make(fallback=0)  # return_stranded is on by default
    app = strategy.apps[0]
    part = strategy.parts[1]
    # late in the sale: the pool is empty, partitions 0 and 1 keep 1 unit each, 2 sold everything
    driver.store[strategy.pool.stock] = 0
    driver.store[strategy.parts[0].a], driver.store[strategy.parts[0].b] = 1, 0
    driver.store[part.a], driver.store[part.b] = 0, 1
    driver.store[strategy.parts[2].a] = driver.store[strategy.parts[2].b] = 0
    driver.store[strategy.parts[2].sold] = 98
    app.registry.on_pool(0)
    conserved(strategy, driver)
    refreshers = [driver.loop(strategy._refresher(app, i)) for i in range(3)]  # up to their first Sleep
    for refresher in refreshers:
        driver.run_until(refresher, Sleep)  # the app learns all this; no buyer waits yet: nothing to gather
    assert not app.jobs and app.registry.unsold_bound(100) == 2
    driver.log.clear()
    buyer = driver.start(strategy.deduct(Request(0, 2, 0.0)))
    driver.run_until(buyer, Sleep)  # no partition holds 2, yet 2 remain unsold: wait
    assert driver.trace == [] and app.want() == 2
    for refresher in refreshers:
        driver.run_until(refresher, Sleep)  # partition 1: 1 unit < 2 wanted, pool empty
    assert app.jobs == [Retire(1)]  # the anchor (partition 0) is never retired
    driver.log.clear()
    driver.run_spawned(limit=1)
    assert driver.trace == [("partition_retire", part.tag), ("pool_return", "sku42:pool")]
    assert app.registry.views[1].state is State.REMOVED
    assert app.jobs == [Refill(0, -1, "top:a0:1", 1, -1)]  # to the anchor, whatever it holds
    conserved(strategy, driver)
    driver.run_spawned()
    assert sum(subs(strategy, driver, 0)) == 2 and driver.store[strategy.pool.stock] == 0
    assert driver.run(buyer) == Outcome.OK  # the refill was news: the pieces add up to 2
    assert strategy.stats["returned_units"] == 1 and strategy.stats["refused_waiting"] == 0
    conserved(strategy, driver)
    # the retired partition answers "retired" to anyone still routing there
    reply = scripts.get("partition_deduct").twin(driver.store, part.deduct_keys(), (1, 3))
    assert reply[0] == -4


def test_drain_counts_stranded_stock_and_can_return_it():
    for give_back, stranded_pool in ((False, 40), (True, 100)):
        strategy, driver = make(return_stranded=give_back)
        driver.run(strategy.drain(), TaskKind.DRAIN)
        assert strategy.stranded == 60
        assert driver.store[strategy.pool.stock] == stranded_pool
        conserved(strategy, driver)


def test_a_starving_partition_is_topped_up_once_the_pool_holds_stock_again():
    strategy, driver = make()
    part = strategy.parts[0]
    driver.store[strategy.pool.stock] += 19
    driver.store[part.a], driver.store[part.b] = 1, 0
    driver.store[part.meta]["dry"] = 1  # an earlier refill found the pool empty: the script asks for none
    app = strategy.apps[0]
    refresher = driver.loop(strategy._refresher(app, 0))  # up to its out-of-phase start Sleep
    driver.run_until(refresher, Sleep)
    assert app.jobs == [Refill(0, -1, "top:a0:1", 7, -1)]
    driver.run_spawned()
    assert sum(subs(strategy, driver, 0)) == 8 and driver.store[part.meta]["dry"] == 0
    assert app.registry.views[0].remaining == 8
    conserved(strategy, driver)


def test_hopeless_when_only_pieces_smaller_than_the_request_remain():
    reg = registry("random", [1, 1, 0])
    reg.on_pool(0)
    reg.views[2].state = State.REMOVED
    assert reg.hopeless(2) and not reg.hopeless(1) and not reg.exhausted
    reg.views[0].refill_pending = True  # a refill may still bring more
    assert not reg.hopeless(2)
