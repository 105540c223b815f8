"""``flashsim run | compare | reference``: simulate strategies on a scenario, print the figures.

    flashsim run [SCENARIO.toml] [--strategy NAME] [--set k=v ...] [--seed N] [--out DIR] [--real ...]
    flashsim compare [SCENARIO.toml] [--only NAME,...] [--all] [--set k=v ...] [--seed N] [--out DIR]
    flashsim reference            (the scenario reference, as in the README)
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from typing import Any

from engine.result import Result
from engine.scenario import Scenario, reference_rows
from engine.strategies import STRATEGIES
from sim.cli import real
from sim.cli.common import (
    CliError,
    Command,
    no_arguments,
    report_violations,
    scenario_arguments,
    scenario_from,
    writable_dir,
)
from sim.output import save_result
from sim.progress import buyer_progress
from sim.world import resolve_strategy, simulate


# ---------------------------------------------------------------- formatting
def _fmt(value: Any, key: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if key in ("p50", "p95", "p99", "p999", "ok_p99", "served_p50", "served_p99", "steady_p99",
               "steady_ok_p99", "time_to_sellout", "gate_wait_mean", "gate_wait_max"):
        return f"{value * 1000:.3f} ms" if key != "time_to_sellout" else f"{value:.3f} s"
    if key.startswith("util_"):
        return f"{value:.1%}"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


HEADLINE = ("requests", "ok", "sold_out", "timeout", "error", "sold", "remaining", "oversold", "goodput",
            "time_to_sellout", "p50", "p99", "p999", "ok_p99", "served", "served_p50", "served_p99", "violations")
# The figure that explains each mechanism, shown by default when a strategy reports it
# (--all shows every figure every strategy reports).
MECHANISM = ("false_sold_outs", "stranded", "injections", "switches", "db_lock_wait_mean", "db_lock_timeouts",
             "retries", "conflict_ratio", "db_txn", "db_write_reduction", "sync_lag_p99", "sync_differences",
             "app_util_max", "app_wait_mean", "gate_refused", "gate_queued", "gate_wait_mean")


def table(results: Sequence[Result], everything: bool = True) -> str:
    """Summaries side by side: one column per run, one row per figure.

    With ``everything`` false: the headline, the mechanism figures and node utilisation only.
    """
    keys = list(HEADLINE)
    for result in results:
        extra = [k for k in result.summary if k not in keys and k != "strategy"]
        if not everything:
            extra = [k for k in extra if k in MECHANISM or k.startswith("util_node")]
        keys += extra
    if not everything:
        keys = keys[: len(HEADLINE)] + sorted(keys[len(HEADLINE):], key=lambda k: (k.startswith("util_"), MECHANISM.index(k) if k in MECHANISM else 0, k))
    header = ["", *[r.strategy for r in results]]
    rows = [[k, *[_fmt(r.summary.get(k), k) for r in results]] for k in keys]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    line = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def describe(scenario: Scenario, seed: int) -> str:
    w = scenario.workload
    if w.kind == "burst":
        load = f"{w.buyers:,} buyers over {w.window:g} s ({w.shape})"
    elif w.kind == "poisson":
        load = f"Poisson {w.rate:,.0f} req/s for {w.duration:g} s"
    else:
        load = f"{w.users:,} closed-loop users for {w.duration:g} s"
    return (f"scenario {scenario.name!r}: {scenario.sale.stock:,} units of {scenario.sale.sku}, {load}, "
            f"timeout {w.timeout:g} s, {scenario.redis.nodes} Redis node(s), seed {seed}")


# ---------------------------------------------------------------- commands
def _run_arguments(parser: argparse.ArgumentParser) -> None:
    scenario_arguments(parser)
    parser.add_argument("--strategy", help=f"strategy to run (default: the scenario's); one of: {', '.join(STRATEGIES)}")
    real.add_real_arguments(parser)


def _run(args: argparse.Namespace) -> int:
    scenario = real.with_faults(scenario_from(args), args.faults)  # --fault SPEC: into the faults section
    cls = resolve_strategy(scenario, args.strategy)
    if args.real and scenario.workload.retry > 0:
        raise CliError("workload.retry > 0 is simulated only: the real load generator does not retry yet")
    writable_dir(args.out)
    print(describe(scenario, args.seed))
    with buyer_progress(cls.name, args.quiet) as progress:
        if args.real:
            result = real.run_for_real(args, scenario, cls.name, progress)
        else:
            result = simulate(scenario, args.seed, cls.name, progress)
    print(table([result]))
    if args.out:
        print(f"wrote {save_result(result, args.out)}")
    return report_violations([result])


def _compare_arguments(parser: argparse.ArgumentParser) -> None:
    scenario_arguments(parser)
    parser.add_argument("--only", metavar="NAME[,NAME...]",
                        help=f"compare only these strategies (default: all of {', '.join(STRATEGIES)})")
    parser.add_argument("--all", action="store_true", help="show every figure, not just the headline ones")


def _compare(args: argparse.Namespace) -> int:
    scenario = scenario_from(args)
    names = list(STRATEGIES)
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in STRATEGIES]
        if unknown or not names:
            raise CliError(f"unknown strategy {', '.join(unknown) or repr(args.only)}; choose from: {', '.join(STRATEGIES)}")
    writable_dir(args.out)
    print(describe(scenario, args.seed))
    results = []
    for name in names:
        with buyer_progress(name, args.quiet) as progress:
            results.append(simulate(scenario, args.seed, name, progress))
        if not args.quiet and progress is None:  # no bar (stderr is not a terminal): a line per strategy
            print(f"flashsim: {name} done in {results[-1].wall_seconds:.1f} s", file=sys.stderr)
    print(table(results, everything=args.all))
    if args.out:
        for result in results:
            save_result(result, args.out / result.strategy)
        print(f"wrote {args.out}")
    return report_violations(results)


def _reference(args: argparse.Namespace) -> int:
    print(reference_markdown())
    return 0


def reference_markdown() -> str:
    lines = ["| key | default | meaning |", "| --- | --- | --- |"]
    lines += [f"| `{key}` | `{default}` | {doc} |" for key, default, doc in reference_rows()]
    return "\n".join(lines)


COMMANDS = {
    "run": Command(_run_arguments, _run),
    "compare": Command(_compare_arguments, _compare),
    "reference": Command(no_arguments, _reference),
}
