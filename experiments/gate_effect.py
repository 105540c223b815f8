"""Experiment: what admission control (the ``gate`` section) does to goodput, latency and server load.

Two overloads, each simulated with and without a gate (same buyers, same seed):

- ``db_conditional`` under Poisson buyers at 4x its peak (about 1,000/s; docs/lockdb.md), on a
  row that never runs out: without a gate the lock queue grows until every buyer times out;
- ``single_redis`` under a burst of buyers past one Redis node's capacity (about 95,000
  EVALSHA/s), with plenty of stock.

For each: goodput (successes per second while the load lasts), p99 and served_p99, timeouts, the
gate's refusals and queue, and the server's load (row-lock waits or the Redis node's utilisation).

    .venv/bin/python experiments/gate_effect.py [--seed 0] [--duration 2]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from engine.scenario import Scenario
from sim import simulate

CASES = (
    # label, strategy, load, gate variants (label, overrides)
    ("db_conditional, Poisson 4,000/s (peak ~1,000/s)", "db_conditional",
     ("workload.kind=poisson", "workload.rate=4000", "sale.stock=1000000000"),
     (("no gate", ()),
      ("gate 200/s x 4, no room", ("gate.rate=200", "gate.burst=5")),
      ("gate 200/s x 4, room 50, max_wait 0.2 s", ("gate.rate=200", "gate.burst=5", "gate.room=50",
                                                    "gate.max_wait=0.2")))),
    ("single_redis, burst 300,000 buyers in 2 s (~150,000/s; node ~95,000/s)", "single_redis",
     ("workload.kind=burst", "workload.buyers=300000", "workload.window=2", "sale.stock=1000000000",
      "pipeline.enabled=false"),
     (("no gate", ()),
      ("gate 20,000/s x 4, no room", ("gate.rate=20000", "gate.burst=100")),
      ("gate 20,000/s x 4, room 2,000, max_wait 0.1 s", ("gate.rate=20000", "gate.burst=100",
                                                           "gate.room=2000", "gate.max_wait=0.1")))),
)


def ms(value: float) -> str:
    return f"{value * 1000:9.2f} ms"


def run(seed: int, duration: float) -> list[str]:
    lines = []
    for title, strategy, load, variants in CASES:
        lines.append(f"{title}, seed {seed}")
        lines.append(f"  {'':44s} {'goodput/s':>9s} {'p99':>12s} {'served_p99':>12s} {'timeout':>8s} "
                     f"{'gated':>8s} {'queued':>7s} {'wait_mean':>12s}  server load")
        for label, overrides in variants:
            over: Sequence[str] = (*load, *overrides)
            if "workload.kind=poisson" in load:
                over = (*over, f"workload.duration={duration}")
            result = simulate(Scenario().with_overrides(list(over)), seed, strategy)
            s = result.summary
            requests = result.requests
            window = duration if "workload.kind=poisson" in load else float(requests["t_arrival"].max())
            goodput = int(((requests["outcome"] == "ok") & (requests["t_done"] <= window)).sum()) / window
            if strategy.startswith("db_"):
                load_text = (f"lock waits {s.get('db_lock_waits', 0):,.0f}, replies to gone "
                             f"{s.get('db_replies_to_gone', 0):,.0f}")
            else:
                load_text = f"node util {max(v for k, v in s.items() if k.startswith('util_node')):.0%}"
            lines.append(f"  {label:44s} {goodput:9,.0f} {ms(s['p99'])} {ms(s['served_p99'])} {s['timeout']:8,} "
                         f"{s.get('gate_refused', 0):8,} {s.get('gate_queued', 0):7,} "
                         f"{ms(s.get('gate_wait_mean', 0.0))}  {load_text}"
                         + ("" if result.ok else f"  VIOLATIONS {result.violations}"))
        lines.append("")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--duration", type=float, default=2.0, help="seconds of Poisson load (DB case)")
    args = parser.parse_args(argv)
    print("\n".join(run(args.seed, args.duration)))


if __name__ == "__main__":
    main()
