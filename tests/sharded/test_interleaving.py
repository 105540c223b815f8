"""Random interleavings of buyers, refills, retirements, refreshes, duplicate tickets, crashes and recoveries.

Hypothesis picks, op by op, which running task (a buyer's request, a spawned
refill or retirement, a registry refresh, a replayed refill ticket) takes its
next step on the serial reference interpreter (:mod:`engine.testing`: the
scripts' twins). After every single step stock must be
conserved (in flight included), nothing oversold, no sub-domain above its size,
and no ticket may have moved stock twice.
"""

from __future__ import annotations

import copy

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from engine.model import Request
from engine.scenario import Scenario
from engine.sharded.strategy import Refill, Sharded
from engine.tasks import TaskKind
from engine.testing import Reference

STEPPED = (TaskKind.SETUP, TaskKind.REQUEST, TaskKind.SPAWN, TaskKind.DRAIN)  # refreshes are stepped on their own


def check(ref: Reference, strategy: Sharded) -> None:
    assert ref.errors.count == 0, ref.errors.first  # no buyer raised
    inventory = strategy.inventory(ref.read)
    assert inventory.violations() == []
    store = ref.store
    size = strategy.cfg.subdomain_size
    for part in strategy.parts:
        assert store.get(part.a, 0) <= size and store.get(part.b, 0) <= size
        applied = store.get(part.applied, {})
        assert sum(applied.values()) == store.get(part.received, 0)  # each ticket credited once
    tickets = store.get(strategy.pool.tickets, {})
    issued = sum(v for k, v in tickets.items() if not k.startswith(("back:", "retire:")))
    assert issued == sum(store.get(strategy.pool.issued(i), 0) for i in range(len(strategy.parts)))
    back = sum(v for k, v in tickets.items() if k.startswith(("back:", "retire:")))  # each return credited once
    assert back == sum(store.get(strategy.pool.back(i), 0) for i in range(len(strategy.parts)))


STEPS = st.lists(st.tuples(st.sampled_from(["buy", "buy", "buy", "step", "step", "step", "step", "refresh",
                                            "replay"]),
                           st.integers(0, 10**6), st.integers(1, 3)), min_size=20, max_size=300)


@settings(max_examples=60, deadline=None)
@given(steps=STEPS, give_back=st.booleans(), policy=st.sampled_from(["random", "p2c", "round_robin"]))
def test_every_interleaving_conserves_stock(steps, give_back, policy):
    scenario = Scenario().with_overrides([
        "sale.stock=60", "redis.nodes=2", "sharded.partitions=3", "sharded.subdomain_size=6",
        "sharded.threshold=2", "sharded.preallocation=8", "sharded.injection=5", "app.instances=2",
        f"sharded.policy={policy}", f"sharded.return_stranded={str(give_back).lower()}",
        "sharded.refill_wait=0.01", "sharded.wait_step=0.005", "sharded.fallback=1", "pipeline.enabled=false",
    ])
    strategy = Sharded(scenario, np.random.default_rng(0), namespace="i")
    ref = Reference()
    ref.start(strategy.setup(), TaskKind.SETUP)
    ref.settle((TaskKind.SETUP,))
    strategy.oracle = ref.read
    check(ref, strategy)
    refreshers = [ref.start(strategy._refresher(app, i), TaskKind.BACKGROUND) for app in strategy.apps for i in range(3)]
    buyers = 0
    for action, pick, qty in steps:
        if action == "buy":
            ref.start(strategy.deduct(Request(buyers, qty, ref.t, buyers % 2)), TaskKind.REQUEST)
            buyers += 1
        elif action == "refresh":
            ref.step(refreshers[pick % len(refreshers)])  # one op of a refresh loop
        elif action == "replay":
            jobs = [job for app in strategy.apps for job in app.jobs if isinstance(job, Refill)]
            if jobs:  # a duplicate run of a ticket (a recovery racing the first run)
                ref.start(strategy._refill(strategy.apps[0], jobs[pick % len(jobs)]), TaskKind.SPAWN)
        live = ref.live(*STEPPED)
        if action == "step" and live:
            ref.step(live[pick % len(live)])
        check(ref, strategy)
    ref.settle((TaskKind.REQUEST, TaskKind.SPAWN))
    check(ref, strategy)
    sold = strategy.inventory(ref.read).sold
    assert sold <= 60
    ref.start(strategy.drain(), TaskKind.DRAIN)
    ref.settle((TaskKind.DRAIN, TaskKind.SPAWN))
    check(ref, strategy)
    if give_back:
        assert all(ref.store[p.a] == ref.store[p.b] == 0 for p in strategy.parts)


class CrashesAndRecoveries(RuleBasedStateMachine):
    """Sales, transfers, crashes at any step (a task dropped between two ops) and recoveries, interleaved.

    After every step: conservation (in flight included), nothing oversold, no ticket applied
    twice. Once no transfer task is left running, a recovery of every partition must leave
    nothing in flight, and a second one must change nothing.
    """

    def __init__(self) -> None:
        super().__init__()
        scenario = Scenario().with_overrides([
            "sale.stock=60", "redis.nodes=2", "sharded.partitions=3", "sharded.subdomain_size=6",
            "sharded.threshold=2", "sharded.preallocation=8", "sharded.injection=5", "app.instances=2",
            "sharded.policy=round_robin", "sharded.refill_wait=0.01", "sharded.wait_step=0.005",
            "sharded.fallback=1", "pipeline.enabled=false",
        ])
        self.strategy = Sharded(scenario, np.random.default_rng(0), namespace="c")
        self.ref = Reference()
        self.ref.run(self.strategy.setup(), TaskKind.SETUP)
        self.strategy.oracle = self.ref.read
        self.refreshers = [self.ref.start(self.strategy._refresher(app, i), TaskKind.BACKGROUND)
                           for app in self.strategy.apps for i in range(3)]
        self.buyers = 0

    def transfers(self) -> list:
        return self.ref.live(TaskKind.SPAWN, TaskKind.DRAIN)

    @rule(qty=st.integers(1, 3))
    def buy(self, qty: int) -> None:
        self.ref.start(self.strategy.deduct(Request(self.buyers, qty, self.ref.t, self.buyers % 2)), TaskKind.REQUEST)
        self.buyers += 1

    @rule(pick=st.integers(0, 10**6))
    def step(self, pick: int) -> None:
        live = self.ref.live(TaskKind.REQUEST, TaskKind.SPAWN, TaskKind.DRAIN)
        if live:
            self.ref.step(live[pick % len(live)])

    @rule(pick=st.integers(0, 10**6))
    def refresh(self, pick: int) -> None:
        self.ref.step(self.refreshers[pick % len(self.refreshers)])

    @rule(pick=st.integers(0, 10**6))
    def crash(self, pick: int) -> None:
        live = self.ref.live(TaskKind.REQUEST, TaskKind.SPAWN, TaskKind.DRAIN)
        if live:
            self.ref.abandon(live[pick % len(live)])  # the app dies wherever this task stands

    @rule(partition=st.integers(0, 2), units=st.integers(1, 6))
    def top_up(self, partition: int, units: int) -> None:
        app = self.strategy.apps[partition % 2]
        app.topups += 1  # as the refresh starts one for a starving partition
        job = Refill(partition, -1, f"top:a{app.index}:{app.topups}", units, -1)
        self.ref.start(self.strategy._spawn(app, job).gen, TaskKind.SPAWN)

    @rule(pick=st.integers(0, 10**6))
    def crash_a_transfer(self, pick: int) -> None:
        live = self.transfers()
        if live:
            self.ref.abandon(live[pick % len(live)])  # a refill, top-up, retirement or the drain dies mid-way

    @rule(partition=st.integers(0, 2), older_than=st.sampled_from([0.0, 0.01]))
    def recover(self, partition: int, older_than: float) -> None:
        self.ref.run(self.strategy.recover(partition, older_than), TaskKind.BACKGROUND)

    @rule()
    def retire_the_rest(self) -> None:
        if not self.ref.live(TaskKind.DRAIN):
            self.ref.start(self.strategy.drain(), TaskKind.DRAIN)  # returns every partition's stock

    @precondition(lambda self: not self.transfers())
    @rule()
    def recover_everything(self) -> None:
        for i in range(3):
            self.ref.run(self.strategy.recover(i), TaskKind.BACKGROUND)
        assert self.strategy.inventory(self.ref.read).in_flight == {}
        snapshot = copy.deepcopy(self.ref.store)
        for i in range(3):
            self.ref.run(self.strategy.recover(i), TaskKind.BACKGROUND)
        assert self.ref.store == snapshot

    @invariant()
    def conserved(self) -> None:
        check(self.ref, self.strategy)
        assert self.strategy.inventory(self.ref.read).sold <= 60


CrashesAndRecoveries.TestCase.settings = settings(max_examples=40, stateful_step_count=50, deadline=None,
                                                  derandomize=True)
test_crashes_and_recoveries = CrashesAndRecoveries.TestCase
