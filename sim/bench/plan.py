"""Capacity planning: the fewest shards that carry a peak within a latency SLO, without false sold-outs.

``plan(peak, p99)`` offers Poisson load at ``peak`` requests/s to the
``sharded`` strategy and searches the shard count (``redis.nodes``, with
``partitions_per_node`` partitions on each): doubling until a count passes,
then bisecting down to the smallest passing one. At each count it tries
several sub-domain sizes (threshold, pre-allocation and injection scaled with
the size as in the defaults). A candidate passes when **every** replication
has p99 <= the SLO, no false sold-out, no broken invariant. The p99 is over
every buyer (``of="all"``: sold-out answers count, they are latency a buyer
sees) or over successful buyers only (``of="ok"``). Every probe is an ordinary
sweep saved under ``results/plan/...``: those runs are the evidence.
"""

from __future__ import annotations

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
DEFAULT_SIZES = (50, 200, 1000)
LATENCY = {"all": "p99", "ok": "ok_p99"}  # whose p99 the SLO is about -> the run figure


@dataclass
class Plan:
    """The answer (None when even ``max_shards`` fails) and the runs behind it."""

    peak: float
    p99: float
    stock: int
    answer: dict[str, Any] | None
    evidence: pd.DataFrame   # one row per probed candidate: shards, sub-domain size, worst p99, false sold-outs, pass
    runs: pd.DataFrame       # every run of every probe
    path: Path
    of: str = "all"

    def describe(self) -> str:
        whose = "" if self.of == "all" else " (successful buyers)"
        head = f"peak {self.peak:,.0f} req/s, p99{whose} <= {self.p99 * 1000:g} ms, stock {self.stock:,}"
        if self.answer is None:
            return f"{head}: no candidate up to {self.evidence['shards'].max()} shards meets the SLO"
        a = self.answer
        return (f"{head}: {a['shards']} shard(s) ({a['partitions']} partitions, sub-domain size {a['subdomain_size']}); "
                f"worst p99 {a['p99_worst'] * 1000:.2f} ms over {a['replications']} replications, "
                f"goodput {a['goodput_mean']:,.0f} req/s, false sold-outs 0")


def require_sharded() -> None:
    if STRATEGY not in STRATEGIES:
        raise ScenarioError(f"flashsim plan needs the {STRATEGY!r} strategy (it sizes its shards), which is not registered; "
                            f"available: {', '.join(STRATEGIES)}")


def plan(peak: float, p99: float, stock: int | None = None, scenario: Scenario | None = None, *,
         sizes: tuple[int, ...] = DEFAULT_SIZES, partitions_per_node: int = 4, max_shards: int = 64,
         replications: int = 3, seed: int = 0, workers: int | None = None, dask: Any = None,
         quiet: bool = False, results_root: str | Path = RESULTS_ROOT, of: str = "all") -> Plan:
    """Smallest shard count (and sub-domain size) that meets ``p99`` at ``peak`` with no false sold-outs."""
    require_sharded()
    if not peak > 0:
        raise ScenarioError(f"--peak must be > 0 requests/s (got {peak})")
    if not p99 > 0:
        raise ScenarioError(f"--p99 must be > 0 seconds (got {p99})")
    if of not in LATENCY:
        raise ScenarioError(f"--of must be one of {', '.join(LATENCY)} (got {of!r})")
    if not sizes or min(sizes) < 1:
        raise ScenarioError(f"sub-domain sizes must be >= 1 (got {sizes})")
    base = (scenario or Scenario()).with_overrides(["strategy=sharded", "workload.kind=poisson",
                                                     f"workload.rate={float(peak)!r}"])
    if stock is not None:
        if stock < 1:
            raise ScenarioError(f"--stock must be >= 1 (got {stock})")
        base = base.with_overrides([f"sale.stock={stock}"])
    template = Sweep(name="plan", base=base, points=((),), strategies=(STRATEGY,), replications=replications,
                     seed=seed, description=f"plan: peak {peak} req/s, p99 <= {p99} s")

    probed: list[Params] = []

    def probe(shards: int) -> bool:
        points = tuple(_candidate(shards, size, partitions_per_node) for size in sizes)
        probed.extend(points)
        result = run_sweep(replace(template, points=points), workers=workers, dask=dask, quiet=quiet,
                           results_root=results_root)
        return bool(_judge(result.runs, p99, LATENCY[of])["meets"].any())

    low, high = 0, 1  # low: largest count known to fail; high: candidate
    while not probe(high):
        low = high
        if high >= max_shards:
            high = 0
            break
        high = min(high * 2, max_shards)
    while high and high - low > 1:
        middle = (low + high) // 2
        if probe(middle):
            high = middle
        else:
            low = middle

    # Every probe's runs are already on disk: this pass only consolidates them into one table.
    final = run_sweep(replace(template, points=tuple(probed)), workers=1, quiet=True, results_root=results_root)
    runs = final.runs
    evidence = _judge(runs, p99, LATENCY[of]).sort_values(["shards", "subdomain_size"], ignore_index=True)
    answer = None
    if high:
        passing = evidence[(evidence["shards"] == high) & evidence["meets"]]
        answer = passing.sort_values("subdomain_size").iloc[0].to_dict()
    evidence.to_csv(final.path / "evidence.csv", index=False)
    return Plan(peak, p99, base.sale.stock, answer, evidence, runs, final.path, of)


def _candidate(shards: int, size: int, per_node: int) -> Params:
    params = {
        SHARD_KEY: shards,
        "sharded.partitions": shards * per_node,
        "sharded.subdomain_size": size,
        "sharded.threshold": max(1, size // 5),
        "sharded.preallocation": 2 * size,
        "sharded.injection": size,
    }
    return tuple(sorted(params.items()))


def false_sold_outs(runs: pd.DataFrame) -> pd.Series:
    """The strategy's own false sold-out count when it reports one, else the generic lower bound."""
    own = [c for c in runs.columns if c.startswith("false_sold")]
    return runs[own[0]].fillna(0) if own else runs["refused_with_stock"]


def _judge(runs: pd.DataFrame, p99: float, latency: str = "p99") -> pd.DataFrame:
    """Per candidate: worst p99 (run figure ``latency``) over replications, false sold-outs, and the verdict."""
    frame = runs.assign(false_sold_outs=false_sold_outs(runs))
    grouped = frame.groupby([SHARD_KEY, "sharded.partitions", "sharded.subdomain_size"], sort=True)
    table = grouped.agg(replications=("run_key", "size"), p99_worst=(latency, "max"), p99_mean=(latency, "mean"),
                        goodput_mean=("goodput", "mean"), false_sold_outs=("false_sold_outs", "sum"),
                        violations=("violations", "sum"), timeouts=("timeout", "sum")).reset_index()
    table = table.rename(columns={SHARD_KEY: "shards", "sharded.partitions": "partitions",
                                  "sharded.subdomain_size": "subdomain_size"})
    table["meets"] = (table["p99_worst"] <= p99) & (table["false_sold_outs"] == 0) & (table["violations"] == 0)
    return table
