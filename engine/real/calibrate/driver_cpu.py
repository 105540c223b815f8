"""The real driver's own CPU: per request, per Redis op, per local refusal, per pipeline record,
and per event-loop turn.

CPU is process time (user + system) of this process and of the worker
processes it forked and reaped (``os.times``), over small real runs of
``single_redis`` against the calibration node. Each figure is a difference
between two runs that differ only in length, so start-up, connection set-up and
clean-up cancel.

The driver's CPU per request depends on how busy it is: measured here
(2026-12-02, one worker, single_redis) it was 180-230 us per request at 1,000-3,000
buyers/s, 96 us at 10,000/s and 48 us at 20,000/s. A busy event loop handles
many requests per turn (one poll, one write per lane for a whole pipeline); an
idle one wakes up for each. So the CPU is measured in the two regimes:

- **busy**: closed loop, ``BUSY_USERS`` users, no think time, plenty of stock:
  the per-request CPU of a saturated driver, ``cpu_request + cpu_op`` (and
  ``cpu_arg`` per key and argument of the op);
- **single**: one closed-loop user, no think time: the loop sleeps while the
  request is at Redis and wakes for its reply, one turn per request that no
  other request shares, so ``single - busy`` is the CPU of a turn
  (``app.cpu_wakeup``). Measured here: 210 us per request single against 66 us
  busy (the driver's per-turn costs, the poll and the socket calls, and redis-py
  packing and parsing one command at a time);
- **refusing**: the busy run with no stock and the sold-out flag on (after the
  first sold-out answer every request is refused without an op): what a refusal
  costs beyond ``cpu_request`` (``cpu_refusal``, 0 when lower: measured here a
  refusal costs less than ``cpu_request``, which the model cannot express; see
  docs/calibration.md);
- **recording**: the busy run with the async pipeline on (needs the database):
  the difference per request is the CPU the pipeline spends per record (collect,
  publish, consume, apply, mark: ``app.cpu_record``);
- **per argument**: packing ``EVALSHA`` commands of 3 and of 13 keys and
  arguments with the driver's connection (``pack_commands``, in this process):
  ``app.cpu_arg`` is the difference per item; ``cpu_op`` is then what a
  ``deduct`` op (3 items) costs beyond its items, and the recording figure
  leaves out the detail-writing op's extra items;
- **op alone**: the driver's interpreter and lanes running ``n`` tasks of one and
  of three EVALSHAs each (all started at once), in this process; three rounds,
  alternated, medians: ``cpu_op`` (its items' share, ``cpu_arg`` each, taken off);
  ``cpu_request`` is then *busy* minus this op.

The longer busy run also gives the mean pipeline depth the driver reached
(EVALSHA calls per read, from the server's counters).
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


BUSY_USERS = 64


def _closed(target: RedisTarget, node: Node, scenario: Scenario, seconds: float, workers: int, namespace: str,
            db_url: str | None) -> DriverRun:
    scenario = scenario.with_overrides([f"workload.duration={seconds!r}"])
    client = node.client()
    try:
        before = counters(client)
        cpu = _cpu()
        result = run_real(scenario, 0, "single_redis", RealOptions(target, namespace=namespace, workers=workers,
                                                                   db_url=db_url, sample_interval=3600.0))
        cpu = _cpu() - cpu
        after = counters(client)
    finally:
        client.close()
    if not result.ok:
        raise TargetError(f"calibration run broke an invariant: {result.violations[0]}")
    requests = result.requests
    return DriverRun(len(requests), cpu, len(requests), int(requests["ops"].sum()),
                     int((requests["outcome"] == "ok").sum()), int((requests["ops"] == 0).sum()),
                     after["evalsha_calls"] - before["evalsha_calls"], after["reads"] - before["reads"])


PACKS = 20_000


def _pack_cpu(items: int) -> float:
    """Process CPU of packing PACKS EVALSHA commands of ``items`` keys and arguments (no server involved).

    With the driver's own packer (:class:`engine.real.resp.EvalPacker`), as it runs: the same keys
    every time (a script's keys repeat, their encoding is cached), fresh arguments each command, half
    the items keys, half arguments, as in the strategies' ops.
    """
    from engine.real.resp import EvalPacker

    packer = EvalPacker()
    sha = "0" * 40
    keys = tuple(f"{{ns}}:key{i}" for i in range(items // 2))
    argsets = [tuple(range(k, k + items - items // 2)) for k in range(100)]
    start = time.process_time()
    for _ in range(PACKS // 100):
        b"".join([packer.pack(sha, keys, args) for args in argsets])
    return time.process_time() - start


def op_items(scenario: Scenario) -> int:
    """Keys and arguments of the first Redis op of a ``single_redis`` buyer under ``scenario``."""
    import numpy as np

    from engine.model import Request
    from engine.strategies import strategy_class

    strat = strategy_class("single_redis")(scenario, np.random.default_rng(0), namespace="items")
    gen = strat.deduct(Request(0, 1, 0.0, 0))
    op = next(gen)
    while not isinstance(op, Eval):
        op = gen.send(0.0)
    gen.close()
    return len(op.keys) + len(op.args)


def measure(target: RedisTarget, node: Node, namespace: str, buyers: int, workers: int,
            seconds: float, db_url: str | None = None) -> dict[str, Any]:
    """The driver's CPU figures (see the module docstring) from runs of ``seconds`` and ``2 * seconds``;
    the pipeline's per-record CPU only when a database is given (``db_url``)."""
    base = Scenario().with_overrides([
        "workload.kind=closed", "workload.timeout=inf", "pipeline.enabled=false", "redis.nodes=1",
        f"workload.users={BUSY_USERS}", "workload.think={kind='deterministic', mean=0.0}",
    ])
    busy = base.with_overrides(["sale.stock=1000000000", "sale.soldout_flag=false"])
    kinds = [
        ("busy", busy),
        ("single", busy.with_overrides(["workload.users=1"])),
        ("refusing", base.with_overrides(["sale.stock=0", "sale.soldout_flag=true"])),
    ]
    if db_url:
        kinds.append(("recording", busy.with_overrides(["pipeline.enabled=true"])))
    runs = {}
    for label, scenario in kinds:
        runs[label] = [_closed(target, node, scenario, d, workers, f"{namespace}-{label}{i}", db_url)
                       for i, d in enumerate((seconds, 2 * seconds))]
    ones, threes = [], []
    for round_ in range(ROUNDS):  # alternated, medians: one slow round does not decide
        ones.append(asyncio.run(_op_tasks(target, f"{namespace}-ops1r{round_}", buyers, 1, 4)))
        threes.append(asyncio.run(_op_tasks(target, f"{namespace}-ops3r{round_}", buyers, 3, 4)))
    one, three = statistics.median(ones), statistics.median(threes)
    small, big = [], []
    for _ in range(ROUNDS):
        small.append(_pack_cpu(3))
        big.append(_pack_cpu(13))
    cpu_arg = max(0.0, (statistics.median(big) - statistics.median(small)) / (10 * PACKS))
    deduct_items = op_items(busy)
    detail_items = op_items(busy.with_overrides(["pipeline.enabled=true"]))
    cpu_op_all = max(0.0, (three - one) / (2 * buyers))  # a deduct op, its items included
    cpu_op = max(0.0, cpu_op_all - cpu_arg * deduct_items)

    def per_request(pair: list[DriverRun]) -> float:
        short, long = pair
        if long.requests <= short.requests:
            raise TargetError(f"calibration: the longer run served no more requests ({long.requests:,}) than the "
                              f"shorter ({short.requests:,}); the driver or a server stalled")
        return (long.cpu - short.cpu) / (long.requests - short.requests)

    busy_cpu = per_request(runs["busy"])
    single_cpu = per_request(runs["single"])
    refusing_cpu = per_request(runs["refusing"])
    cpu_request = max(0.0, busy_cpu - cpu_op_all)
    cpu_refusal = max(0.0, refusing_cpu - cpu_request)
    cpu_record = (max(0.0, per_request(runs["recording"]) - busy_cpu - cpu_arg * (detail_items - deduct_items))
                  if "recording" in runs else None)
    long = runs["busy"][1]
    depth = long.evalsha / long.reads if long.reads > 0 else math.nan
    return {"cpu_request": cpu_request, "cpu_op": cpu_op, "cpu_refusal": cpu_refusal, "cpu_record": cpu_record,
            "cpu_arg": cpu_arg, "op_items": {"deduct": deduct_items, "deduct_detail": detail_items},
            "refusing": refusing_cpu,
            "cpu_wakeup": max(0.0, single_cpu - busy_cpu), "busy": busy_cpu, "single": single_cpu,
            "pipeline_depth": depth, "workers": workers, "seconds": seconds,
            "runs": {label: [vars(r) for r in pair] for label, pair in runs.items()},
            "op_tasks": {"tasks": buyers, "cpu_1_op": ones, "cpu_3_ops": threes}}
