"""Random interleavings of buyers, refills, retirements, refreshes and duplicate tickets.

Hypothesis picks, op by op, which running task (a buyer's request, a spawned
refill or retirement, a registry refresh, a replayed refill ticket) takes its
next step on the serial reference interpreter (:mod:`engine.testing`: the
scripts' twins). After every single step stock must be
conserved (in flight included), nothing oversold, no sub-domain above its size,
and no ticket may have moved stock twice.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

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
