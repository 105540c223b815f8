"""Capacity planning: the fewest shards and app instances that carry a sustained peak within a latency SLO.

``plan(peak, p99)`` offers Poisson load at ``peak`` requests/s to the
``sharded`` strategy for the scenario's ``workload.duration``, with stock that
outlasts it (at least ``STOCK_MARGIN`` x peak x duration x the largest
quantity), so every probe measures the steady state of a sale in full swing,
not the local refusals after a sell-out. Latency is judged on the requests that
arrive after a warm-up (``report.warmup``, default ``WARMUP_SHARE`` of the
span: the summary's ``steady_p99``).

Two searches, each doubling until a value passes, then bisecting down to the
smallest one that does:

1. the shard count (``redis.nodes``, ``partitions_per_node`` partitions on
   each) with a generous fleet (``max_instances`` app instances), trying
   several sub-domain sizes at each count (threshold, pre-allocation and
   injection scaled with the size as in the defaults);
2. the fleet (``app.instances``, ``app.workers`` each as the scenario says) at
   that shard count and its smallest passing sub-domain size.

A candidate passes when **every** replication has steady p99 <= the SLO, no
false sold-out and no broken invariant. The p99 is over every buyer
(``of="all"``) or over successful buyers only (``of="ok"``).

Each candidate also names the tier that limits it (:func:`limiting_tier`): the
one whose busiest server — Redis node (``util_node*``) or app instance
(``app_util_max``) — is the more utilised, or ``NEITHER`` when it passes. The
plan table (:attr:`Plan.table`, ``plan.csv``) shows the answer beside the
largest failing configuration of each dimension: one shard count fewer (or the
last one the doubling failed at), and the fleet just too small.

Every probe is an ordinary sweep saved under ``results/plan/...``: those runs
are the evidence (``evidence.csv``: every candidate probed).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from engine.scenario import Scenario, ScenarioError
from engine.strategies import STRATEGIES
from sim.bench.runner import RESULTS_ROOT, run_sweep
from sim.bench.sweep import Params, Sweep

STRATEGY = "sharded"
SHARD_KEY = "redis.nodes"
FLEET_KEY = "app.instances"
DEFAULT_SIZES = (50, 200, 1000)
DEFAULT_MAX_INSTANCES = 64
STOCK_MARGIN = 2          # stock >= this x peak x duration x largest qty: it never runs out during a probe
WARMUP_SHARE = 0.2        # default warm-up: this share of the span
LATENCY = {"all": "steady_p99", "ok": "steady_ok_p99"}  # whose p99 the SLO is about -> the run figure
NEITHER = "neither: SLO met"
CANDIDATE = ["shards", "partitions", "subdomain_size", "instances"]
TABLE_COLUMNS = ["role", *CANDIDATE, "p99_worst", "goodput_mean", "redis_util_max", "app_util", "app_util_max",
                 "app_wait_mean", "false_sold_outs", "failed", "limit"]


@dataclass
class Plan:
    """The answer (None when even ``max_shards`` fails), the plan table and the runs behind them."""

    peak: float
    p99: float
    stock: int
    answer: dict[str, Any] | None
    table: pd.DataFrame      # the answer and the largest failing configuration of each dimension, with the limit
    evidence: pd.DataFrame   # one row per probed candidate: shards, fleet, sub-domain size, worst p99, utilisation, limit
    runs: pd.DataFrame       # every run of every probe
    path: Path
    of: str = "all"
    warmup: float = 0.0
    duration: float = 1.0
    workers: int = 1         # app.workers of every instance

    def describe(self) -> str:
        whose = "" if self.of == "all" else " (successful buyers)"
        head = (f"peak {self.peak:,.0f} req/s sustained for {self.duration:g} s, p99{whose} <= {self.p99 * 1000:g} ms "
                f"after a {self.warmup:g} s warm-up, stock {self.stock:,}")
        if self.answer is None:
            return f"{head}: no candidate up to {self.evidence['shards'].max()} shards meets the SLO"
        a = self.answer
        return (f"{head}: {a['shards']} shard(s) ({a['partitions']} partitions, sub-domain size "
                f"{a['subdomain_size']}) and {a['instances']} app instance(s) x {self.workers} worker(s); "
                f"worst p99 {a['p99_worst'] * 1000:.2f} ms over {a['replications']} replications, "
                f"goodput {a['goodput_mean']:,.0f} req/s, false sold-outs 0")

    def limits(self) -> list[str]:
        """One line per row of the plan table: the configuration, its busiest servers and the limiting tier."""
        lines = []
        for row in self.table.to_dict("records"):
            what = (f"{row['role']}: {row['shards']} shard(s), {row['instances']} instance(s), "
                    f"sub-domain {row['subdomain_size']}")
            busiest = (f"busiest Redis node {row['redis_util_max']:.0%}, busiest app instance "
                       f"{row['app_util_max']:.0%}, app wait {row['app_wait_mean'] * 1000:.3f} ms")
            failed = f"; failed: {row['failed']}" if row["failed"] else ""
            lines.append(f"{what}: p99 {row['p99_worst'] * 1000:.2f} ms ({busiest}{failed}) -> limit {row['limit']}")
        return lines


def require_sharded() -> None:
    if STRATEGY not in STRATEGIES:
        raise ScenarioError(f"flashsim plan needs the {STRATEGY!r} strategy (it sizes its shards), which is not registered; "
                            f"available: {', '.join(STRATEGIES)}")


def sustaining_stock(peak: float, scenario: Scenario) -> int:
    """The fewest units that outlast ``peak`` req/s for the workload's duration, with ``STOCK_MARGIN`` to spare."""
    workload = scenario.workload
    return math.ceil(STOCK_MARGIN * peak * workload.duration * workload.qty.high)


def plan(peak: float, p99: float, stock: int | None = None, scenario: Scenario | None = None, *,
         sizes: tuple[int, ...] = DEFAULT_SIZES, partitions_per_node: int = 4, max_shards: int = 64,
         max_instances: int = DEFAULT_MAX_INSTANCES, warmup: float | None = None,
         replications: int = 3, seed: int = 0, workers: int | None = None, dask: Any = None,
         quiet: bool = False, results_root: str | Path = RESULTS_ROOT, of: str = "all") -> Plan:
    """Smallest shard count (and sub-domain size), then smallest fleet, that meet ``p99`` at a sustained ``peak``."""
    require_sharded()
    if not peak > 0:
        raise ScenarioError(f"--peak must be > 0 requests/s (got {peak})")
    if not p99 > 0:
        raise ScenarioError(f"--p99 must be > 0 seconds (got {p99})")
    if of not in LATENCY:
        raise ScenarioError(f"--of must be one of {', '.join(LATENCY)} (got {of!r})")
    if not sizes or min(sizes) < 1:
        raise ScenarioError(f"sub-domain sizes must be >= 1 (got {sizes})")
    if not 1 <= max_instances <= 1024:
        raise ScenarioError(f"--max-instances must be in 1..1024 (got {max_instances})")
    base = (scenario or Scenario()).with_overrides(["strategy=sharded", "workload.kind=poisson",
                                                     f"workload.rate={float(peak)!r}"])
    duration = base.workload.duration
    needed = sustaining_stock(peak, base)
    if stock is None:
        stock = max(base.sale.stock, needed)
    elif stock < needed:
        raise ScenarioError(f"--stock {stock:,} could sell out within the {duration:g} s of load: the plan sizes "
                            f"for sustained load and needs >= {needed:,} ({STOCK_MARGIN} x peak x duration x qty); "
                            f"leave --stock out to get that")
    warmup = WARMUP_SHARE * duration if warmup is None else warmup
    if not 0 <= warmup < duration:
        raise ScenarioError(f"--warmup must be >= 0 and shorter than workload.duration {duration:g} s (got {warmup:g})")
    base = base.with_overrides([f"sale.stock={stock}", f"report.warmup={float(warmup)!r}"])
    template = Sweep(name="plan", base=base, points=((),), strategies=(STRATEGY,), replications=replications,
                     seed=seed, description=f"plan: peak {peak} req/s sustained, p99 <= {p99} s")
    latency = LATENCY[of]
    probed: list[Params] = []

    def meets(points: tuple[Params, ...]) -> pd.DataFrame:
        """Run ``points`` (what is already on disk is reused) and judge them."""
        for point in points:
            if point not in probed:
                probed.append(point)
        result = run_sweep(replace(template, points=points), workers=workers, dask=dask, quiet=quiet,
                           results_root=results_root)
        return judge(result.runs, p99, latency)

    def shards_pass(shards: int) -> bool:
        points = tuple(candidate(shards, size, partitions_per_node, max_instances) for size in sizes)
        return bool(meets(points)["meets"].any())

    fewer_shards, shards = smallest_passing(shards_pass, max_shards)
    size = instances = smaller_fleet = 0
    if shards:
        size = _smallest_passing_size(meets(tuple(candidate(shards, s, partitions_per_node, max_instances)
                                                  for s in sizes)))

        def fleet_passes(fleet: int) -> bool:
            return bool(meets((candidate(shards, size, partitions_per_node, fleet),))["meets"].all())

        smaller_fleet, instances = smallest_passing(fleet_passes, max_instances)
        assert instances, "the generous fleet passed the shard search: the fleet search cannot fail"

    # Every probe's runs are already on disk: this pass only consolidates them into one table.
    final = run_sweep(replace(template, points=tuple(probed)), workers=1, quiet=True, results_root=results_root)
    runs = final.runs
    evidence = judge(runs, p99, latency).sort_values(CANDIDATE, ignore_index=True)
    pick = _picker(evidence)
    rows: list[tuple[str, pd.Series | None]] = []
    answer = None
    if shards:
        chosen = pick(shards, size, instances)
        assert chosen is not None
        answer = chosen.to_dict()
        rows.append(("answer", chosen))
        if fewer_shards:
            rows.append(("fewer shards", pick(fewer_shards, size, max_instances)))
        if smaller_fleet:
            rows.append(("smaller fleet", pick(shards, size, smaller_fleet)))
    else:
        at_most = evidence[(evidence["shards"] == fewer_shards) & (evidence["instances"] == max_instances)]
        rows.append(("max shards", at_most.sort_values("p99_worst").iloc[0]))
    table = pd.DataFrame([{"role": role, **row.to_dict()} for role, row in rows if row is not None])[TABLE_COLUMNS]
    evidence.to_csv(final.path / "evidence.csv", index=False)
    table.to_csv(final.path / "plan.csv", index=False)
    return Plan(peak, p99, stock, answer, table, evidence, runs, final.path, of, warmup, duration,
                base.app.workers)


def smallest_passing(passes: Callable[[int], bool], ceiling: int) -> tuple[int, int]:
    """Doubling from 1 until ``passes``, then bisecting: (largest value known to fail or 0, smallest passing or 0).

    Assumes that more never hurts (a value above a passing one passes). 0 as the second
    item: even ``ceiling`` fails, and the first item is then ``ceiling``.
    """
    low, high = 0, 1  # low: largest value known to fail; high: candidate
    while not passes(high):
        low = high
        if high >= ceiling:
            return low, 0
        high = min(high * 2, ceiling)
    while high - low > 1:
        middle = (low + high) // 2
        if passes(middle):
            high = middle
        else:
            low = middle
    return low, high


def candidate(shards: int, size: int, per_node: int, instances: int) -> Params:
    params = {
        SHARD_KEY: shards,
        "sharded.partitions": shards * per_node,
        "sharded.subdomain_size": size,
        "sharded.threshold": max(1, size // 5),
        "sharded.preallocation": 2 * size,
        "sharded.injection": size,
        FLEET_KEY: instances,
    }
    return tuple(sorted(params.items()))


def false_sold_outs(runs: pd.DataFrame) -> pd.Series:
    """The strategy's own false sold-out count when it reports one, else the generic lower bound."""
    own = [c for c in runs.columns if c.startswith("false_sold")]
    return runs[own[0]].fillna(0) if own else runs["refused_with_stock"]


def redis_util_max(runs: pd.DataFrame) -> pd.Series:
    """Per run: the utilisation of its busiest Redis node."""
    nodes = [c for c in runs.columns if c.startswith("util_node")]
    return runs[nodes].max(axis=1, skipna=True) if nodes else pd.Series(0.0, index=runs.index)


def _app_figure(runs: pd.DataFrame, name: str) -> pd.Series:
    """An app-tier figure per run; 0 where the run has none (an app tier that costs no CPU never queues)."""
    return runs[name].fillna(0.0) if name in runs else pd.Series(0.0, index=runs.index)


def judge(runs: pd.DataFrame, p99: float, latency: str = LATENCY["all"]) -> pd.DataFrame:
    """Per candidate: worst p99 (run figure ``latency``) over replications, utilisation, verdict and limiting tier."""
    frame = runs.assign(false_sold_outs=false_sold_outs(runs), redis_util_max=redis_util_max(runs),
                        app_util=_app_figure(runs, "app_util"), app_util_max=_app_figure(runs, "app_util_max"),
                        app_wait_mean=_app_figure(runs, "app_wait_mean"))
    keys = [SHARD_KEY, "sharded.partitions", "sharded.subdomain_size", FLEET_KEY]
    table = frame.groupby(keys, sort=True).agg(
        replications=("run_key", "size"), p99_worst=(latency, "max"), p99_mean=(latency, "mean"),
        goodput_mean=("goodput", "mean"), false_sold_outs=("false_sold_outs", "sum"),
        violations=("violations", "sum"), timeouts=("timeout", "sum"), redis_util_max=("redis_util_max", "mean"),
        app_util=("app_util", "mean"), app_util_max=("app_util_max", "mean"),
        app_wait_mean=("app_wait_mean", "mean")).reset_index()
    table = table.rename(columns=dict(zip(keys, CANDIDATE)))
    slow = ~(table["p99_worst"] <= p99)  # NaN (no request after the warm-up) fails too
    table["failed"] = [", ".join(name for name, bad in (("p99", s), ("false sold-outs", f), ("violations", v)) if bad)
                       for s, f, v in zip(slow, table["false_sold_outs"] > 0, table["violations"] > 0)]
    table["meets"] = table["failed"] == ""
    table["limit"] = [limiting_tier(row) for row in table.to_dict("records")]
    return table


def limiting_tier(row: dict[str, Any]) -> str:
    """``NEITHER`` for a passing candidate; else the tier whose busiest server is the more utilised.

    A candidate that is fast enough but fails on false sold-outs or an invariant is put
    down to Redis: how the stock is split over the shards' partitions is the cause.
    """
    if row["meets"]:
        return NEITHER
    if "p99" in row["failed"] and row["app_util_max"] > row["redis_util_max"]:
        return "app"
    return "redis"


def _smallest_passing_size(judged: pd.DataFrame) -> int:
    return int(judged[judged["meets"]]["subdomain_size"].min())


def _picker(evidence: pd.DataFrame) -> Callable[[int, int, int], pd.Series | None]:
    def pick(shards: int, size: int, instances: int) -> pd.Series | None:
        match = evidence[(evidence["shards"] == shards) & (evidence["subdomain_size"] == size)
                         & (evidence["instances"] == instances)]
        return match.iloc[0] if len(match) else None
    return pick
