"""Experiment: sharded stock scales with the node count; one sale seen from inside.

1. ``scaling``: 1..16 Redis nodes holding 32 partitions, two loads.
   *Capacity*: a fixed population of 4,096 closed-loop buyers (1 ms think time,
   patient clients) saturates every node count; stock is plentiful, so the pool
   keeps refilling partitions throughout. *Flash sale*: the same open-loop sale
   for every node count (a fixed overload, 1.5x what 16 nodes serve, 1 s client
   timeout, stock = half the buyers). Goodput per node count, next to the ideal
   (node count x one node's capacity) and single_redis.
2. ``fallback``: false sold-outs (buyers refused while unsold stock remained
   anywhere) with the fallback bound 0, 1, 3, 31, at 16 nodes (where the sale
   sells out before the buyers give up).
3. ``staleness``: the registry refresh interval against fallbacks, partition
   refusals, false sold-outs and latency, at 16 nodes.
4. ``timeline``: one sale at 16 nodes: stock per partition, pool, sold, with
   every sub-domain switch and injection marked.
5. ``stranded``: buyers asking 2..3 units, at 16 nodes, with and without
   ``return_stranded``: stock left in partitions, returned, sold.

Writes ``scaling.csv``, ``fallback.csv``, ``staleness.csv``, ``stranded.csv``, ``scaling.png``,
``timeline.png`` and ``staleness.png`` under ``--out`` (default ``results/sharded``).
Redis scripts cost 0.5 ms here (2,000 ops/s per node) so that a 16-node overload
stays cheap to simulate; every figure is a ratio of that capacity.

    .venv/bin/python experiments/sharded_scaling.py [--seed 0] [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from engine.result import Result  # noqa: E402
from engine.scenario import Scenario  # noqa: E402
from sim import simulate  # noqa: E402

SERVICE = 0.0005  # seconds per script: one node serves 2,000 per second
NODES = (1, 2, 3, 4, 6, 8, 10, 12, 14, 16)
QUICK_NODES = (1, 2, 4, 8)
SOLD_OUT_NODES = 16  # the fallback, staleness and timeline runs: the sale sells out within the buyers' timeout
REFRESH = (0.01, 0.05, 0.25, 1.0)
FIGURES = ("ok", "goodput", "time_to_sellout", "p99", "ok_p99", "sold", "switches", "injections", "fallbacks",
           "partition_refusals", "waits", "false_sold_outs", "refused_exhausted", "refused_bound",
           "refused_waiting", "stranded", "skew", "timeout", "violations")


def sale(nodes: int, quick: bool, overrides: Sequence[str] = ()) -> Scenario:
    """One flash sale: 1.5x the 16-node capacity for 1 s (0.25 s when quick), 32 partitions.

    Stock is half the buyers; 60% of it is pre-allocated at setup (A full, B half full),
    the rest waits in the pool; a refill tops a sub-domain up from the threshold (30%).
    """
    capacity16 = 16 / SERVICE
    window = 0.25 if quick else 1.0
    buyers = int(1.5 * capacity16 * window)
    stock, partitions = buyers // 2, 32
    preallocation = int(0.6 * stock / partitions)
    size = -(-2 * preallocation // 3)
    threshold = int(0.3 * size)
    return Scenario().with_overrides([
        "strategy=sharded", f"redis.nodes={nodes}", f"sale.stock={stock}",
        f"workload.buyers={buyers}", f"workload.window={window}",
        f'redis.service.default={{kind="lognormal", mean={SERVICE}, cv=0.3}}',
        f"sharded.partitions={partitions}", f"sharded.subdomain_size={size}", f"sharded.threshold={threshold}",
        f"sharded.preallocation={preallocation}", f"sharded.injection={size - threshold}",
        "sharded.refresh_interval=0.1", "report.timeline_interval=0.005", *overrides,
    ])


def row(result: Result, **labels: object) -> dict[str, object]:
    summary = result.summary
    return {**labels, **{k: summary.get(k) for k in FIGURES}, "wall": round(result.wall_seconds, 2)}


def saturation(nodes: int, quick: bool, overrides: Sequence[str] = ()) -> Scenario:
    """Capacity: 4,096 patient closed-loop buyers (2,048 when quick) and stock that does not run out."""
    return Scenario().with_overrides([
        "strategy=sharded", f"redis.nodes={nodes}", "sale.stock=400000", "workload.kind=closed",
        f"workload.users={2048 if quick else 4096}", f"workload.duration={0.3 if quick else 1.0}",
        "workload.think=0.001", "workload.timeout=inf",
        f'redis.service.default={{kind="lognormal", mean={SERVICE}, cv=0.3}}',
        "sharded.partitions=32", "sharded.subdomain_size=300", "sharded.threshold=90",
        "sharded.preallocation=450", "sharded.injection=210", "sharded.refresh_interval=0.1", *overrides,
    ])


def scaling(nodes: Sequence[int], quick: bool, seed: int) -> pd.DataFrame:
    rows = []
    for n in nodes:
        for load, scenario in (("capacity", saturation(n, quick)), ("flash sale", sale(n, quick))):
            rows.append(row(simulate(scenario, seed), strategy="sharded", load=load, nodes=n, ideal=n / SERVICE))
            print(f"scaling: {load}, {n:2d} node(s): goodput {rows[-1]['goodput']:,.0f}/s", file=sys.stderr)
    for load, scenario in (("capacity", saturation(max(nodes), quick, ["strategy=single_redis"])),
                           ("flash sale", sale(max(nodes), quick, ["strategy=single_redis"]))):
        rows.append(row(simulate(scenario, seed), strategy="single_redis", load=load, nodes=max(nodes),
                        ideal=1 / SERVICE))
    return pd.DataFrame(rows)


def fallback(quick: bool, seed: int) -> pd.DataFrame:
    rows = []
    for bound in (0, 1, 3, 31):
        result = simulate(sale(SOLD_OUT_NODES, quick, [f"sharded.fallback={bound}"]), seed)
        rows.append(row(result, nodes=SOLD_OUT_NODES, fallback=bound))
    return pd.DataFrame(rows)


def staleness(quick: bool, seed: int) -> pd.DataFrame:
    rows = []
    for interval in REFRESH:
        result = simulate(sale(SOLD_OUT_NODES, quick, [f"sharded.refresh_interval={interval}"]), seed)
        rows.append(row(result, nodes=SOLD_OUT_NODES, refresh_interval=interval))
    return pd.DataFrame(rows)


def stranded(quick: bool, seed: int) -> pd.DataFrame:
    rows = []
    for give_back in (False, True):
        overrides = ["workload.qty={low=2, high=3}", f"sharded.return_stranded={str(give_back).lower()}"]
        result = simulate(sale(SOLD_OUT_NODES, quick, overrides), seed)
        rows.append({**row(result, nodes=SOLD_OUT_NODES, return_stranded=give_back),
                     "returned_units": result.summary["returned_units"], "retired": result.summary["retired"],
                     "pool_left": result.inventory.holders["pool"]})
    return pd.DataFrame(rows)


def plot_scaling(table: pd.DataFrame, path: Path) -> None:
    sharded = table[table["strategy"] == "sharded"]
    single = table[table["strategy"] == "single_redis"]
    fig, ax = plt.subplots(figsize=(6.8, 4.4))
    ideal = sharded.drop_duplicates("nodes")
    ax.plot(ideal["nodes"], ideal["ideal"], "k--", lw=1, label="ideal: nodes x one node's capacity")
    styles = {"capacity": ("o-", "tab:blue", "sharded, capacity (4,096 closed-loop buyers)"),
              "flash sale": ("s-", "tab:green", "sharded, flash sale (fixed open-loop overload, 1 s timeout)")}
    for load, (style, color, label) in styles.items():
        curve = sharded[sharded["load"] == load]
        if curve.empty:
            continue
        ax.plot(curve["nodes"], curve["goodput"], style, color=color, label=label, ms=5)
        for _, r in curve.iterrows():
            ax.annotate(f"{r['goodput'] / r['ideal']:.0%}", (r["nodes"], r["goodput"]), textcoords="offset points",
                        xytext=(0, 6 if load == "capacity" else -12), ha="center", fontsize=7, color=color)
    for _, r in single.iterrows():
        ax.axhline(float(r["goodput"]), color="tab:red", lw=1.2, ls="-" if r["load"] == "capacity" else ":",
                   label=f"single_redis, {r['load']} (any node count): {float(r['goodput']):,.0f}/s")
    ax.set_xlabel("Redis nodes")
    ax.set_ylabel("goodput (successful buyers / s)")
    ax.set_title("Sharded stock, 32 partitions: goodput vs Redis nodes", fontsize=10)
    ax.set_xlim(0, max(sharded["nodes"]) + 1)
    ax.set_ylim(0, None)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def plot_timeline(result: Result, path: Path) -> None:
    tl = result.timeline.fillna(0)
    events = result.events
    parts = sorted({c.split(".")[0] for c in tl.columns if c.startswith("p") and c[1:2].isdigit()},
                   key=lambda p: int(p[1:]))
    end = float(result.summary["time_to_sellout"]) if result.summary["time_to_sellout"] == result.summary["time_to_sellout"] else float(tl["t"].max())
    tl = tl[tl["t"] <= end * 1.1]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7.5, 6.2), sharex=True, height_ratios=(1.4, 1))
    for p in parts:
        top.plot(tl["t"], tl[f"{p}.a"] + tl[f"{p}.b"], lw=0.7, alpha=0.7)
    cap = result.scenario.sharded.subdomain_size
    top.axhline(2 * cap, color="k", ls=":", lw=1, label=f"2 x subdomain_size = {2 * cap}")
    mine = events[events["kind"].isin(["switch", "injection"])] if not events.empty else events
    for kind, marker, color in (("switch", "|", "tab:orange"), ("injection", "^", "tab:green")):
        sel = mine[mine["kind"] == kind] if not mine.empty else mine
        if len(sel):
            top.scatter(sel["t"], [2 * cap * (1.04 if kind == "switch" else 1.1)] * len(sel), marker=marker,
                        s=18, color=color, label=f"{kind}es ({len(sel)})" if kind == "switch" else f"{kind}s ({len(sel)})")
    top.set_ylabel("units in each partition (A + B)")
    top.set_title(f"One sale: {len(parts)} partitions on {result.scenario.redis.nodes} nodes, "
                  f"{result.scenario.sale.stock:,} units", fontsize=10)
    top.set_ylim(0, 2 * cap * 1.16)
    top.legend(fontsize=7, loc="lower left")
    top.grid(alpha=0.3)
    bottom.plot(tl["t"], tl["pool"], label="pool", color="tab:purple")
    bottom.plot(tl["t"], tl["sold"], label="sold", color="tab:blue")
    held = tl[[f"{p}.{s}" for p in parts for s in "ab"]].sum(axis=1)
    bottom.plot(tl["t"], held, label="in partitions", color="tab:gray")
    flight = tl.filter(regex="^in_flight:").sum(axis=1)
    bottom.plot(tl["t"], flight, label="in flight (pool -> partition)", color="tab:green", lw=0.8)
    bottom.set_xlabel("seconds from sale start")
    bottom.set_ylabel("units")
    bottom.legend(fontsize=7, loc="center right")
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def plot_staleness(table: pd.DataFrame, path: Path) -> None:
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.4, 5.4), sharex=True)
    top.plot(table["refresh_interval"], table["goodput"], "s-", color="tab:blue", label="goodput / s")
    top.set_ylim(0, None)
    top.set_ylabel("goodput / s")
    right = top.twinx()
    right.plot(table["refresh_interval"], table["p99"] * 1000, "o--", color="tab:red", label="p99 latency, ms (right)")
    right.set_ylabel("p99 latency, ms")
    right.set_ylim(0, None)
    lines, more = top.get_legend_handles_labels(), right.get_legend_handles_labels()
    top.legend(lines[0] + more[0], lines[1] + more[1], fontsize=7, loc="lower right")
    top.set_title(f"Refreshing costs Redis work; a stale registry costs buyers' time "
                  f"({int(table['nodes'].iloc[0])} nodes)", fontsize=10)
    top.grid(alpha=0.3)
    for column, color in (("fallbacks", "tab:orange"), ("partition_refusals", "tab:red"),
                          ("false_sold_outs", "tab:purple")):
        bottom.plot(table["refresh_interval"], table[column], "o-", color=color, label=column)
    bottom.set_xscale("log")
    bottom.set_xlabel("registry refresh interval, s (log)")
    bottom.set_ylabel("count per sale")
    bottom.set_ylim(0, None)
    bottom.legend(fontsize=7, loc="upper left")
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("results/sharded"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="4 node counts and a 0.25 s sale (a smoke run)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    table = scaling(QUICK_NODES if args.quick else NODES, args.quick, args.seed)
    table.to_csv(args.out / "scaling.csv", index=False)
    plot_scaling(table, args.out / "scaling.png")
    fb = fallback(args.quick, args.seed)
    fb.to_csv(args.out / "fallback.csv", index=False)
    stale = staleness(args.quick, args.seed)
    stale.to_csv(args.out / "staleness.csv", index=False)
    plot_staleness(stale, args.out / "staleness.png")
    plot_timeline(simulate(sale(SOLD_OUT_NODES, args.quick), args.seed), args.out / "timeline.png")
    left = stranded(args.quick, args.seed)
    left.to_csv(args.out / "stranded.csv", index=False)
    print(table[["strategy", "load", "nodes", "goodput", "ideal", "ok", "timeout", "time_to_sellout", "false_sold_outs",
                 "skew", "violations"]].to_string(index=False))
    print(fb[["fallback", "goodput", "false_sold_outs", "refused_bound", "fallbacks"]].to_string(index=False))
    print(stale[["refresh_interval", "goodput", "fallbacks", "partition_refusals", "waits", "false_sold_outs",
                 "p99"]].to_string(index=False))
    print(left[["return_stranded", "sold", "stranded", "returned_units", "retired", "pool_left", "false_sold_outs",
                "refused_waiting", "timeout"]].to_string(index=False))
    print(f"wrote {args.out} in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
