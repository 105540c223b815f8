"""The shape of a run's output, the same for a simulated and a real run.

``requests``: one row per request (id, t_arrival = intended send time,
t_done, latency, outcome, qty, node, ops, servable), times in seconds from sale start;
``servable`` is 1 when a refused or timed-out buyer's quantity could have been served at that
instant, 0 when not, -1 for every other request or where it is unknown (see docs/soldout.md).
``timeline``: inventory sampled over time. ``summary``: the headline figures
(see :func:`summarize`). Latency runs from the intended send time; a timed-out
request counts at the timeout, so high percentiles under overload are lower
bounds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from engine.model import OUTCOME_LABELS, Inventory, Outcome
from engine.scenario import Scenario

PERCENTILES = {"p50": 50.0, "p95": 95.0, "p99": 99.0, "p999": 99.9}


@dataclass
class Result:
    """Everything one run produced."""

    scenario: Scenario
    strategy: str
    seed: int
    mode: str  # "sim" or "real"
    requests: pd.DataFrame
    timeline: pd.DataFrame
    summary: dict[str, Any]
    inventory: Inventory
    violations: list[str] = field(default_factory=list)
    events: pd.DataFrame = field(default_factory=pd.DataFrame)
    wall_seconds: float = 0.0
    # one row per fault fired (engine/faults, docs/faults.md); empty without faults
    faults: pd.DataFrame = field(default_factory=pd.DataFrame)
    # invariants a fault broke, each with its size and cause: reported, never counted as a pass
    broken_by_fault: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every invariant held (one broken by a fault did not hold either)."""
        return not self.violations and not self.broken_by_fault


SERVABLE_UNKNOWN = -1
"""``servable`` of a request that was served, or whose refusal was not checked (real mode)."""

SOLDOUT_FIGURES = ("refused_servable", "refused_servable_units", "timed_out_servable", "timed_out_servable_units")


def requests_frame(t_arrival: np.ndarray, t_done: np.ndarray, outcome: np.ndarray, qty: np.ndarray,
                   node: np.ndarray, ops: np.ndarray, servable: np.ndarray | None = None) -> pd.DataFrame:
    """The requests table from columnar arrays (outcome codes become labels).

    ``servable`` (int8, per request) is None where no one could check it: the column is then
    all ``SERVABLE_UNKNOWN`` and the summary's servable figures are NaN.
    """
    n = len(t_arrival)
    if servable is None:
        servable = np.full(n, SERVABLE_UNKNOWN, dtype=np.int8)
    return pd.DataFrame(
        {
            "id": np.arange(n, dtype=np.int64),
            "t_arrival": t_arrival,
            "t_done": t_done,
            "latency": t_done - t_arrival,
            "outcome": pd.Categorical.from_codes(outcome.astype(np.int8), categories=list(OUTCOME_LABELS)),
            "qty": qty,
            "node": node,
            "ops": ops,
            "servable": servable.astype(np.int8, copy=False),
        }
    )


def gated(requests: pd.DataFrame) -> int:
    """Buyers refused by the gate (admission control): the ``gated`` outcome."""
    return int((requests["outcome"].cat.codes.to_numpy() == Outcome.GATED).sum())


def soldout_figures(requests: pd.DataFrame, checked: bool) -> dict[str, float]:
    """Buyers refused / timed out while servable, and the units they asked for.

    ``checked`` says whether the run evaluated ``servable`` at each refusal and timeout
    (the simulator does, from exact state); if not, the figures are NaN, never 0.
    """
    if not checked:
        return dict.fromkeys(SOLDOUT_FIGURES, math.nan)
    codes = requests["outcome"].cat.codes.to_numpy()
    flagged = requests["servable"].to_numpy() == 1
    qty = requests["qty"].to_numpy()
    figures: dict[str, float] = {}
    for name, outcome in (("refused_servable", Outcome.SOLD_OUT), ("timed_out_servable", Outcome.TIMEOUT)):
        mask = flagged & (codes == outcome)
        figures[name] = int(mask.sum())
        figures[f"{name}_units"] = int(qty[mask].sum())
    return figures


def stranded_unit_seconds(timeline: pd.DataFrame) -> float:
    """Integral of the timeline's ``stranded`` column over time (each sample held until the next)."""
    if timeline.empty or "stranded" not in timeline:
        return math.nan
    t = timeline["t"].to_numpy(dtype=float)
    units = timeline["stranded"].to_numpy(dtype=float)
    return float(np.sum(units[:-1] * np.diff(t)))


def stranded_units(pieces: list[int], smallest: int) -> int:
    """Units in pieces (partitions) that hold some stock but less than any buyer asks for."""
    return sum(p for p in pieces if 0 < p < smallest)


def steady_figures(requests: pd.DataFrame, warmup: float) -> dict[str, float]:
    """Latency once the system has warmed up: the requests that arrive ``warmup`` seconds or more after sale start.

    Empty queues and cold caches at the start make the first requests faster (or, with idle
    wake-ups, slower) than the steady state a capacity question is about; a backlog that grows
    under overload is the same either way. steady_requests: how many; steady_p99: their p99;
    steady_ok_p99: the p99 of the successful ones (NaN when there are none).
    """
    after = requests["t_arrival"].to_numpy() >= warmup
    latency = requests["latency"].to_numpy()[after]
    ok = requests["outcome"].cat.codes.to_numpy()[after] == Outcome.OK
    return {
        "steady_requests": int(after.sum()),
        "steady_p99": float(np.nanpercentile(latency, 99)) if len(latency) else math.nan,
        "steady_ok_p99": float(np.percentile(latency[ok], 99)) if ok.any() else math.nan,
    }


def summarize(strategy: str, requests: pd.DataFrame, inventory: Inventory,
              node_busy: list[float], horizon: float, extra: dict[str, float] | None = None,
              warmup: float = 0.0) -> dict[str, Any]:
    """Headline figures of one run.

    goodput: successful requests per second over the selling window: from the
    first arrival to the last successful reply when the stock ran out (that
    span is ``time_to_sellout``), else to the later of the last arrival and the
    last successful reply (the whole offered load). util_nodeK: busy time of
    Redis node K over the run. served, served_p50, served_p99: the requests
    that made at least one server round trip (``ops`` > 0) and their latency;
    the rest were answered by the app alone (a local sold-out refusal, a refusal by the gate).
    With ``warmup`` > 0 (``report.warmup``), the steady state after it:
    steady_requests, steady_p99, steady_ok_p99 (see :func:`steady_figures`).
    """
    codes = requests["outcome"].cat.codes.to_numpy()
    counts = np.bincount(codes[codes >= 0], minlength=len(OUTCOME_LABELS))
    ok_mask = codes == Outcome.OK
    latency = requests["latency"].to_numpy()
    t_arrival = requests["t_arrival"].to_numpy()
    t_done = requests["t_done"].to_numpy()
    start = float(t_arrival.min()) if len(t_arrival) else 0.0
    last_ok = float(t_done[ok_mask].max()) if ok_mask.any() else math.nan
    sold_out = inventory.initial > 0 and inventory.remaining == 0 and not any(inventory.in_flight.values())
    if sold_out and ok_mask.any():
        span = last_ok - start
    elif len(t_arrival):
        span = max(float(t_arrival.max()), last_ok if ok_mask.any() else -math.inf) - start
    else:
        span = math.nan
    summary: dict[str, Any] = {
        "strategy": strategy,
        "requests": int(len(requests)),
        "ok": int(counts[Outcome.OK]),
        "sold_out": int(counts[Outcome.SOLD_OUT]),
        "timeout": int(counts[Outcome.TIMEOUT]),
        "error": int(counts[Outcome.ERROR]),
        "ok_qty": int(requests["qty"].to_numpy()[ok_mask].sum()),
        "initial": inventory.initial,
        "sold": inventory.sold,
        "remaining": inventory.remaining,
        "oversold": max(0, inventory.sold - inventory.initial),
        "goodput": float(counts[Outcome.OK] / span) if span > 0 else math.nan,
        "throughput": len(requests) / (float(np.nanmax(t_done)) - start) if len(requests) > 1 else math.nan,
    }
    for name, q in PERCENTILES.items():
        summary[name] = float(np.nanpercentile(latency, q)) if len(latency) else math.nan
    summary["ok_p99"] = float(np.percentile(latency[ok_mask], 99)) if ok_mask.any() else math.nan
    # Requests that reached a server (at least one round trip) apart from local refusals, whose
    # near-zero latency would otherwise dilute the percentiles once the sale is over.
    served = requests["ops"].to_numpy() > 0
    summary["served"] = int(served.sum())
    for name in ("p50", "p99"):
        summary[f"served_{name}"] = float(np.nanpercentile(latency[served], PERCENTILES[name])) if served.any() else math.nan
    if warmup > 0:
        summary.update(steady_figures(requests, warmup))
    summary["time_to_sellout"] = span if sold_out and ok_mask.any() else math.nan
    for i, busy in enumerate(node_busy):
        summary[f"util_node{i}"] = busy / horizon if horizon > 0 else math.nan
    summary.update(extra or {})
    return summary
