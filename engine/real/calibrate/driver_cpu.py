"""The real driver's own CPU: per request, per Redis op, per local refusal.

CPU is process time (user + system) of this process and of the worker
processes it forked and reaped (``os.times``), over small real runs of
``single_redis`` against the calibration node. Each figure is a difference
between two runs that differ only in size, so start-up, connection set-up and
clean-up cancel:

Buyers arrive at one fixed rate in every run (the window grows with their number).

- request + op: ``single_redis`` with plenty of stock and no sold-out flag (one
  EVALSHA per request), ``n`` and ``2n`` buyers;
- request + refusal: no stock and the sold-out flag on (after the first sold-out
  answer every request is refused without an op), ``n`` and ``2n`` buyers;
- op alone: the driver's interpreter and lanes running ``n`` tasks of one and
  of three EVALSHAs each (all started at once), in this process; three rounds,
  alternated, medians.

The bigger of each pair of runs also gives the mean pipeline depth the driver
reached (EVALSHA calls per read, from the server's counters).
"""

from __future__ import annotations

import asyncio
import math
import os
import statistics
import time
from dataclasses import dataclass
from typing import Any

from engine.ops import Eval
from engine.real.calibrate.redis_costs import Node, counters
from engine.real.interpreter import RealInterpreter
from engine.real.links import RedisLinks
from engine.real.run import RealOptions, run_real
from engine.real.target import RedisTarget, TargetError, discover
from engine.scenario import Scenario

ROUNDS = 3


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


@dataclass(frozen=True)
class DriverRun:
    buyers: int
    cpu: float
    requests: int
    ops: int
    ok: int
    refused: int
    evalsha: float
    reads: float


def _run(target: RedisTarget, node: Node, scenario: Scenario, buyers: int, rate: float, workers: int,
         namespace: str) -> DriverRun:
    scenario = scenario.with_overrides([f"workload.buyers={buyers}", f"workload.window={buyers / rate}"])
    client = node.client()
    try:
        before = counters(client)
        cpu = _cpu()
        result = run_real(scenario, 0, "single_redis", RealOptions(target, namespace=namespace, workers=workers))
        cpu = _cpu() - cpu
        after = counters(client)
    finally:
        client.close()
    if not result.ok:
        raise TargetError(f"calibration run broke an invariant: {result.violations[0]}")
    requests = result.requests
    return DriverRun(buyers, cpu, len(requests), int(requests["ops"].sum()),
                     int((requests["outcome"] == "ok").sum()), int((requests["ops"] == 0).sum()),
                     after["evalsha_calls"] - before["evalsha_calls"], after["reads"] - before["reads"])


async def _op_tasks(target: RedisTarget, namespace: str, tasks: int, ops_each: int, lanes: int) -> float:
    """Process CPU of ``tasks`` concurrent tasks of ``ops_each`` deducts through the driver's lanes."""
    topology = await discover(target)
    loop = asyncio.get_running_loop()
    interpreter = RealInterpreter(loop, loop.time())
    links = RedisLinks(target, topology, interpreter, lanes)
    await links.open()
    interpreter.redis = links
    stock, sold = f"{{{namespace}}}:drv:stock", f"{{{namespace}}}:drv:sold"
    client = target.client()
    try:
        await client.set(stock, 10**15)
        finished: asyncio.Future[None] = loop.create_future()
        left = [tasks]

        def request() -> Any:
            for _ in range(ops_each):
                yield Eval("deduct", (stock, sold), (1,))

        def done(_task: Any, _value: Any) -> None:
            left[0] -= 1
            if left[0] == 0:
                finished.set_result(None)

        start = time.process_time()
        for _ in range(tasks):
            interpreter.start(request(), done)
        await interpreter.until(finished)
        return time.process_time() - start
    finally:
        await client.delete(stock, sold)
        await client.aclose()
        await links.close()


def measure(target: RedisTarget, node: Node, namespace: str, buyers: int, workers: int,
            rate: float) -> dict[str, Any]:
    """CPU per request, per op and per refusal of the real driver at ``rate`` buyers per second."""
    base = Scenario().with_overrides([
        "workload.timeout=inf", "pipeline.enabled=false", "report.timeline_interval=3600", "redis.nodes=1",
    ])
    selling = base.with_overrides([f"sale.stock={10 * buyers}", "sale.soldout_flag=false"])
    refusing = base.with_overrides(["sale.stock=0", "sale.soldout_flag=true"])
    runs = {}
    for label, scenario in (("selling", selling), ("refusing", refusing)):
        runs[label] = [_run(target, node, scenario, n, rate, workers, f"{namespace}-{label}{i}")
                       for i, n in enumerate((buyers, 2 * buyers))]
    ones, threes = [], []
    for round_ in range(ROUNDS):  # alternated, medians: one slow round does not decide
        ones.append(asyncio.run(_op_tasks(target, f"{namespace}-ops1r{round_}", buyers, 1, 4)))
        threes.append(asyncio.run(_op_tasks(target, f"{namespace}-ops3r{round_}", buyers, 3, 4)))
    one, three = statistics.median(ones), statistics.median(threes)
    cpu_op = max(0.0, (three - one) / (2 * buyers))

    def per_request(pair: list[DriverRun]) -> float:
        small, big = pair
        return (big.cpu - small.cpu) / (big.requests - small.requests)

    request_and_op = per_request(runs["selling"])
    cpu_request = max(0.0, request_and_op - cpu_op)
    cpu_refusal = max(0.0, per_request(runs["refusing"]) - cpu_request)
    big = runs["selling"][1]
    depth = big.evalsha / big.reads if big.reads > 0 else math.nan
    return {"cpu_request": cpu_request, "cpu_op": cpu_op, "cpu_refusal": cpu_refusal,
            "pipeline_depth": depth, "workers": workers, "rate": rate,
            "runs": {label: [vars(r) for r in pair] for label, pair in runs.items()},
            "op_tasks": {"tasks": buyers, "cpu_1_op": ones, "cpu_3_ops": threes}}
