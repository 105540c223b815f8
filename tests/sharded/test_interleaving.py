"""Random interleavings of buyers, refills, retirements, refreshes and duplicate tickets.

Hypothesis picks, op by op, which running task (a buyer's request, a spawned
refill or retirement, a registry refresh, a replayed refill ticket) takes its
next step against the scripts' twins. After every single step stock must be
conserved (in flight included), nothing oversold, no sub-domain above its size,
and no ticket may have moved stock twice.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import scripts
from engine.model import Request
from engine.ops import Eval, Now, Sleep, Spawn
from engine.scenario import Scenario
from engine.sharded.strategy import Refill, Sharded


class Task:
    def __init__(self, gen, kind: str):
        self.gen, self.kind, self.reply, self.done = gen, kind, None, False


class World:
    """Steps tasks one op at a time; a Sleep just yields the turn."""

    def __init__(self, strategy: Sharded):
        self.strategy = strategy
        self.store: dict = {}
        self.t = 0.0
        self.tasks: list[Task] = []

    def start(self, gen, kind: str) -> None:
        self.tasks.append(Task(gen, kind))

    def step(self, task: Task) -> None:
        try:
            op = task.gen.send(task.reply)
        except StopIteration:
            task.done = True
            return
        task.reply = None
        if isinstance(op, Eval):
            task.reply = scripts.get(op.script).twin(self.store, op.keys, op.args)
        elif isinstance(op, Now):
            task.reply = self.t
        elif isinstance(op, Spawn):
            self.start(op.gen, "job")
        else:
            assert isinstance(op, Sleep)
            self.t += op.seconds

    def settle(self, kinds: tuple[str, ...], limit: int = 10_000) -> None:
        """Run every task of these kinds to completion."""
        for _ in range(limit):
            live = [t for t in self.tasks if not t.done and t.kind in kinds]
            if not live:
                return
            for task in live:  # round robin: a waiting task must not starve the others
                self.step(task)
        raise AssertionError(f"tasks of kinds {kinds} did not finish")

    def check(self) -> None:
        strategy = self.strategy
        inventory = strategy.inventory(self.store.get)
        assert inventory.violations() == []
        size = strategy.cfg.subdomain_size
        for part in strategy.parts:
            assert self.store.get(part.a, 0) <= size and self.store.get(part.b, 0) <= size
            applied = self.store.get(part.applied, {})
            assert sum(applied.values()) == self.store.get(part.received, 0)  # each ticket credited once
        tickets = self.store.get(strategy.pool.tickets, {})
        issued = sum(v for k, v in tickets.items() if not k.startswith(("back:", "retire:")))
        assert issued == sum(self.store.get(strategy.pool.issued(i), 0) for i in range(len(strategy.parts)))


STEPS = st.lists(st.tuples(st.sampled_from(["buy", "buy", "buy", "step", "step", "step", "step", "refresh",
                                            "replay"]),
                           st.integers(0, 10**6), st.integers(1, 3)), min_size=20, max_size=300)


@settings(max_examples=60, deadline=None)
@given(steps=STEPS, give_back=st.booleans(), policy=st.sampled_from(["random", "p2c", "round_robin"]))
def test_every_interleaving_conserves_stock(steps, give_back, policy):
    scenario = Scenario().with_overrides([
        "sale.stock=60", "redis.nodes=2", "sharded.partitions=3", "sharded.subdomain_size=6",
        "sharded.threshold=2", "sharded.preallocation=8", "sharded.injection=5", "sharded.apps=2",
        f"sharded.policy={policy}", f"sharded.return_stranded={str(give_back).lower()}",
        "sharded.refill_wait=0.01", "sharded.wait_step=0.005", "sharded.fallback=1", "pipeline.enabled=false",
    ])
    strategy = Sharded(scenario, np.random.default_rng(0), namespace="i")
    world = World(strategy)
    world.start(strategy.setup(), "setup")
    world.settle(("setup",))
    strategy.oracle = world.store.get
    world.check()
    refreshers = [Task(strategy._refresher(app, i), "refresh") for app in strategy.apps for i in range(3)]
    buyers = 0
    for action, pick, qty in steps:
        if action == "buy":
            world.start(strategy.deduct(Request(buyers, qty, world.t)), "buyer")
            buyers += 1
        elif action == "refresh":
            world.step(refreshers[pick % len(refreshers)])  # one op of a refresh loop
        elif action == "replay":
            jobs = [job for app in strategy.apps for job in app.jobs if isinstance(job, Refill)]
            if jobs:  # a duplicate run of a ticket (a recovery racing the first run)
                world.start(strategy._refill(strategy.apps[0], jobs[pick % len(jobs)]), "job")
        live = [t for t in world.tasks if not t.done]
        if action == "step" and live:
            world.step(live[pick % len(live)])
        world.check()
    world.settle(("buyer", "job"))
    world.check()
    sold = world.strategy.inventory(world.store.get).sold
    assert sold <= 60
    world.start(strategy.drain(), "drain")
    world.settle(("drain", "job"))
    world.check()
    if give_back:
        assert all(world.store[p.a] == world.store[p.b] == 0 for p in strategy.parts)
