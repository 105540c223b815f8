"""Experiment: sync lag and DB write rate of the async pipeline vs its two triggers.

Sweeps the count threshold (periodic trigger at 1 s) and the period (count
trigger off) for two loads on single_redis:

- ``burst``: the default scenario (10,000 units, 500,000 buyers in 2 s: Redis
  is overloaded and sells out in ~0.1 s);
- ``steady``: Poisson 20,000 requests/s for 2 s, 60,000 units (never sells
  out, Redis at ~20% load).

Writes ``results/pipeline/sweep.csv`` (one row per run), ``lag_vs_threshold.png``,
``lag_vs_period.png``, ``writes_vs_threshold.png``, ``writes_vs_period.png``
and ``backlog.png`` (unsynced records over time, default settings), and prints
the default scenario's figures (mean over seeds)::

    .venv/bin/python experiments/pipeline_lag.py [--seeds 2] [--out results/pipeline] [--replot]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from engine.scenario import Scenario  # noqa: E402
from sim import simulate  # noqa: E402

LOADS = {
    "burst": [],
    "steady": ["workload.kind=poisson", "workload.rate=20000", "workload.duration=2", "sale.stock=60000"],
}
THRESHOLDS = [10, 30, 100, 300, 1000, 3000]
PERIODS = [0.05, 0.1, 0.2, 0.5, 1.0, 2.0]
OFF = 1_000_000_000  # a threshold never reached: the count trigger is off
FIGURES = ["sold", "sync_records", "sync_lag_p50", "sync_lag_p99", "sync_lag_max", "db_txn", "db_txn_per_s",
           "db_sync_txn_per_s", "db_write_reduction", "mq_batch_mean", "sync_trigger_count",
           "sync_trigger_periodic", "sync_trigger_drain", "sync_differences", "p99"]


def points() -> list[tuple[str, str, float, list[str]]]:
    """(sweep, load, x, overrides) of every configuration."""
    out = []
    for load, base in LOADS.items():
        for threshold in THRESHOLDS:
            out.append(("threshold", load, threshold, [*base, f"pipeline.threshold={threshold}",
                                                       f"pipeline.batch_size={threshold}", "pipeline.period=1"]))
        for period in PERIODS:
            out.append(("period", load, period, [*base, f"pipeline.threshold={OFF}", "pipeline.batch_size=100000",
                                                 f"pipeline.period={period}"]))
    return out


def run(seeds: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rows = []
    for sweep, load, x, overrides in points():
        scenario = Scenario().with_overrides(overrides)
        for seed in range(seeds):
            s = simulate(scenario, seed=seed).summary
            rows.append({"sweep": sweep, "load": load, "x": x, "seed": seed, **{k: s[k] for k in FIGURES}})
            print(f"{sweep:9s} {load:6s} {x:>8g} seed {seed}: lag p99 {s['sync_lag_p99']:.3f} s, "
                  f"{s['db_txn']} txns, reduction {s['db_write_reduction']:.0f}x", flush=True)
    default_rows = []
    backlog = pd.DataFrame()
    for seed in range(max(seeds, 3)):
        result = simulate(Scenario(), seed=seed)
        default_rows.append({"seed": seed, **{k: result.summary[k] for k in FIGURES}})
        if seed == 0:
            events = result.events
            backlog = events[events["kind"].isin(["sync_publish", "sync_apply"])][["t", "kind", "backlog"]]
    return pd.DataFrame(rows), pd.DataFrame(default_rows), backlog


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot(frame: pd.DataFrame, backlog: pd.DataFrame, out: Path) -> list[Path]:
    mean = frame.groupby(["sweep", "load", "x"], as_index=False).mean(numeric_only=True)
    written = []
    for sweep, label in (("threshold", "count threshold (records); period 1 s"),
                         ("period", "period (s); count trigger off")):
        data = mean[mean["sweep"] == sweep]
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for load, style in (("burst", "-"), ("steady", "--")):
            d = data[data["load"] == load]
            for color, (figure, marker) in enumerate((("sync_lag_p50", "o"), ("sync_lag_p99", "s"),
                                                      ("sync_lag_max", "^"))):
                ax.plot(d["x"], d[figure], style, marker=marker, color=f"C{color}", label=f"{load}: {figure[9:]}")
        ax.set(xscale="log", yscale="log", xlabel=label, ylabel="sync lag: deduction -> DB commit (s)",
               title=f"Sync lag vs {sweep} (single_redis, mean of seeds)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
        path = out / f"lag_vs_{sweep}.png"
        written.append(_save(fig, path))

        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for load, style in (("burst", "-"), ("steady", "--")):
            d = data[data["load"] == load]
            ax.plot(d["x"], d["db_txn_per_s"], style, marker="o", color="C0",
                    label=f"{load}: async apply transactions/s")
            ax.plot(d["x"], d["db_sync_txn_per_s"], style, color="grey", label=f"{load}: synchronous writes/s")
        ax.set(xscale="log", yscale="log", xlabel=label, ylabel="DB write transactions per second",
               title=f"DB writes vs {sweep}: batched async vs one per deduction")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
        path = out / f"writes_vs_{sweep}.png"
        written.append(_save(fig, path))

    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    b = backlog.sort_values("t", kind="stable")
    ax.step(b["t"], b["backlog"], where="post")
    # backlog as the app knows it at each publish/apply: records whose deduct reply it has seen,
    # minus records applied (a buyer's reply waits in the Redis queue, so records show up late)
    ax.set(xlabel="time from sale start (s)", ylabel="records seen, not yet in the DB",
           title="Sync backlog at each publish and apply, default scenario (seed 0)")
    ax.grid(True, alpha=0.3)
    path = out / "backlog.png"
    written.append(_save(fig, path))
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("results/pipeline"))
    parser.add_argument("--replot", action="store_true", help="redraw from the CSV files of a previous run")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.replot:
        frame, default, backlog = (pd.read_csv(args.out / f"{name}.csv") for name in ("sweep", "default", "backlog"))
    else:
        frame, default, backlog = run(args.seeds)
        frame.to_csv(args.out / "sweep.csv", index=False)
        default.to_csv(args.out / "default.csv", index=False)
        backlog.to_csv(args.out / "backlog.csv", index=False)
    for path in plot(frame, backlog, args.out):
        print("wrote", path)
    d = default.mean(numeric_only=True)
    print(f"default scenario ({len(default)} seeds): sync lag p50 {d['sync_lag_p50']:.3f} s, "
          f"p99 {d['sync_lag_p99']:.3f} s, max {default['sync_lag_max'].max():.3f} s; "
          f"{d['sync_records']:.0f} records in {d['db_txn']:.0f} DB transactions "
          f"(write reduction {d['db_write_reduction']:.0f}x; {d['db_txn_per_s']:.0f} txn/s vs "
          f"{d['db_sync_txn_per_s']:.0f} synchronous writes/s); differences {default['sync_differences'].sum():.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
