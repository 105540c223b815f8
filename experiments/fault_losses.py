"""Experiment (issue #12, item 6): what a Redis failover loses, and how long each fault kind keeps sales down.

Three measurements, means over seeds, every run in the simulator (``sim.simulate``):

1. *Replica lag.* single_redis (one master) and sharded (two masters, 8 partitions), each master with one
   asynchronous replica; 4,000 buyers of one unit in a 0.4 s burst for 2,000 units; master 0 crashes at
   0.1 s and its replica is promoted after ``redis.node_timeout`` = 50 ms. For each ``redis.replica_lag``
   (0.1 to 10 ms), without and with ``WAIT`` (``redis.wait_replicas = 1``, timeout 10 ms): the
   acknowledged units the crash lost (``lost_acknowledged``) and the units promised beyond the stock
   (``oversold_promised``).
2. *Failover timing.* The same sales with a 1 ms lag, the crash at 0.02 to 0.35 s (the stock sells out
   near 0.2 s): what a crash loses depends on whether it hits while the sale is still selling.
3. *Recovery per fault kind* (single_redis with the async pipeline, one replica, 50 ms outages): the
   time from the fault to service back (``t_recovered - t_fire`` in ``Result.faults``) and to the first
   successful sale of a buyer who arrived after the fault (unlimited stock: a sale is always possible;
   for ``app_crash`` and ``partition``, a buyer of the instance hit: two instances, round robin).

Writes the tables to stdout and the figure to ``results/fault_losses/fault_losses.png`` (copied to
``results/curated/faults/`` for the docs).

    .venv/bin/python experiments/fault_losses.py [--seeds 3] [--out results/fault_losses]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import pandas as pd

from engine.scenario import Scenario
from sim import simulate

SALE = ("sale.stock=2000", "workload.buyers=4000", "workload.window=0.4", "redis.replicas=1",
        "redis.node_timeout=0.05", "redis.wait_timeout=0.01", "faults.crash.kind='redis_crash'",
        "faults.crash.node=0")
STRATEGIES = {"single_redis": ("strategy=single_redis", "redis.nodes=1"),
              "sharded": ("strategy=sharded", "redis.nodes=2", "sharded.partitions=8")}
LAGS = (0.0001, 0.0003, 0.001, 0.003, 0.01)
CRASH_AT = 0.1
CRASH_TIMES = (0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.35)
TIMING_LAG = 0.001

# recovery: single_redis with the pipeline, unlimited stock, 3,000 buyers over 0.6 s, the fault at 0.2 s
RECOVERY = ("strategy=single_redis", "sale.stock=1000000", "workload.buyers=3000", "workload.window=0.6",
            "redis.nodes=1", "redis.replicas=1", "redis.node_timeout=0.05", "redis.replica_lag=0.001",
            "pipeline.enabled=true", "app.instances=2", "app.routing='round_robin'", "faults.f.at=0.2")
OUTAGE = 0.05
KINDS = {
    "redis_crash (replica)": ("faults.f.kind='redis_crash'",),
    "redis_crash (no replica)": ("faults.f.kind='redis_crash'", "redis.replicas=0", f"faults.f.duration={OUTAGE}"),
    "redis_failover": ("faults.f.kind='redis_failover'",),
    "redis_failover force": ("faults.f.kind='redis_failover'", "faults.f.force=true"),
    "redis_pause": ("faults.f.kind='redis_pause'", f"faults.f.duration={OUTAGE}"),
    "slow_node x10": ("faults.f.kind='slow_node'", f"faults.f.duration={OUTAGE}"),
    "partition": ("faults.f.kind='partition'", f"faults.f.duration={OUTAGE}", "workload.timeout=1.0"),
    "app_crash": ("faults.f.kind='app_crash'", f"faults.f.duration={OUTAGE}"),
    "mq_outage": ("faults.f.kind='mq_outage'", f"faults.f.duration={OUTAGE}"),
    "consumer_crash": ("faults.f.kind='consumer_crash'", f"faults.f.duration={OUTAGE}"),
}


def losses(strategy: str, lag: float, wait: int, at: float, seeds: int) -> dict[str, float]:
    rows = []
    for seed in range(seeds):
        overrides = [*SALE, *STRATEGIES[strategy], f"redis.replica_lag={lag}", f"redis.wait_replicas={wait}",
                     f"faults.crash.at={at}"]
        s = simulate(Scenario().with_overrides(overrides), seed).summary
        rows.append((s["lost_acknowledged"], s["oversold_promised"], s["acknowledged_units"], s["error"]))
    lost, oversold, acked, errors = np.mean(rows, axis=0)
    return {"strategy": strategy, "replica_lag_ms": lag * 1000, "crash_at": at, "wait": "on" if wait else "off",
            "lost_acknowledged": lost, "oversold_promised": oversold, "acknowledged": acked, "errors": errors}


def recovery(kind: str, seeds: int) -> dict[str, float | str]:
    back, first, errored = [], [], []
    for seed in range(seeds):
        result = simulate(Scenario().with_overrides([*RECOVERY, *KINDS[kind]]), seed)
        row = result.faults.iloc[0]
        fired = float(row["t_fire"])
        back.append(float(row["t_recovered"]) - fired)
        requests = result.requests
        ok = requests[(requests["outcome"] == "ok") & (requests["t_arrival"] >= fired)]
        if kind in ("app_crash", "partition"):  # the buyers of the instance it hit (0: round robin, even ids)
            ok = ok[ok["id"] % 2 == 0]
        first.append(float(ok["t_done"].min()) - fired if len(ok) else math.nan)
        errored.append(float(row["requests_errored"]))
    return {"kind": kind, "service_back_ms": 1000 * float(np.mean(back)),
            "first_sale_ms": 1000 * float(np.mean(first)), "requests_errored": float(np.mean(errored))}


def figure(lag: pd.DataFrame, timing: pd.DataFrame, rec: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    styles = {("single_redis", "off"): ("tab:red", "-"), ("single_redis", "on"): ("tab:red", ":"),
              ("sharded", "off"): ("tab:blue", "-"), ("sharded", "on"): ("tab:blue", ":")}
    for (strategy, wait), (color, style) in styles.items():
        label = f"{strategy}, WAIT {wait}"
        d = lag[(lag["strategy"] == strategy) & (lag["wait"] == wait)]
        axes[0].plot(d["replica_lag_ms"], d["lost_acknowledged"], style, color=color, marker="o", label=label)
        d = timing[(timing["strategy"] == strategy) & (timing["wait"] == wait)]
        axes[1].plot(d["crash_at"], d["lost_acknowledged"], style, color=color, marker="o", label=label)
        axes[1].plot(d["crash_at"], d["oversold_promised"], style, color=color, marker="x", alpha=0.5)
    axes[0].set_xscale("log")
    axes[0].set_xlabel("redis.replica_lag (ms)")
    axes[0].set_ylabel("acknowledged units lost (mean)")
    axes[0].set_title(f"crash of master 0 at {CRASH_AT} s")
    axes[0].legend(fontsize=8, title="dotted: WAIT on (0 lost)", title_fontsize=8)
    axes[1].set_xlabel("crash time (s after sale start)")
    axes[1].set_ylabel("units: o lost acknowledged, x oversold promised")
    axes[1].set_title(f"replica lag {TIMING_LAG * 1000:g} ms (sold out near 0.2 s)")
    y = np.arange(len(rec))
    axes[2].barh(y - 0.2, rec["service_back_ms"], height=0.4, label="service back")
    axes[2].barh(y + 0.2, rec["first_sale_ms"], height=0.4, label="first sale after the fault")
    for k, first in zip(y, rec["first_sale_ms"], strict=True):
        if math.isnan(first):  # no buyer ever bought again (a master restarted empty has no stock keys)
            axes[2].text(1, k + 0.2, "no sale after it", va="center", fontsize=7)
    axes[2].set_yticks(y, rec["kind"], fontsize=8)
    axes[2].invert_yaxis()
    axes[2].set_xlabel("ms after the fault")
    axes[2].set_title(f"recovery per fault kind ({OUTAGE * 1000:g} ms outages)")
    axes[2].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("results/fault_losses"))
    args = parser.parse_args()
    lag = pd.DataFrame([losses(s, lg, w, CRASH_AT, args.seeds) for s in STRATEGIES for lg in LAGS for w in (0, 1)])
    timing = pd.DataFrame([losses(s, TIMING_LAG, w, at, args.seeds)
                           for s in STRATEGIES for at in CRASH_TIMES for w in (0, 1)])
    rec = pd.DataFrame([recovery(kind, args.seeds) for kind in KINDS])
    pd.set_option("display.width", 160)
    print("lost vs replica lag (crash at", CRASH_AT, "s)")
    print(lag.drop(columns="crash_at").to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    print(f"\nlost vs crash time (replica lag {TIMING_LAG * 1000:g} ms)")
    print(timing.drop(columns="replica_lag_ms").to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print("\nrecovery per fault kind")
    print(rec.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    args.out.mkdir(parents=True, exist_ok=True)
    for name, table in (("lag", lag), ("timing", timing), ("recovery", rec)):
        table.to_csv(args.out / f"{name}.csv", index=False)
    figure(lag, timing, rec, args.out / "fault_losses.png")
    print(f"\nfigure: {args.out / 'fault_losses.png'}")


if __name__ == "__main__":
    main()
