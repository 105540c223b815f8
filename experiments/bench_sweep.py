"""Benchmark: the sweep runner's parallel speed-up, 64 runs on 2 worker processes vs 1, in one run.

The same sweep (experiments/sweeps/bench64.toml: 64 single_redis runs) is run
twice into fresh folders: once with one worker (in this process: the honest
serial baseline, no pool overhead) and once with a pool of N processes. It
checks that both runs.parquet tables are identical, then prints the wall
times and the speed-up (target >= 1.8 on 2 otherwise idle cores).

    .venv/bin/python experiments/bench_sweep.py [--workers 2] [--sweep FILE]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from sim.bench import expand, load_sweep, run_sweep

HERE = Path(__file__).resolve().parent
TARGET = 1.8


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="parallel worker processes (default 2)")
    parser.add_argument("--sweep", type=Path, default=HERE / "sweeps" / "bench64.toml", help="sweep definition")
    args = parser.parse_args(argv)

    sweep = load_sweep(args.sweep)
    runs = len(expand(sweep))
    load = os.getloadavg()[0]
    print(f"sweep {sweep.name}: {runs} runs; cores {os.cpu_count()}, load average {load:.2f} before start")
    with tempfile.TemporaryDirectory(prefix="flashsim-bench-") as tmp:
        timings = {}
        tables = {}
        for workers in (1, args.workers):
            cpu = _cpu_seconds()
            start = time.perf_counter()
            result = run_sweep(sweep, Path(tmp) / f"w{workers}", workers=workers, quiet=True)
            timings[workers] = time.perf_counter() - start
            cpu = _cpu_seconds() - cpu
            tables[workers] = result.runs
            # cores used = CPU seconds / wall seconds: below the worker count, other processes took the rest
            print(f"  {workers} worker(s): {timings[workers]:6.2f} s wall, {cpu:6.2f} s CPU "
                  f"({cpu / timings[workers]:.2f} cores used; {result.executed} runs, {runs / timings[workers]:.1f} runs/s)")
    pd.testing.assert_frame_equal(tables[1], tables[args.workers])
    speedup = timings[1] / timings[args.workers]
    verdict = "meets" if speedup >= TARGET else "BELOW"
    print(f"identical tables: yes; parallel speed-up on {args.workers} workers: {speedup:.2f}x "
          f"({verdict} the {TARGET}x target; load average now {os.getloadavg()[0]:.2f})")
    return 0


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the pool's workers, once shut down)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


if __name__ == "__main__":
    sys.exit(main())
