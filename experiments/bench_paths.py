"""Benchmark per path (issue 15): each path's simulated requests/s against SimPy's bare M/M/1, and its peak RSS.

For each path, SimPy's textbook M/M/1 (``simpy_mm1`` of ``bench_core.py``) is measured
in this process right before and right after the path runs in a **fresh subprocess** (so
the peak RSS printed is that path's own, ``ru_maxrss`` of the child). Each ratio divides
the path's rate by the mean of the two M/M/1 rates, per wall-second and per CPU-second of
the process: this shared machine's speed moves up to 2x within a minute, and CPU time
(``time.process_time``) is far less sensitive to other jobs than wall time, so the verdict
uses the CPU-time ratio; both are printed. Paths:

- ``request``: single_redis, Poisson 60k/s, a 0.1 ms hop both ways, the pipeline off
  (the request path alone; target >= 1.5x, <= 300 MB for 1M requests);
- ``request+app``: the same with the app tier on, priced by the shipped profile
  ``local-2core`` (every calibrated cost: Redis services, hops, app CPU per request,
  per op, per argument, per event-loop wake-up) over 8 instances x 2 workers
  (target >= 1.5x, <= 300 MB);
- ``request+pipeline``: the request path with the async pipeline on (a detail record
  per sale, MQ batches, idempotent DB apply); every detail row must reach the DB
  (target >= 1.0x, <= 600 MB for 1M sales);
- ``db_conditional``: Poisson 800/s on one hot row, below the row's capacity with the default
  DB costs (all ok at 1,000/s, collapsing into timeouts at 2,000/s) so that requests succeed
  rather than time out (target >= 1.0x);
- ``sharded``: 16 Redis nodes, 32 partitions, Poisson 60k/s, stock in the pool refilling
  partitions throughout, the pipeline off like ``request`` (target >= 1.0x).

Each scenario's stock never runs out; the child checks no invariant is violated and
reports the ok count (and, per path, what proves the path ran: app utilisation,
detail rows applied, refills).

    .venv/bin/python experiments/bench_paths.py [--requests N] [--paths request sharded ...]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_core import simpy_mm1  # noqa: E402

REDIS_RATE = 60_000.0
DB_RATE = 800.0
HUGE_STOCK = "sale.stock=1000000000000"


@dataclass(frozen=True)
class Path_:
    name: str
    describe: str
    min_ratio: float
    max_mb: float
    overrides: Callable[[int], list[str]]
    profile: str | None = None


def _poisson(rate: float, requests: int) -> list[str]:
    return ["workload.kind=poisson", f"workload.rate={rate}", f"workload.duration={requests / rate}", HUGE_STOCK]


PATHS: dict[str, Path_] = {p.name: p for p in (
    Path_("request", "single_redis, Poisson 60k/s, hop both ways, pipeline off", 1.5, 300,
          lambda n: [*_poisson(REDIS_RATE, n), "network.redis=0.0001", "pipeline.enabled=false"]),
    Path_("request+app", "the same, app tier on: profile local-2core, 8 instances x 2 workers", 1.5, 300,
          lambda n: [*_poisson(REDIS_RATE, n), "pipeline.enabled=false", "app.instances=8", "app.workers=2"],
          profile="local-2core"),
    Path_("request+pipeline", "single_redis, Poisson 60k/s, hop both ways, async pipeline on", 1.0, 600,
          lambda n: [*_poisson(REDIS_RATE, n), "network.redis=0.0001", "pipeline.enabled=true"]),
    Path_("db_conditional", "db_conditional, Poisson 800/s on one hot row (below its capacity)", 1.0, 600,
          lambda n: ["strategy=db_conditional", *_poisson(DB_RATE, n)]),
    Path_("sharded", "sharded, 16 nodes, 32 partitions, Poisson 60k/s, hop both ways, pipeline off", 1.0, 600,
          lambda n: ["strategy=sharded", "redis.nodes=16", "sharded.partitions=32", *_poisson(REDIS_RATE, n),
                     "network.redis=0.0001", "pipeline.enabled=false"]),
)}


def child(name: str, requests: int) -> dict[str, Any]:
    """Run one path in this (fresh) process; what the parent prints, as a dict."""
    from engine.scenario import Scenario
    from sim import simulate
    from sim.profiles import with_profile

    path = PATHS[name]
    overrides = path.overrides(requests)
    scenario = Scenario().with_overrides(overrides)
    if path.profile:  # the profile's costs, then the path's own settings on top (as --profile then --set)
        scenario, _ = with_profile(scenario, path.profile)
        scenario = scenario.with_overrides(overrides)
    began, cpu = time.perf_counter(), time.process_time()
    result = simulate(scenario, seed=1)
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    s = result.summary
    n = len(result.requests)
    if result.violations:
        raise SystemExit(f"{name}: invariant violations: {result.violations[:3]}")
    checks: dict[str, Any] = {}
    if name == "request+app":
        checks["app_util"] = round(s["app_util"], 3)
        assert s["app_util"] > 0.1, "the app tier did not work"
    if name == "request+pipeline":
        checks["detail_rows_applied"] = s["recon_db_detail_rows"]
        checks["mq_batches"] = s["mq_batches"]
        assert s["recon_db_detail_rows"] == s["recon_detail_records"] == s["ok"], "not every detail record synced"
    if name == "sharded":
        checks["injections"] = s["injections"]
        checks["fallbacks"] = s["fallbacks"]
    if name == "db_conditional":
        checks["db_lock_waits"] = s["db_lock_waits"]
    return {"requests": n, "ok": int(s["ok"]), "timeout": int(s["timeout"]), "elapsed": elapsed,
            "rate": n / elapsed, "cpu_rate": n / cpu, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "checks": checks}


def run_child(name: str, requests: int) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", name, "--requests", str(requests)],
                         check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def mm1(customers: int) -> tuple[float, float]:
    """SimPy's bare M/M/1 in this process: customers per wall-second and per CPU-second."""
    cpu = time.process_time()
    wall_rate = simpy_mm1(customers)
    return wall_rate, customers / (time.process_time() - cpu)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000_000, help="requests per path (default 1,000,000)")
    parser.add_argument("--mm1-customers", type=int, default=300_000)
    parser.add_argument("--paths", nargs="+", choices=list(PATHS), default=list(PATHS))
    parser.add_argument("--child", choices=list(PATHS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.requests)))
        return 0
    print(f"{'path':<17} {'requests':>10} {'ok':>10} {'req/s':>8} {'M/M/1/s':>8} {'ratio':>5} {'req/cpu-s':>9} "
          f"{'M/M/1/cpu-s':>11} {'ratio':>5} {'target':>6} {'peak RSS':>8} {'target':>9}  verdict  checks")
    met_all = True
    for name in args.paths:
        path = PATHS[name]
        print(f"[{name}] SimPy M/M/1 ({args.mm1_customers:,} customers), before ...", file=sys.stderr, flush=True)
        before = mm1(args.mm1_customers)
        print(f"[{name}] {path.describe}: {args.requests:,} requests in a subprocess ...", file=sys.stderr, flush=True)
        r = run_child(name, args.requests)
        print(f"[{name}] done in {r['elapsed']:.1f} s; SimPy M/M/1 again, after ...", file=sys.stderr, flush=True)
        after = mm1(args.mm1_customers)
        wall_b, cpu_b = (before[0] + after[0]) / 2, (before[1] + after[1]) / 2
        wall_ratio, cpu_ratio = r["rate"] / wall_b, r["cpu_rate"] / cpu_b
        met = cpu_ratio >= path.min_ratio and r["peak_mb"] <= path.max_mb
        met_all &= met
        checks = " ".join(f"{k}={v:,}" if isinstance(v, int) else f"{k}={v}" for k, v in r["checks"].items())
        print(f"{name:<17} {r['requests']:>10,} {r['ok']:>10,} {r['rate']:>8,.0f} {wall_b:>8,.0f} {wall_ratio:>5.2f} "
              f"{r['cpu_rate']:>9,.0f} {cpu_b:>11,.0f} {cpu_ratio:>5.2f} {'>= ' + format(path.min_ratio, '.1f'):>6} "
              f"{r['peak_mb']:>5,.0f} MB {'<= ' + format(path.max_mb, '.0f') + ' MB':>9}  "
              f"{'met' if met else 'MISSED':<7}  {checks}", flush=True)
        print(f"[{name}] M/M/1 before {before[0]:,.0f}/s ({before[1]:,.0f}/cpu-s), after {after[0]:,.0f}/s "
              f"({after[1]:,.0f}/cpu-s)", file=sys.stderr, flush=True)
    return 0 if met_all else 1


if __name__ == "__main__":
    sys.exit(main())
