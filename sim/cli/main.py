"""The ``flashsim`` command line.

    flashsim run [SCENARIO.toml] [--strategy NAME] [--set k=v ...] [--seed N] [--out DIR]
    flashsim compare [SCENARIO.toml] [--set k=v ...] [--seed N] [--out DIR]
    flashsim reference            (the scenario reference, as in the README)

Bad input exits with status 2 and one line on stderr naming the problem;
a broken invariant exits with status 3.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from engine.result import Result
from engine.scenario import Scenario, ScenarioError, load_scenario, reference_rows
from engine.strategies import STRATEGIES
from sim.output import save_result
from sim.world import resolve_strategy, simulate

EXIT_USAGE = 2
EXIT_INVARIANT = 3


class CliError(Exception):
    """A problem with the user's input: printed as one line, exit status 2."""


# Subcommands: name -> (add_arguments, handler). Other modules add theirs with `command`.
COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int], str]] = {}


def command(name: str, help: str) -> Callable:
    def wrap(handler: Callable[[argparse.Namespace], int]) -> Callable:
        def decorate(add_arguments: Callable[[argparse.ArgumentParser], None]) -> Callable:
            COMMANDS[name] = (add_arguments, handler, help)
            return add_arguments
        return decorate
    return wrap


def scenario_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", nargs="?", help="scenario TOML file (default: the embedded default)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a scenario key, e.g. --set sale.stock=5000 (repeatable)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", type=Path, help="write results into this directory")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def scenario_from(args: argparse.Namespace) -> Scenario:
    if args.seed < 0:
        raise CliError(f"--seed must be >= 0 (got {args.seed})")
    return load_scenario(args.scenario).with_overrides(args.overrides)


def progress_printer(label: str, quiet: bool) -> Callable[[int, int | None], None] | None:
    if quiet or not sys.stderr.isatty():
        return None
    start = time.perf_counter()

    def show(done: int, total: int | None) -> None:
        elapsed = time.perf_counter() - start
        if total:
            eta = elapsed / done * (total - done) if done else math.nan
            text = f"\r{label}: {done / total:6.1%} ({done:,}/{total:,} buyers) eta {eta:5.1f}s "
        else:
            text = f"\r{label}: {done:,} requests, {elapsed:5.1f}s "
        sys.stderr.write(text)
        if total and done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


# ---------------------------------------------------------------- formatting
def _fmt(value: Any, key: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if key in ("p50", "p95", "p99", "p999", "ok_p99", "time_to_sellout"):
        return f"{value * 1000:.3f} ms" if key != "time_to_sellout" else f"{value:.3f} s"
    if key.startswith("util_"):
        return f"{value:.1%}"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


HEADLINE = ("requests", "ok", "sold_out", "timeout", "error", "sold", "remaining", "oversold", "goodput",
            "time_to_sellout", "p50", "p99", "p999", "ok_p99", "violations")
# The figure that explains each mechanism, shown by default when a strategy reports it
# (--all shows every figure every strategy reports).
MECHANISM = ("false_sold_outs", "stranded", "injections", "switches", "db_lock_wait_mean", "db_lock_timeouts",
             "retries", "conflict_ratio", "db_txn", "db_write_reduction", "sync_lag_p99", "sync_differences")


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


def report_violations(results: Sequence[Result]) -> int:
    bad = [(r.strategy, v) for r in results for v in r.violations]
    for strategy, violation in bad:
        print(f"INVARIANT BROKEN [{strategy}]: {violation}", file=sys.stderr)
    return EXIT_INVARIANT if bad else 0


# ---------------------------------------------------------------- commands
def _run_arguments(parser: argparse.ArgumentParser) -> None:
    scenario_arguments(parser)
    parser.add_argument("--strategy", help=f"strategy to run (default: the scenario's); one of: {', '.join(STRATEGIES)}")
    _real_cli.add_real_arguments(parser)


def _run(args: argparse.Namespace) -> int:
    scenario = scenario_from(args)
    cls = resolve_strategy(scenario, args.strategy)
    print(describe(scenario, args.seed))
    progress = progress_printer(cls.name, args.quiet)
    if args.real:
        result = _real_cli.run_for_real(args, scenario, cls.name, progress)
    else:
        result = simulate(scenario, args.seed, cls.name, progress)
    print(table([result]))
    if args.out:
        print(f"wrote {save_result(result, args.out)}")
    return report_violations([result])


command("run", "simulate one strategy on a scenario")(_run)(_run_arguments)


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
    print(describe(scenario, args.seed))
    results = []
    for name in names:
        results.append(simulate(scenario, args.seed, name, progress_printer(name, args.quiet)))
        if args.quiet is False and not sys.stderr.isatty():
            print(f"flashsim: {name} done in {results[-1].wall_seconds:.1f} s", file=sys.stderr)
    print(table(results, everything=args.all))
    if args.out:
        for result in results:
            save_result(result, args.out / result.strategy)
        print(f"wrote {args.out}")
    return report_violations(results)


command("compare", "run every strategy on the same buyers and print them side by side")(_compare)(_compare_arguments)


def _reference(args: argparse.Namespace) -> int:
    print(reference_markdown())
    return 0


def reference_markdown() -> str:
    lines = ["| key | default | meaning |", "| --- | --- | --- |"]
    lines += [f"| `{key}` | `{default}` | {doc} |" for key, default, doc in reference_rows()]
    return "\n".join(lines)


command("reference", "print the scenario reference (every key, its default and meaning)")(_reference)(lambda p: None)

from sim.bench import commands as _bench_commands  # noqa: E402,F401  (registers sweep, plot, plan)
from sim.cli import real as _real_cli  # noqa: E402,F401  (registers cluster; run --real)
from sim.cli import validate as _validate_cli  # noqa: E402  (light: imports sim.validate when it runs)

command("validate", _validate_cli.HELP)(_validate_cli.handle)(_validate_cli.add_arguments)


# ---------------------------------------------------------------- entry point
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flashsim", description="Flash-sale inventory deduction bench.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (add_arguments, _handler, help_text) in COMMANDS.items():
        add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    return parser


class _Parser(argparse.ArgumentParser):
    pass


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # argparse already printed its one-line usage error
        return int(stop.code or 0) and EXIT_USAGE
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    handler = COMMANDS[args.command][1]
    try:
        return handler(args)
    except (ScenarioError, CliError) as err:
        print(f"flashsim: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("flashsim: interrupted", file=sys.stderr)
        return 130

