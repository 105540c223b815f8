"""How fast is the real driver? Its deduction throughput against redis-benchmark's, same node, same script.

Starts its own redis-server on a free loopback port (nothing else touches it),
then, alternately (``--rounds`` times, to share the machine's noise fairly):

- ``redis-benchmark -c 50 -n N EVALSHA <deduct sha> 2 stock sold 1`` (50 clients,
  no pipelining): the server's own ceiling for this script;
- ``run_real`` of single_redis (pipeline off, stock never runs out, no client
  timeout) with N buyers arriving at once: the driver's deduction throughput
  (requests / (last reply - first arrival)), every request a real EVALSHA of
  the same ``deduct.lua``.

Prints both medians and the ratio driver / redis-benchmark (target >= 0.5).

    .venv/bin/python experiments/bench_real_driver.py [--requests 100000] [--workers 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import csv
import io
import shutil
import statistics
import subprocess
import sys

import redis

from engine.real import RealOptions, RedisTarget, run_real
from engine.real.cluster import LocalCluster
from engine.real.links import sha1
from engine.scenario import Scenario
from engine.scripts import get


def redis_benchmark(port: int, requests: int, clients: int = 50) -> float:
    """EVALSHA of deduct.lua by redis-benchmark: requests per second."""
    lua = get("deduct").lua
    client = redis.Redis(port=port)
    sha = client.script_load(lua)
    assert sha == sha1(lua)
    client.set("bench:stock:{b}", 10**12)
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-c", str(clients), "-n", str(requests), "--csv",
         "EVALSHA", sha, "2", "bench:stock:{b}", "bench:sold:{b}", "1"],
        check=True, capture_output=True, text=True, timeout=600,
    ).stdout
    client.delete("bench:stock:{b}", "bench:sold:{b}")
    client.close()
    rows = list(csv.DictReader(io.StringIO(out)))
    return float(rows[-1]["rps"])


def driver(port: int, requests: int, workers: int, lanes: int, round_: int) -> float:
    """The real driver: single_redis deductions per second, all buyers arriving at once."""
    scenario = Scenario().with_overrides([
        f"sale.stock={requests * 10}", f"workload.buyers={requests}", "workload.window=0.001",
        "workload.timeout=inf", "pipeline.enabled=false", "sale.soldout_flag=false",
    ])
    options = RealOptions(RedisTarget(f"redis://127.0.0.1:{port}/0"), namespace=f"bench{round_}",
                          workers=workers, lanes=lanes)
    result = run_real(scenario, round_, "single_redis", options)
    if not result.ok or result.summary["ok"] != requests:
        raise SystemExit(f"driver run broke: {result.violations} {result.summary}")
    return float(result.summary["throughput"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2, help="driver processes")
    parser.add_argument("--lanes", type=int, default=4, help="connections per worker")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    if shutil.which("redis-benchmark") is None:
        print("redis-benchmark not found; install it with: apt-get install redis-server", file=sys.stderr)
        return 2
    bench, real = [], []
    with LocalCluster(1) as server:  # a plain single node of our own
        port = server.ports[0]
        for round_ in range(args.rounds):
            bench.append(redis_benchmark(port, args.requests))
            real.append(driver(port, args.requests, args.workers, args.lanes, round_))
            print(f"round {round_}: redis-benchmark {bench[-1]:,.0f} EVALSHA/s, "
                  f"driver {real[-1]:,.0f} deductions/s", flush=True)
    b, r = statistics.median(bench), statistics.median(real)
    print(f"redis-benchmark (50 clients, no pipelining): {b:,.0f} EVALSHA/s (median of {args.rounds})")
    print(f"real driver ({args.workers} worker(s) x {args.lanes} lanes): {r:,.0f} deductions/s")
    print(f"ratio driver / redis-benchmark: {r / b:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
