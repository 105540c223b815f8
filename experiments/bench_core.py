"""Benchmark: the simulator's request path against SimPy's own bare M/M/1, in one process.

(a) simulated requests per wall-second: single_redis, Poisson arrivals, network
    delay both ways, 1,000,000 requests (the whole flashsim path: arrival, engine
    generator, hop, FIFO node, Lua twin, hop back, columnar record);
(b) SimPy's textbook M/M/1 on ``simpy.Resource``: customers per wall-second;
and the ratio a/b (target >= 1.5) and the peak RSS of the process (target <= 500 MB).

With ``--app``, (a) runs twice back to back, app tier off then on (4 instances x
2 workers, lognormal CPU per request and per op, a client hop; see
docs/app-tier.md), and both ratios are printed: the target holds for both.

    .venv/bin/python experiments/bench_core.py [--requests N] [--app]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import numpy as np
import simpy

from engine.scenario import Scenario
from sim import simulate


def simpy_mm1(customers: int, lam: float = 80_000.0, mu: float = 100_000.0, seed: int = 1) -> float:
    """SimPy's own M/M/1 (a Process per customer, a Resource request per service); customers/s."""
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1 / lam, customers).tolist()
    services = rng.exponential(1 / mu, customers).tolist()
    env = simpy.Environment()
    server = simpy.Resource(env, capacity=1)
    latency = np.empty(customers)

    def customer(i: int):
        start = env.now
        with server.request() as request:
            yield request
            yield env.timeout(services[i])
        latency[i] = env.now - start

    def source():
        for i in range(customers):
            yield env.timeout(gaps[i])
            env.process(customer(i))

    env.process(source())
    began = time.perf_counter()
    env.run()
    elapsed = time.perf_counter() - began
    assert abs(latency.mean() - 1 / (mu - lam)) / (1 / (mu - lam)) < 0.2  # it really is an M/M/1
    return customers / elapsed


# The app tier on: 4 instances x 2 workers at ~26% CPU utilisation at 60k req/s, with some queueing.
APP_TIER = (
    "app.instances=4", "app.workers=2", 'app.cpu_request={kind="lognormal", mean=2.0e-5, cv=0.5}',
    'app.cpu_op={kind="lognormal", mean=1.5e-5, cv=0.5}', "network.client=0.0002",
)


def flashsim_requests(requests: int, rate: float = 60_000.0, pipeline: bool = False,
                      app: bool = False) -> tuple[float, int]:
    scenario = Scenario().with_overrides([
        "workload.kind=poisson", f"workload.rate={rate}", f"workload.duration={requests / rate}",
        "sale.stock=1000000000000", "network.redis=0.0001",
        # by default the request path alone; the sync pipeline adds a detail record, MQ and DB work per sale
        f"pipeline.enabled={'true' if pipeline else 'false'}",
        *(APP_TIER if app else ()),
    ])
    began = time.perf_counter()
    result = simulate(scenario, seed=1)
    elapsed = time.perf_counter() - began
    assert result.violations == [] and result.summary["ok"] == len(result.requests)
    if app:
        assert result.summary["app_util"] > 0.1  # the tier really worked
    return len(result.requests) / elapsed, len(result.requests)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--mm1-customers", type=int, default=300_000)
    parser.add_argument("--pipeline", action="store_true",
                        help="run (a) with the async persistence pipeline on (informational: the targets are for the request path)")
    parser.add_argument("--app", action="store_true",
                        help="run (a) again with the app tier on (4 instances x 2 workers, CPU costs, client hop)")
    args = parser.parse_args()
    b = simpy_mm1(args.mm1_customers)
    print(f"(b) SimPy bare M/M/1 (simpy.Resource): {b:,.0f} customers/s ({args.mm1_customers:,} customers)")
    a, n = flashsim_requests(args.requests, pipeline=args.pipeline)
    path = "with the async pipeline" if args.pipeline else "request path"
    print(f"(a) flashsim single_redis, Poisson, hop both ways, {path}: {a:,.0f} simulated requests/s ({n:,} requests)")
    ratios = [a / b]
    print(f"ratio a/b = {ratios[0]:.2f}  (target >= 1.5)")
    if args.app:
        a_app, n = flashsim_requests(args.requests, pipeline=args.pipeline, app=True)
        print(f"(a') the same with the app tier on (4 instances x 2 workers): {a_app:,.0f} simulated requests/s "
              f"({n:,} requests)")
        ratios.append(a_app / b)
        print(f"ratio a'/b = {ratios[1]:.2f}  (target >= 1.5)")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    print(f"peak RSS = {peak_mb:,.0f} MB  (target <= 500 MB)")
    return 0 if min(ratios) >= 1.5 and peak_mb <= 500 else 1


if __name__ == "__main__":
    sys.exit(main())
