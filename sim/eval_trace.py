"""The Eval ops a simulated sale sends to Redis, in order: a realistic load for calibration.

``flashsim calibrate`` replays these on a real Redis to time every registered
script with the arguments and state it really meets (the twins and the Lua
scripts agree, so the replay walks through the same states). Recording wraps
:meth:`sim.servers.redis_node.RedisCluster.submit` for the duration of one
:func:`record` call only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from engine.ops import Eval
from engine.scenario import Scenario
from engine.strategies import STRATEGIES
from sim.interpreter import Task
from sim.servers.redis_node import RedisCluster
from sim.world import simulate

# A small sale that exercises every script of every strategy: sells out (pool
# injections, partition retirements, sold-out answers), flushes detail records
# by count and by period, applies batches and reconciles at the end.
TRACE_SALE = ("workload.window=1.5", "workload.timeout=inf", "redis.nodes=2", "pipeline.threshold=20",
              "pipeline.period=0.25", "pipeline.batch_size=50")


@contextlib.contextmanager
def _recording(into: list[Eval]) -> Iterator[None]:
    original = RedisCluster.submit

    def submit(self: RedisCluster, op: Eval, task: Task, cpu: float = 0.0) -> None:
        into.append(op)
        original(self, op, task, cpu)

    RedisCluster.submit = submit  # type: ignore[method-assign]
    try:
        yield
    finally:
        RedisCluster.submit = original  # type: ignore[method-assign]


# (strategy, extra overrides): together they send every script the strategies use.
VARIANTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("single_redis", ()),
    ("single_redis", ("pipeline.enabled=false",)),
    ("sharded", ()),
    ("sharded", ("pipeline.enabled=false", "sharded.return_stranded=true")),
    ("db_conditional", ("db.read_cache=true",)),
)


def record(stock: int = 3000, seed: int = 0,
           variants: tuple[tuple[str, tuple[str, ...]], ...] = VARIANTS) -> list[list[Eval]]:
    """Per variant, the Eval ops one simulated sale of ``stock`` units (to 4/3 as many buyers) sends
    (setup, sale, drain), in send order."""
    base = Scenario().with_overrides([*TRACE_SALE, f"sale.stock={stock}", f"workload.buyers={stock * 4 // 3}"])
    traces = []
    for name, extra in variants:
        if name not in STRATEGIES:
            continue
        ops: list[Eval] = []
        with _recording(ops):
            simulate(base.with_overrides(list(extra)), seed, name)
        traces.append(ops)
    return traces
