"""How late asyncio wakes a sleeping open-loop sender, by selector (the figures in engine/real/eventloop.py).

    .venv/bin/python experiments/timer_lateness.py [--rate 3000] [--count 3000]

Releases ``count`` Poisson arrivals at ``rate``/s by sleeping until each
intended instant, on the default loop (epoll) and on the loop real workers use
(:func:`engine.real.eventloop.run_precise`), side by side in one run, and
prints the lateness percentiles of each.
"""

from __future__ import annotations

import argparse
import asyncio

import numpy as np

from engine.real.eventloop import run_precise


async def release(times: np.ndarray) -> np.ndarray:
    loop = asyncio.get_running_loop()
    t0 = loop.time() + 0.01
    late = np.empty(len(times))
    for i, t in enumerate(times.tolist()):
        due = t0 + t
        if due > loop.time():
            await asyncio.sleep(due - loop.time())
        late[i] = loop.time() - due
    return late


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=3000.0)
    parser.add_argument("--count", type=int, default=3000)
    args = parser.parse_args()
    times = np.cumsum(np.random.default_rng(1).exponential(1 / args.rate, args.count))
    for name, run in (("default (epoll)", asyncio.run), ("run_precise (select, 1 ns slack)", run_precise)):
        late = run(release(times)) * 1e3
        p50, p90, p99 = np.percentile(late, [50, 90, 99])
        print(f"{name:34s} lateness ms: p50 {p50:.3f}  p90 {p90:.3f}  p99 {p99:.3f}  mean {late.mean():.3f}")


if __name__ == "__main__":
    main()
