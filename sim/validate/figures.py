"""The figures validation compares, computed the same way from a simulated and a real Result.

goodput           successful requests/s over the selling window (the summary's)
time_to_sellout   first arrival -> last successful reply, when the stock sold out (burst points)
ok_p50, ok_p99    successful buyers' latency percentiles, from the intended send time
served_p50/p99    the summary's, when it has them (buyers who got an answer in time)
db_tps            DB strategies: deducting transactions committed per second over the selling
                  window (``sold`` / window; every grid point asks for 1 unit, so units = transactions)

Each figure has a target, judged on the mean relative error (sim - real) / real
over the seeds at loads below saturation; at and past saturation the error is
reported with an explanation, not judged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.result import Result

DB_STRATEGIES_PREFIX = "db_"


@dataclass(frozen=True)
class Target:
    """What a figure's error must stay within, below saturation: sim / real in [low, high]."""

    text: str
    low: float
    high: float

    def met(self, error: float) -> bool:
        """Whether a mean relative error (sim - real) / real meets the target."""
        return self.low <= 1 + error <= self.high


def _within(share: float) -> Target:
    return Target(f"within {share:.0%}", 1 - share, 1 + share)


def _factor(factor: float) -> Target:
    return Target(f"within {factor:g}x", 1 / factor, factor)


FIGURES: dict[str, Target] = {
    "goodput": _within(0.10),
    "time_to_sellout": _within(0.10),
    "ok_p50": _within(0.25),
    "ok_p99": _factor(2.0),
    "served_p50": _within(0.25),
    "served_p99": _factor(2.0),
    "db_tps": _within(0.20),
}
UNITS = {"goodput": "req/s", "time_to_sellout": "s", "ok_p50": "ms", "ok_p99": "ms", "served_p50": "ms",
         "served_p99": "ms", "db_tps": "txn/s"}
SCALE = {"ok_p50": 1000.0, "ok_p99": 1000.0, "served_p50": 1000.0, "served_p99": 1000.0}  # seconds -> ms


def run_figures(result: Result) -> dict[str, Any]:
    """The compared figures of one run, plus the context an explanation needs."""
    s = result.summary
    requests = result.requests
    ok = (requests["outcome"] == "ok").to_numpy()
    latency_ok = requests["latency"].to_numpy()[ok]
    n = len(requests)
    figures: dict[str, Any] = {
        "goodput": _num(s.get("goodput")),
        "time_to_sellout": _num(s.get("time_to_sellout")),
        "ok_p50": float(np.percentile(latency_ok, 50)) if len(latency_ok) else math.nan,
        "ok_p99": float(np.percentile(latency_ok, 99)) if len(latency_ok) else math.nan,
        "served_p50": _num(s.get("served_p50")),
        "served_p99": _num(s.get("served_p99")),
        "db_tps": db_tps(result) if result.strategy.startswith(DB_STRATEGIES_PREFIX) else math.nan,
        # context, not compared
        "requests": n,
        "ok": int(s.get("ok", 0)),
        "sold": int(s.get("sold", 0)),
        "timeout_share": s.get("timeout", 0) / n if n else math.nan,
        "sold_out": int(s.get("sold_out", 0)),
        "p99_all": _num(s.get("p99")),
        "violations": int(s.get("violations", 0)),
        "driver_errors": int(s.get("driver_errors", 0) or 0),
        "strategy_errors": int(s.get("strategy_errors", 0) or 0),
        "wall_seconds": result.wall_seconds,
    }
    return figures


def selling_window(result: Result) -> float:
    """Seconds from the first arrival to the sell-out, or to the end of the load (the goodput's span)."""
    requests = result.requests
    if not len(requests):
        return math.nan
    sellout = _num(result.summary.get("time_to_sellout"))
    if math.isfinite(sellout):
        return sellout
    t_arrival = requests["t_arrival"].to_numpy()
    ok = (requests["outcome"] == "ok").to_numpy()
    end = float(t_arrival.max())
    if ok.any():
        end = max(end, float(requests["t_done"].to_numpy()[ok].max()))
    return end - float(t_arrival.min())


def db_tps(result: Result) -> float:
    """Deducting transactions the DB committed per second of the selling window."""
    window = selling_window(result)
    return result.summary.get("sold", 0) / window if window > 0 else math.nan


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
