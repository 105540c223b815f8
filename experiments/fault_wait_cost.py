"""Experiment: what ``redis.wait_replicas`` (WAIT after each deduction) costs and what it saves.

single_redis (async pipeline on), one master with one asynchronous replica, 20,000 buyers of one unit
in a 1 s burst for 10,000 units; the master crashes at 0.3 s and its replica is promoted after
``redis.node_timeout`` = 0.2 s. For each replica lag, without and with WAIT (timeout 10 ms, the
default): the acknowledged requests' median and p99 latency (measured before the crash), the
acknowledged units the crash lost, the units promised beyond the stock, and the requests that failed.
Means over the seeds.

    .venv/bin/python experiments/fault_wait_cost.py [--seeds 3]
"""

from __future__ import annotations

import argparse

import numpy as np

from engine.scenario import Scenario
from sim import simulate

BASE = ("strategy=single_redis", "sale.stock=10000", "workload.buyers=20000", "workload.window=1.0",
        "redis.nodes=1", "redis.replicas=1", "redis.node_timeout=0.2", "faults.crash.kind='redis_crash'",
        "faults.crash.at=0.3")
LAGS = (0.0002, 0.001, 0.005)
CRASH = 0.3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    print(f"{'replica_lag':>11s} {'WAIT':>5s} {'ok p50':>10s} {'ok p99':>10s} {'lost_ack':>9s} "
          f"{'oversold':>9s} {'errors':>7s}")
    for lag in LAGS:
        for wait in (0, 1):
            rows = []
            for seed in range(args.seeds):
                scenario = Scenario().with_overrides([*BASE, f"redis.replica_lag={lag}", f"redis.wait_replicas={wait}"])
                result = simulate(scenario, seed)
                requests = result.requests
                before = requests[(requests["outcome"] == "ok") & (requests["t_arrival"] < CRASH)]["latency"]
                s = result.summary
                rows.append((np.percentile(before, 50), np.percentile(before, 99), s["lost_acknowledged"],
                             s["oversold_promised"], s["error"]))
            p50, p99, lost, oversold, errors = np.mean(rows, axis=0)
            print(f"{lag * 1000:9.1f}ms {'on' if wait else 'off':>5s} {p50 * 1000:8.3f}ms {p99 * 1000:8.3f}ms "
                  f"{lost:9.1f} {oversold:9.1f} {errors:7.0f}")


if __name__ == "__main__":
    main()
