"""Issue #15 item 4: a Double-11-sized sale on one machine, every strategy, wall time and peak RSS.

10,000,000 buyers over 20 s for 1,000,000 units, the async pipeline on, sharded on 64 Redis
nodes (its partitions 4 per node); the other strategies on the same buyers. Each strategy runs
in a subprocess of its own, so its peak RSS (``ru_maxrss``) is its own; the script prints wall
time, CPU time, peak RSS and the headline figures per strategy, against the target of 4 GB.

    .venv/bin/python experiments/ten_million.py [--scale 1.0] [--strategies single_redis,sharded,...]

``--scale 0.01`` runs the same sale at 1% (100,000 buyers, 10,000 units, 0.2 s) to check the
script; the README's speed section gives the full-size figures with this command.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

from engine.strategies import STRATEGIES

TARGET_RSS_MB = 4096


def overrides(scale: float, strategy: str) -> list[str]:
    buyers = max(1, round(10_000_000 * scale))
    sets = [f"workload.buyers={buyers}", f"workload.window={20.0 * scale!r}", f"sale.stock={max(1, buyers // 10)}",
            "workload.kind=burst", "pipeline.enabled=true"]
    if strategy == "sharded":
        sets += ["redis.nodes=64", "sharded.partitions=256"]
    return sets


def child(strategy: str, sets: list[str]) -> None:
    from engine.scenario import Scenario
    from sim import simulate

    scenario = Scenario().with_overrides([*sets, f"strategy={strategy}"])
    start, cpu = time.perf_counter(), time.process_time()
    result = simulate(scenario, seed=0)
    s = result.summary
    print(json.dumps({"strategy": strategy, "wall_s": time.perf_counter() - start, "cpu_s": time.process_time() - cpu,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "requests": int(s["requests"]), "sold": int(s["sold"]), "goodput": float(s["goodput"]),
                      "violations": len(result.violations)}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full sale (default 1)")
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not 0 < args.scale <= 1:
        parser.error(f"--scale must be in (0, 1] (got {args.scale})")
    if args.child:
        child(args.child, overrides(args.scale, args.child))
        return 0
    names = args.strategies.split(",")
    unknown = [n for n in names if n not in STRATEGIES]
    if unknown:
        parser.error(f"unknown strategy {unknown[0]!r}; choose from: {', '.join(STRATEGIES)}")
    print(f"{10_000_000 * args.scale:,.0f} buyers over {20 * args.scale:g} s, {1_000_000 * args.scale:,.0f} units, "
          f"pipeline on; sharded on 64 nodes", flush=True)
    worst = 0.0
    for name in names:
        out = subprocess.run([sys.executable, __file__, "--scale", repr(args.scale), "--child", name],
                             capture_output=True, text=True)
        if out.returncode != 0:
            print(f"{name}: failed\n{out.stderr.strip()[-2000:]}", flush=True)
            return 1
        row = json.loads(out.stdout.strip().splitlines()[-1])
        worst = max(worst, row["peak_rss_mb"])
        print(f"{name:>15}: wall {row['wall_s']:7.1f} s  CPU {row['cpu_s']:7.1f} s  peak RSS {row['peak_rss_mb']:7,.0f} MB  "
              f"{row['requests']:,} requests, {row['sold']:,} sold, goodput {row['goodput']:,.0f}/s, "
              f"violations {row['violations']}", flush=True)
    print(f"largest peak RSS {worst:,.0f} MB (target <= {TARGET_RSS_MB:,} MB): "
          f"{'met' if worst <= TARGET_RSS_MB else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
