"""The error table: per point and figure, sim vs real over the same seeds.

The relative error of one seed is (sim - real) / real; a point's error is the
mean over its seeds with a 95 % Student-t interval (infinite with one seed).
Below saturation each figure is judged against its target (``met``); a figure
only one side has there (the stock sold out in one mode only, or the real side
served nobody) is a miss. At and past saturation the error is reported and
``explanation`` says what the two sides did (timeouts, capacity) instead of a
verdict.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from sim.bench.stats import confidence_interval
from sim.validate.figures import FIGURES, SCALE, UNITS, Target

POINT_COLUMNS = ("point", "strategy", "load", "arrival", "nodes", "holdout", "saturation", "capacity",
                 "capacity_source", "sim_capacity", "offered", "rho")
ERROR_COLUMNS = (*POINT_COLUMNS, "figure", "unit", "n", "sim", "real", "rel_error", "rel_error_ci", "target", "judged",
                 "met", "explanation")


def error_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (point, figure) with data on both sides (see the module docstring)."""
    rows: list[dict[str, Any]] = []
    ok_runs = runs[runs["failed"].isna()] if "failed" in runs else runs
    capacities = _capacities(ok_runs)
    for _name, group in ok_runs.groupby("point", sort=False):
        first = group.iloc[0]
        sim = group[group["mode"] == "sim"].set_index("seed")
        real = group[group["mode"] == "real"].set_index("seed")
        if sim.empty or real.empty:
            continue
        for figure, target in FIGURES.items():
            if figure not in group or group[figure].isna().all():
                continue
            rows.append(_row(first, figure, target, sim, real,
                             capacities.get((first["strategy"], int(first["nodes"])), {})))
    table = pd.DataFrame(rows, columns=list(ERROR_COLUMNS))
    return table


def _row(first: pd.Series, figure: str, target: Target, sim: pd.DataFrame, real: pd.DataFrame,
         capacity: dict[str, float]) -> dict[str, Any]:
    seeds = sim.index.intersection(real.index)
    pairs = [(float(sim.at[s, figure]), float(real.at[s, figure])) for s in seeds]
    errors = [(a - b) / b for a, b in pairs if math.isfinite(a) and math.isfinite(b) and b != 0]
    interval = confidence_interval(errors)
    judged = first["saturation"] == "below"
    # judged with no pair: one side has the figure and the other not (sold out in one only, served none): a miss
    met: bool | None = (target.met(interval.mean) if errors else False) if judged else None
    scale = SCALE.get(figure, 1.0)
    row = {column: first.get(column, math.nan) for column in POINT_COLUMNS}
    row.update({
        "figure": figure, "unit": UNITS[figure], "n": len(errors),
        "sim": _mean(sim[figure]) * scale, "real": _mean(real[figure]) * scale,
        "rel_error": interval.mean, "rel_error_ci": interval.half_width,
        "target": target.text if judged else f"reported ({first['saturation']} saturation)",
        "judged": judged, "met": met,
    })
    row["explanation"] = explain(row, sim, real, capacity)
    return row


def explain(row: dict[str, Any], sim: pd.DataFrame, real: pd.DataFrame, capacity_by_mode: dict[str, float]) -> str:
    """Why an error is what it is, from what the two runs did (empty when a judged target is met).

    ``capacity_by_mode``: the goodput of this strategy and node count's capacity
    point in each mode that ran it.
    """
    figure = row["figure"]
    timeouts = f"timeouts sim {_mean(sim['timeout_share']):.0%} / real {_mean(real['timeout_share']):.0%}"
    capacity = "capacity " + " / ".join(f"{mode} {value:,.0f}/s" for mode, value in sorted(
        capacity_by_mode.items(), reverse=True) if math.isfinite(value)) if capacity_by_mode else \
        f"capacity ({row['capacity_source']}) {row['capacity']:,.0f}/s"
    if row["n"] == 0:
        if row["real"] == 0:
            return f"the real value is 0, so the relative error is undefined (sim {_plain(row['sim'])}); {timeouts}"
        missing = " and ".join(m for m in ("sim", "real") if math.isnan(row[m])) or "one side of every seed"
        what = "the stock did not sell out" if figure == "time_to_sellout" else "no value"
        return f"no pair to compare: {what} in {missing}; {timeouts}"
    sim_capacity = row.get("sim_capacity", math.nan)
    sim_rho = row["offered"] / sim_capacity if sim_capacity and math.isfinite(sim_capacity) else math.nan
    if not row["judged"]:
        if row["load"] == "capacity":
            lead = "closed-loop saturation: each side serves at its own capacity"
        else:
            lead = f"offered {row['rho']:.2g}x capacity"
        why = {"goodput": "goodput is bounded by each side's capacity",
               "time_to_sellout": "sell-out time is set by how fast each side drains the queue",
               "db_tps": "the hot row's throughput is each side's capacity"}.get(
            figure, "latency is queueing past capacity (a timed-out buyer counts at the timeout)")
        if row["load"] != "capacity" and sim_rho < 0.9:
            why = (f"but the simulator is below its own capacity (~{sim_capacity:,.0f}/s, {sim_rho:.0%} loaded): "
                   "it predicts no saturation here")
        return f"{lead}; {why}; {capacity}; {timeouts}"
    if row["met"]:
        return ""
    real_timeouts, sim_timeouts = _mean(real["timeout_share"]), _mean(sim["timeout_share"])
    if real_timeouts > 0.01 and real_timeouts > 2 * sim_timeouts:
        return f"the real system is saturated at this load while the simulator is not: {timeouts}; {capacity}"
    if sim_rho >= 0.9:
        return (f"the simulator saturates at this load (its capacity ~{sim_capacity:,.0f}/s, {sim_rho:.0%} loaded) "
                f"while the real system does not; {timeouts}")
    ratio = row["sim"] / row["real"] if row["real"] else math.nan
    side = "slower" if ratio > 1 else "faster"
    return f"the simulator is {side} than the real system here (sim/real = {ratio:.3g}); {timeouts}"


def _capacities(runs: pd.DataFrame) -> dict[tuple[str, int], dict[str, float]]:
    """Goodput of each capacity point, by (strategy, nodes) and mode (the modes that ran it)."""
    found: dict[tuple[str, int], dict[str, float]] = {}
    capacity = runs[runs["load"] == "capacity"]
    for (strategy, nodes, mode), group in capacity.groupby(["strategy", "nodes", "mode"]):
        found.setdefault((str(strategy), int(nodes)), {})[str(mode)] = _mean(group["goodput"])
    return found


def _plain(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _mean(values: Any) -> float:
    data = np.asarray(values, dtype=float)
    data = data[np.isfinite(data)]
    return float(data.mean()) if len(data) else math.nan


def scorecard(errors: pd.DataFrame) -> pd.DataFrame:
    """Targets met / judged, per part (calibration, hold-out) and figure."""
    judged = errors[errors["judged"] & errors["met"].notna()]
    if judged.empty:
        return pd.DataFrame(columns=["part", "figure", "met", "judged"])
    part = np.where(judged["holdout"], "hold-out", "calibration")
    return (judged.assign(part=part, met=judged["met"].astype(bool))
            .groupby(["part", "figure"], sort=True)["met"].agg(met="sum", judged="count").reset_index())


def worst(errors: pd.DataFrame, count: int = 10) -> pd.DataFrame:
    """The largest errors: missed targets first, then by |relative error|."""
    if errors.empty:
        return errors
    order = errors.assign(_missed=errors["met"].eq(False), _size=errors["rel_error"].abs())
    order = order.sort_values(["_missed", "_size"], ascending=[False, False], na_position="last")
    return order.drop(columns=["_missed", "_size"]).head(count)
