"""Issue #11 item 6: does the real sharded app keep up with real single_redis on a burst?

Starts its own Redis Cluster (``--nodes`` masters on free loopback ports; nothing
else touches it) and runs, alternately (``--rounds`` times, so both share the
machine's noise), the same burst for real with each strategy: ``--buyers`` buyers
over ``--window`` seconds for ``--stock`` units (default: the issue's 30,000
buyers in 1 s, 3,000 units), seed = round. Prints per run goodput (units sold per
second of sale), time to sell-out, timeouts, errors, CPU per buyer of the
load generators and of the pipeline service (each process's own clock) and of
the Redis masters (``INFO cpu``), and the medians with the ratio sharded / single_redis (target >= 1).

    .venv/bin/python experiments/real_burst.py [--rounds 5] [--workers 1] [--nodes 3] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys

from engine.real import RealOptions, RedisTarget, run_real
from engine.real.cluster import LocalCluster
from engine.scenario import Scenario

STRATEGIES = ("single_redis", "sharded")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=1, help="load-generator processes")
    parser.add_argument("--nodes", type=int, default=3, help="Redis masters")
    parser.add_argument("--buyers", type=int, default=30_000)
    parser.add_argument("--window", type=float, default=1.0)
    parser.add_argument("--stock", type=int, default=3_000)
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="scenario override")
    args = parser.parse_args(argv)
    names = args.strategies.split(",")
    scenario = Scenario().with_overrides([f"workload.buyers={args.buyers}", f"workload.window={args.window}",
                                          f"sale.stock={args.stock}", f"redis.nodes={args.nodes}", *args.set])
    figures: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    with LocalCluster(args.nodes) as cluster:
        for round_ in range(args.rounds):
            for name in names:
                before = children_cpu()
                result = run_real(scenario, round_, name, RealOptions(RedisTarget(cluster.url), workers=args.workers))
                s = result.summary
                row = {"goodput": float(s["goodput"]), "sellout": float(s["time_to_sellout"]),
                       "timeouts": float(s["timeout"]), "errors": float(s.get("error", 0)),
                       "cpu_per_buyer_us": (children_cpu() - before) / args.buyers * 1e6,
                       "driver_us": float(s["driver_cpu_s"]) / args.buyers * 1e6,
                       "service_us": float(s["service_cpu_s"]) / args.buyers * 1e6,
                       "redis_us": float(s["redis_cpu_s"]) / args.buyers * 1e6,
                       "ok": float(s["ok"]), "violations": float(len(result.violations))}
                figures[name].append(row)
                print(f"round {round_} {name:>12}: goodput {row['goodput']:>8,.0f}/s  sell-out {row['sellout']:.3f} s  "
                      f"timeouts {row['timeouts']:,.0f}  errors {row['errors']:,.0f}  "
                      f"CPU/buyer: load generators {row['driver_us']:.1f} us, pipeline service {row['service_us']:.1f} us, "
                      f"Redis {row['redis_us']:.1f} us  violations {row['violations']:.0f}",
                      flush=True)
    medians = {name: {k: statistics.median(r[k] for r in rows) for k in rows[0]} for name, rows in figures.items()}
    for name, m in medians.items():
        print(f"median {name:>12}: goodput {m['goodput']:,.0f}/s, sell-out {m['sellout']:.3f} s, "
              f"CPU/buyer: load generators {m['driver_us']:.1f} us, service {m['service_us']:.1f} us, "
              f"Redis {m['redis_us']:.1f} us, "
              f"timeouts {m['timeouts']:,.0f}")
    if set(STRATEGIES) <= set(medians):
        ratio = medians["sharded"]["goodput"] / medians["single_redis"]["goodput"]
        print(f"sharded / single_redis goodput: {ratio:.2f} (target >= 1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
