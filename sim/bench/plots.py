"""The standard figures, from a results folder (a sweep's, or one ``flashsim run --out``).

Each figure is drawn only when its data is there:

- ``goodput_vs_load``: goodput (mean, 95 % CI) against offered load, a line per strategy;
- ``latency_vs_load``: p50 / p99 / p99.9 latency against offered load;
- ``latency_cdf``: latency distribution per load level (sweeps that ``record = ["latency"]``,
  or a run's ``requests.parquet``);
- ``stock_timeline``: stock held by each partition / holder over one sale (``timeline``);
- ``sync_lag``: any ``*lag*`` figure of the async pipeline against offered load.

Figures are :class:`matplotlib.figure.Figure` objects (no pyplot state), so the
same functions serve the CLI (``flashsim plot``) and notebooks.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatter

from engine.scenario import ScenarioError
from sim.bench.stats import summarize_points

FORMATS = ("png", "svg")
PERCENTILE_STYLES = {"p50": ":", "p99": "-", "p999": "--"}
_HOLDER_SKIP = ("run_key", "t", "sold", "remaining", "stranded")  # stranded: a figure, not a holder


def plot_results(path: str | Path, out: str | Path | None = None,
                 formats: Sequence[str] = ("png",)) -> list[Path]:
    """Draw every figure the data in ``path`` supports into ``out`` (default ``path/figures``)."""
    path = Path(path)
    for fmt in formats:
        if fmt not in FORMATS:
            raise ScenarioError(f"unknown figure format {fmt!r}; choose from: {', '.join(FORMATS)}")
    if (path / "runs.parquet").exists():
        figures = sweep_figures(path)
    elif (path / "requests.parquet").exists():
        figures = run_figures(path)
    else:
        raise ScenarioError(f"{path}: no runs.parquet (a sweep) or requests.parquet (a run) to plot")
    out = Path(out) if out is not None else path / "figures"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, figure in figures.items():
        for fmt in formats:
            target = out / f"{name}.{fmt}"
            figure.savefig(target, dpi=120, bbox_inches="tight")
            written.append(target)
    return written


def sweep_figures(path: Path) -> dict[str, Figure]:
    runs = pd.read_parquet(path / "runs.parquet")
    x = load_axis(runs)
    category = None if x is not None else category_axis(runs)
    lag = [c for c in runs.columns if "lag" in c and pd.api.types.is_numeric_dtype(runs[c])]
    lag = [c for c in lag if c.endswith(("_mean", "_p99", "_max"))] or lag
    figures: dict[str, Figure] = {}
    if x is not None:
        points = summarize_points(runs)
        figures["goodput_vs_load"] = goodput_figure(points, x)
        figures["latency_vs_load"] = latency_figure(points, x)
        if lag:
            figures["sync_lag"] = lag_figure(points, x, lag)
    elif category is not None:  # only a named choice varies (a policy): one mark per choice
        points = summarize_points(runs)
        name = category.split(".")[-1]
        figures[f"goodput_by_{name}"] = metric_figure(points, category, ["goodput"], f"Goodput by {category}",
                                                      "goodput (successful requests/s)")
        figures[f"latency_by_{name}"] = metric_figure(points, category, list(PERCENTILE_STYLES),
                                                      f"Latency percentiles by {category}", "latency (ms)", scale=1000)
        if lag:
            figures[f"sync_lag_by_{name}"] = metric_figure(points, category, lag, "Sync lag", "lag (s)")
    if (path / "latency.parquet").exists():
        figures["latency_cdf"] = cdf_figure(pd.read_parquet(path / "latency.parquet"), runs, x)
    if (path / "timeline.parquet").exists():
        figures["stock_timeline"] = timeline_figure(pd.read_parquet(path / "timeline.parquet"), runs, x)
    if not figures:
        raise ScenarioError(f"{path}: nothing to draw: no varied parameter and no latency or timeline tables")
    return figures


def run_figures(path: Path) -> dict[str, Figure]:
    requests = pd.read_parquet(path / "requests.parquet", columns=["latency"])
    levels = np.linspace(0, 1, 201)
    quantiles = pd.DataFrame({"run_key": "run", "q": levels,
                              "latency": np.nanquantile(requests["latency"].to_numpy(dtype=float), levels)})
    runs = pd.DataFrame({"run_key": ["run"], "strategy": [_strategy_of(path)], "replication": [0]})
    figures = {"latency_cdf": cdf_figure(quantiles, runs, None)}
    if (path / "timeline.parquet").exists():
        timeline = pd.read_parquet(path / "timeline.parquet").assign(run_key="run")
        figures["stock_timeline"] = timeline_figure(timeline, runs, None)
    return figures


# ---------------------------------------------------------------- axes and series
def load_axis(runs: pd.DataFrame) -> str | None:
    """The x axis: offered load when it varies, else the first varied numeric parameter."""
    if "offered_load" in runs and runs["offered_load"].nunique(dropna=True) > 1:
        return "offered_load"
    for column in runs.columns:
        if "." in column and pd.api.types.is_numeric_dtype(runs[column]) and runs[column].nunique() > 1:
            return column
    return None


def category_axis(runs: pd.DataFrame) -> str | None:
    """The first varied parameter that is not a number (``sharded.policy``), if any."""
    for column in runs.columns:
        if "." in column and not pd.api.types.is_numeric_dtype(runs[column]) and runs[column].astype(str).nunique() > 1:
            return column
    return None


def axis_label(x: str) -> str:
    return "offered load (requests/s)" if x == "offered_load" else x


def value_label(x: str, value: float) -> str:
    return f"{value:,.0f} req/s offered" if x == "offered_load" else f"{x} = {value:g}"


def series(points: pd.DataFrame, x: str) -> list[tuple[str, pd.DataFrame]]:
    """One line per strategy and per value of every other varied parameter, sorted along x.

    A parameter that merely restates x (``workload.rate`` when x is the offered
    load) does not split lines.
    """
    xcol = _xcolumn(points, x)
    others = [c for c in points.columns if "." in c and c != x and points[c].nunique() > 1
              and not _same_axis(points, c, xcol)]
    keys = ["strategy", *others]
    out = []
    for key, group in points.groupby(keys, sort=True):
        values = key if isinstance(key, tuple) else (key,)
        label = " ".join([str(values[0]), *[f"{k.split('.')[-1]}={v}" for k, v in zip(others, values[1:])]])
        out.append((label, group.sort_values(xcol)))
    return out


def _same_axis(points: pd.DataFrame, column: str, xcol: str) -> bool:
    return bool(points.groupby(column)[xcol].nunique().max() == 1 and points.groupby(xcol)[column].nunique().max() == 1)


def _xcolumn(points: pd.DataFrame, x: str) -> str:
    return f"{x}_mean" if f"{x}_mean" in points else x


def _xvalues(group: pd.DataFrame, x: str) -> np.ndarray:
    return group[_xcolumn(group, x)].to_numpy(dtype=float)


# ---------------------------------------------------------------- figures
def goodput_figure(points: pd.DataFrame, x: str) -> Figure:
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    ax = figure.subplots()
    for label, group in series(points, x):
        ax.errorbar(_xvalues(group, x), group["goodput_mean"], yerr=group["goodput_ci"].fillna(0),
                    marker="o", capsize=3, label=label)
    if x == "offered_load":
        top = float(np.nanmax(points["offered_load_mean"]))
        ax.plot([0, top], [0, top], color="grey", lw=0.8, ls=":", label="goodput = offered load")
    ax.set(title="Goodput vs offered load (mean, 95% CI)", xlabel=axis_label(x),
           ylabel="goodput (successful requests/s)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return figure


def latency_figure(points: pd.DataFrame, x: str) -> Figure:
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    ax = figure.subplots()
    for index, (label, group) in enumerate(series(points, x)):
        color = f"C{index % 10}"
        for name, style in PERCENTILE_STYLES.items():
            if f"{name}_mean" in group:
                values = group[f"{name}_mean"].to_numpy(dtype=float) * 1000
                ax.plot(_xvalues(group, x), values, ls=style, marker=".", color=color, label=f"{label} {name}")
    ax.set_yscale("symlog", linthresh=0.01)  # 0 ms (refused by the app's sold-out flag) stays visible
    ax.set(title="Latency percentiles vs offered load (from intended send time)", xlabel=axis_label(x),
           ylabel="latency (ms, symlog)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small", ncol=2)
    return figure


def lag_figure(points: pd.DataFrame, x: str, columns: Sequence[str]) -> Figure:
    return metric_figure(points, x, columns, "Sync lag (deduction -> applied in DB)", "lag (s)")


def metric_figure(points: pd.DataFrame, x: str, metrics: Sequence[str], title: str, ylabel: str, *,
                  logx: bool = False, logy: bool = False, scale: float = 1.0) -> Figure:
    """Any figure(s) of a sweep (mean, 95 % CI) against any varied parameter, a line per series.

    ``x`` may be text (a policy name): its values are then evenly spaced categories.
    ``scale`` multiplies the values (1000 for seconds -> ms).
    """
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    ax = figure.subplots()
    categorical = not pd.api.types.is_numeric_dtype(points[_xcolumn(points, x)])  # offered_load: its _mean
    categories = sorted(points[x].astype(str).unique()) if categorical else []
    for index, (label, group) in enumerate(series(points, x)):
        xs = ([categories.index(str(v)) for v in group[x]] if categorical else _xvalues(group, x))
        for offset, metric in enumerate(metrics):
            name = label if len(metrics) == 1 else f"{label} {metric}"
            ax.errorbar(xs, group[f"{metric}_mean"] * scale, yerr=group[f"{metric}_ci"].fillna(0) * scale,
                        marker="os^vD"[offset % 5], capsize=3, color=f"C{index % 10}",
                        ls=("-", "--", ":", "-.")[offset % 4], label=name)
    if categorical:
        ax.set_xticks(range(len(categories)), categories)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    for log, axis in ((logx, ax.xaxis), (logy, ax.yaxis)):
        if log:  # plain numbers (600), not 6 x 10^2
            axis.set_major_formatter(LogFormatter())
            axis.set_minor_formatter(LogFormatter(minor_thresholds=(2, 0.5)))
    ax.set(title=title, xlabel=axis_label(x), ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return figure


def cdf_figure(quantiles: pd.DataFrame, runs: pd.DataFrame, x: str | None) -> Figure:
    """Latency CDF: quantile functions averaged over replications, a panel per strategy."""
    meta = runs[["run_key", "strategy", *([x] if x else [])]]
    data = quantiles.merge(meta, on="run_key")
    strategies = sorted(data["strategy"].unique())
    figure = Figure(figsize=(6.5 * len(strategies), 4.5), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(strategies), squeeze=False)[0])
    for ax, strategy in zip(axes, strategies):
        subset = data[data["strategy"] == strategy]
        groups = subset.groupby(x, sort=True) if x else [(None, subset)]
        for index, (level, group) in enumerate(groups):
            curve = group.groupby("q", sort=True)["latency"].mean()
            label = "all requests" if level is None else value_label(x or "", level)
            ax.plot(curve.to_numpy() * 1000, curve.index, color=f"C{index % 10}", label=label)
        ax.set_xscale("symlog", linthresh=0.01)
        ax.set(title=f"Latency CDF — {strategy}", xlabel="latency (ms, symlog)", ylabel="fraction of requests",
               ylim=(0, 1.01))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return figure


def timeline_figure(timeline: pd.DataFrame, runs: pd.DataFrame, x: str | None) -> Figure:
    """Stock per holder (partition, sub-domain, pool, ...) over one sale per strategy: replication 0 at the top load."""
    chosen = runs[runs["replication"] == 0]
    if x:
        chosen = chosen.sort_values(x).groupby("strategy").tail(1)
    chosen = chosen.drop_duplicates("strategy")
    figure = Figure(figsize=(6.5 * len(chosen), 4.5), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(chosen), squeeze=False)[0])
    for ax, (_, run) in zip(axes, chosen.iterrows()):
        rows = timeline[timeline["run_key"] == run["run_key"]]
        holders = [c for c in rows.columns if c not in _HOLDER_SKIP and not c.startswith("in_flight")
                   and rows[c].notna().any()]
        pools = [c for c in holders if c.startswith("pool")] if len(holders) > 1 else []
        for holder in holders:
            if holder not in pools:
                ax.step(rows["t"], rows[holder], where="post", lw=1, label=holder)
        total = ax.twinx()  # the total (and the pool) dwarf one partition: their own axis, on the right
        total.step(rows["t"], rows["remaining"], where="post", color="black", ls="--", lw=1.2)
        for pool in pools:
            total.step(rows["t"], rows[pool], where="post", color="grey", ls=":", lw=1.5)
        total.set_ylabel("remaining in total (dashed)" + (", pool (dotted)" if pools else "") + ", units")
        total.set_ylim(bottom=0)
        changes = rows["t"][rows["remaining"].diff().fillna(0) != 0]
        if len(changes) and changes.max() > 0:
            ax.set_xlim(0, min(rows["t"].max(), changes.max() * 1.3))  # zoom on the sale, not the drain
        where = f" at {value_label(x, run[x])}" if x else ""
        ax.set(title=f"Stock over time — {run['strategy']}{where}", xlabel="time from sale start (s)",
               ylabel="units per partition / holder (solid)")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        if len(holders) - len(pools) <= 12:
            ax.legend(fontsize="small", loc="upper right")
    return figure


def _strategy_of(path: Path) -> str:
    config = path / "config.json"
    if config.exists():
        import json

        return str(json.loads(config.read_text()).get("strategy", path.name))
    return path.name
