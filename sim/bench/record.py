"""What one sweep run keeps: a summary row (parameters, seed, metrics) and optional tables.

:func:`execute` is the function the workers run (a local process or a Dask
worker): it simulates one :class:`~sim.bench.sweep.RunSpec` and returns plain
data, so the driver writes every file and the tables do not depend on where
a run happened.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from engine.model import Outcome
from engine.result import Result
from engine.scenario import Scenario
from sim.bench.sweep import RunSpec
from sim.world import simulate

# Quantile levels kept for latency CDFs: a fine grid plus the tail.
LATENCY_LEVELS = np.unique(np.concatenate([np.linspace(0, 1, 201), [0.995, 0.999, 0.9995, 0.9999]]))


@dataclass
class RunOutput:
    """The row and tables of one run (what crosses the process boundary)."""

    key: str
    row: dict[str, Any]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    wall_seconds: float = 0.0


def execute(spec: RunSpec) -> RunOutput:
    """Simulate one run of a sweep. Deterministic: same spec, same output (bar wall time)."""
    start = time.perf_counter()
    result = simulate(spec.scenario, spec.seed, spec.strategy)
    return RunOutput(spec.key, run_row(spec, result), run_tables(spec, result), time.perf_counter() - start)


def run_row(spec: RunSpec, result: Result) -> dict[str, Any]:
    """Bookkeeping, the varied parameters (dotted column names), offered load, then every summary figure."""
    row: dict[str, Any] = {"run_key": spec.key, "point_id": spec.point_id, "strategy": spec.strategy}
    row.update({key: value for key, value in spec.params})
    row.update({"replication": spec.replication, "seed": spec.seed, "offered_load": offered_load(spec.scenario)})
    for key, value in result.summary.items():
        if key != "strategy":
            row[key] = _plain(value)
    row["refused_with_stock"] = refused_with_stock(result)
    return row


def offered_load(scenario: Scenario) -> float:
    """Requests per second the workload offers (closed loop: NaN, it depends on the replies)."""
    w = scenario.workload
    if w.kind == "burst":
        return w.buyers / w.window
    if w.kind == "poisson":
        return w.rate
    return math.nan


def refused_with_stock(result: Result) -> int:
    """Buyers told "sold out" for a qty that was still in stock when the sale ended.

    Stock only goes down during a sale, so these refusals certainly had stock
    somewhere: a lower bound on false sold-outs that works for any strategy.
    """
    remaining = result.inventory.remaining
    if remaining <= 0:
        return 0
    requests = result.requests
    refused = requests["outcome"].cat.codes.to_numpy() == Outcome.SOLD_OUT
    return int((refused & (requests["qty"].to_numpy() <= remaining)).sum())


def run_tables(spec: RunSpec, result: Result) -> dict[str, pd.DataFrame]:
    tables = {}
    if "latency" in spec.record and len(result.requests):
        latency = result.requests["latency"].to_numpy(dtype=float)
        tables["latency"] = pd.DataFrame({"q": LATENCY_LEVELS, "latency": np.nanquantile(latency, LATENCY_LEVELS)})
    if "timeline" in spec.record and not result.timeline.empty:
        tables["timeline"] = result.timeline
    if "events" in spec.record and not result.events.empty:
        tables["events"] = result.events
    for name, table in tables.items():
        tables[name] = table.assign(run_key=spec.key)[["run_key", *table.columns]]
    return tables


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value
