"""The validation report: errors.md, the console summary and the sim-vs-real figures."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from sim.validate.errors import scorecard, worst
from sim.validate.figures import FIGURES, UNITS

TABLE_COLUMNS = ("point", "figure", "saturation", "sim", "real", "error", "target", "met", "explanation")
FIGURE_TITLES = {"goodput": "goodput (req/s)", "time_to_sellout": "time to sell-out (s)",
                 "ok_p50": "successful buyers' p50 (ms)", "ok_p99": "successful buyers' p99 (ms)",
                 "served_p50": "served p50 (ms)", "served_p99": "served p99 (ms)", "db_tps": "DB TPS (txn/s)"}


def fmt_value(value: float, unit: str) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    if unit == "ms":
        return f"{value:.3g} ms"
    if unit == "s":
        return f"{value:.3g} s"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def fmt_error(mean: float, half: float) -> str:
    if mean is None or not math.isfinite(mean):
        return "-"
    text = f"{mean:+.1%}"
    if half is not None and math.isfinite(half):
        text += f" ± {half:.1%}"
    return text


def fmt_met(met: Any) -> str:
    if met is None or (isinstance(met, float) and math.isnan(met)):
        return "-"
    return "yes" if met else "**no**"


def display_table(errors: pd.DataFrame) -> pd.DataFrame:
    """The error table as strings, as errors.md shows it."""
    return pd.DataFrame({
        "point": errors["point"], "figure": errors["figure"], "saturation": errors["saturation"],
        "sim": [fmt_value(v, u) for v, u in zip(errors["sim"], errors["unit"])],
        "real": [fmt_value(v, u) for v, u in zip(errors["real"], errors["unit"])],
        "error": [fmt_error(m, h) for m, h in zip(errors["rel_error"], errors["rel_error_ci"])],
        "target": errors["target"], "met": [fmt_met(m) for m in errors["met"]],
        "explanation": errors["explanation"].fillna(""),
    }, columns=list(TABLE_COLUMNS))


def markdown_table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "(none)"
    cells = [[str(v).replace("|", "\\|") for v in row] for row in frame.itertuples(index=False)]
    lines = ["| " + " | ".join(frame.columns) + " |", "| " + " | ".join("---" for _ in frame.columns) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)


def score_line(errors: pd.DataFrame, holdout: bool) -> str:
    part = errors[errors["holdout"] == holdout]
    judged = part[part["judged"] & part["met"].notna()]
    met = int(judged["met"].astype(bool).sum()) if not judged.empty else 0
    reported = int((~part["judged"]).sum())
    return (f"{met} of {len(judged)} judged targets met (below saturation); "
            f"{reported} figure(s) at or past saturation reported, not judged")


def markdown(errors: pd.DataFrame, header: dict[str, Any]) -> str:
    """errors.md: the calibration part and the hold-out part, separately."""
    lines = ["# Validation: simulator vs real servers", ""]
    lines += [f"- {key}: {value}" for key, value in header.items()]
    lines += ["", "Error = (sim - real) / real per seed, mean over seeds ± 95 % CI half-width. Targets apply below "
              "saturation: goodput and time to sell-out within 10 %, successful buyers' p50 within 25 % and p99 "
              "within 2x, DB TPS within 20 %. At and past saturation the error is reported and explained.", ""]
    for title, holdout in (("Calibration part", False), ("Hold-out part (never seen by calibration)", True)):
        part = errors[errors["holdout"] == holdout]
        lines += [f"## {title}", "", score_line(errors, holdout), "", markdown_table(display_table(part)), ""]
    card = scorecard(errors)
    if not card.empty:
        lines += ["## Targets met, by part and figure", "", markdown_table(card), ""]
    return "\n".join(lines)


def console(errors: pd.DataFrame, count: int = 8) -> str:
    """What the command prints: the worst errors, then the hold-out summary."""
    if errors.empty:
        return "no figure could be compared (no point ran in both modes)"
    shown = display_table(worst(errors, count)).drop(columns=["explanation"])
    lines = ["worst errors:", shown.to_string(index=False), "",
             "calibration part: " + score_line(errors, False),
             "hold-out part:    " + score_line(errors, True)]
    holdout = errors[errors["holdout"]]
    if not holdout.empty:
        lines += ["hold-out errors:", display_table(holdout)[["point", "figure", "error", "target", "met"]]
                  .to_string(index=False)]
    return "\n".join(lines)


# ---------------------------------------------------------------- figures
def plot_validation(errors: pd.DataFrame, out: Path) -> list[Path]:
    """sim vs real per figure (one PNG each, hold-out hollow) and the relative errors by point."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for figure in FIGURES:
        data = errors[(errors["figure"] == figure) & errors["sim"].notna() & errors["real"].notna()]
        if data.empty:
            continue
        fig = scatter_figure(data, figure)
        path = out / f"sim_vs_real_{figure}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        written.append(path)
    if not errors.empty and errors["rel_error"].notna().any():
        fig = error_figure(errors)
        path = out / "relative_errors.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        written.append(path)
    return written


def scatter_figure(data: pd.DataFrame, figure: str) -> Figure:
    """Sim (y) against real (x), log-log, the y = x line and the target's band."""
    fig = Figure(figsize=(5.5, 4.5))
    ax = fig.subplots()
    strategies = sorted(data["strategy"].unique())
    colors = {s: f"C{i}" for i, s in enumerate(strategies)}
    markers = {"below": "o", "at": "s", "past": "^"}
    for row in data.itertuples(index=False):
        ax.scatter(row.real, row.sim, marker=markers.get(row.saturation, "o"), s=45,
                   facecolors="none" if row.holdout else colors[row.strategy], edgecolors=colors[row.strategy])
    values = pd.concat([data["sim"], data["real"]])
    values = values[values > 0]
    if not values.empty:
        low, high = float(values.min()) / 1.5, float(values.max()) * 1.5
        line = [low, high]
        ax.plot(line, line, color="black", lw=0.8)
        lo, hi = FIGURES[figure].low, FIGURES[figure].high
        ax.fill_between(line, [v * lo for v in line], [v * hi for v in line], color="grey", alpha=0.15,
                        label="target")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(low, high)
        ax.set_ylim(low, high)
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_minor_formatter(NullFormatter())
    for s in strategies:
        ax.scatter([], [], color=colors[s], label=s)
    ax.scatter([], [], facecolors="none", edgecolors="grey", label="hold-out")
    for name, marker in markers.items():
        ax.scatter([], [], marker=marker, color="grey", label=f"{name} saturation")
    title = FIGURE_TITLES.get(figure, f"{figure} ({UNITS.get(figure, '')})")
    ax.set_title(f"{title}: simulated vs real")
    ax.set_xlabel("real")
    ax.set_ylabel("simulated")
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def error_figure(errors: pd.DataFrame) -> Figure:
    """Relative error of each figure at each point (mean over seeds), hold-out points shaded."""
    data = errors[errors["rel_error"].notna()]
    points = list(dict.fromkeys(data["point"]))
    figures = [f for f in FIGURES if f in set(data["figure"])]
    fig = Figure(figsize=(7, 0.35 * len(points) + 1.8))
    ax = fig.subplots()
    height = 0.8 / max(len(figures), 1)
    for i, figure in enumerate(figures):
        part = data[data["figure"] == figure].set_index("point")
        ys = [points.index(p) + i * height for p in part.index]
        ax.barh(ys, part["rel_error"].clip(-1, 3).to_list(), height=height, label=figure, color=f"C{i}")
    holdout = set(data.loc[data["holdout"], "point"])
    for k, point in enumerate(points):
        if point in holdout:
            ax.axhspan(k - 0.1, k + 0.9, color="gold", alpha=0.15)
    ax.set_yticks([k + 0.4 for k in range(len(points))])
    ax.set_yticklabels(points, fontsize=7)
    ax.invert_yaxis()  # grid order, top down
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel("relative error (sim - real) / real, clipped to [-100 %, +300 %]")
    ax.set_title("Simulator error by point (hold-out shaded)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
