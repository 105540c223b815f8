"""``flashsim sweep | plot | plan``: the research-bench subcommands.

    flashsim sweep FILE [--workers N] [--dask ADDRESS] [--out DIR] [--quiet]
    flashsim plot RESULTS_DIR [--format png|svg ...] [--out DIR]
    flashsim plan --peak RATE --p99 SECONDS [--profile NAME] [--warmup S] [--of all|ok] [SCENARIO.toml] [--set k=v ...]

Listed in :data:`sim.cli.main.COMMANDS`, which imports this module when one of them runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from engine.scenario import Scenario
from sim import profiles
from sim.bench.plan import DEFAULT_MAX_INSTANCES, DEFAULT_SIZES, STOCK_MARGIN, WARMUP_SHARE, plan
from sim.bench.plots import FORMATS, plot_results
from sim.bench.runner import RESULTS_ROOT, default_workers, run_sweep, sweep_dir
from sim.bench.sweep import load_sweep
from sim.cli import profile_option
from sim.cli.common import CliError, Command, scenario_arguments, scenario_from, writable_dir

HEADLINE = ("goodput", "p50", "p99", "p999", "sold", "refused_with_stock", "violations")


def _workers(value: str) -> int:
    count = int(value)
    if count < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1 (got {count})")
    return count


def _sweep_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="sweep definition (TOML, or Python defining SWEEP), e.g. experiments/sweeps/quick.toml")
    parser.add_argument("--workers", type=_workers, default=None,
                        help=f"local worker processes (default: all cores, here {default_workers()})")
    parser.add_argument("--dask", metavar="ADDRESS", help="run on this Dask scheduler (e.g. tcp://10.0.0.5:8786)")
    parser.add_argument("--out", type=Path, help="results folder (default results/<sweep>/<fingerprint>; reused to resume)")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    profile_option.add_profile_argument(parser)


def _sweep(args: argparse.Namespace) -> int:
    profile = None
    if args.profile is not None:
        profile = profiles.find(args.profile)
        profile_option.warn_skipped(profile.name, profile.apply(Scenario())[1])
    sweep = load_sweep(args.file, profile)
    writable_dir(args.out or sweep_dir(sweep), "--out" if args.out else "results folder")
    result = run_sweep(sweep, args.out, workers=args.workers, dask=args.dask, quiet=args.quiet)
    print(f"sweep {sweep.name}: {len(result.runs)} runs ({result.executed} run now, {result.reused} reused) "
          f"in {result.wall_seconds:.1f} s")
    print(points_table(result.points))
    print(f"wrote {result.path}")
    return 3 if "violations" in result.runs and result.runs["violations"].sum() else 0


def points_table(points: pd.DataFrame) -> str:
    """The per-point means ± CI half-widths of the headline figures, as text."""
    params = [c for c in points.columns if "." in c]
    shown = pd.DataFrame({c: points[c] for c in ["strategy", *params, "n"]})
    for name in HEADLINE:
        if f"{name}_mean" not in points:
            continue
        scale, unit = (1000, " ms") if name.startswith("p") and name[1:].isdigit() else (1, "")
        shown[name + unit] = [_pm(m * scale, h * scale) for m, h in zip(points[f"{name}_mean"], points[f"{name}_ci"])]
    return shown.to_string(index=False)


def _pm(mean: float, half: float) -> str:
    if mean != mean:
        return "-"
    digits = ",.0f" if abs(mean) >= 100 else ".3g"
    if half != half or half <= 1e-9 * abs(mean):  # no spread (or float noise): the mean alone
        return format(mean, digits)
    return f"{format(mean, digits)} ± {format(half, digits)}"


def _plot_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", type=Path, help="a sweep's results folder (runs.parquet) or a run's (requests.parquet)")
    parser.add_argument("--format", dest="formats", action="append", choices=FORMATS,
                        help="figure format (repeatable; default png)")
    parser.add_argument("--out", type=Path, help="where to write figures (default RESULTS/figures)")


def _plot(args: argparse.Namespace) -> int:
    if not args.results.is_dir():
        raise CliError(f"results folder not found: {args.results}")
    writable_dir(args.out or args.results / "figures", "--out" if args.out else "figures folder")
    for path in plot_results(args.results, args.out, args.formats or ["png"]):
        print(f"wrote {path}")
    return 0


def _plan_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Size the sharded strategy for a sustained peak: the fewest Redis shards (with a generous app fleet), "
        "then the fewest app instances at that shard count, whose steady-state p99 (after the warm-up) meets "
        "the SLO with no false sold-out. The load is Poisson at --peak for workload.duration with stock that "
        "outlasts it. Prints every candidate probed, the answer, and for the answer and the largest failing "
        "shard count and fleet the utilisation of the busiest Redis node and app instance and the tier that "
        "limits (redis, app, or neither: SLO met). Use --profile so the app tier costs what it measured.")
    scenario_arguments(parser)
    parser.add_argument("--peak", type=float, required=True, metavar="RATE", help="peak offered load, requests/s")
    parser.add_argument("--p99", type=float, required=True, metavar="SECONDS",
                        help="latency SLO: steady-state p99 <= this")
    parser.add_argument("--stock", type=int, help=f"units on sale (default: the scenario's, raised to "
                                                  f"{STOCK_MARGIN} x peak x duration x qty so it never sells out)")
    parser.add_argument("--warmup", type=float, metavar="SECONDS",
                        help=f"judge latency on requests arriving after this (default {WARMUP_SHARE:g} x "
                             "workload.duration)")
    parser.add_argument("--of", choices=("all", "ok"), default="all",
                        help="whose p99: every buyer (default), or successful buyers only")
    parser.add_argument("--sizes", type=lambda s: tuple(int(v) for v in s.split(",")), default=DEFAULT_SIZES,
                        help=f"sub-domain sizes to try, comma-separated (default {','.join(map(str, DEFAULT_SIZES))})")
    parser.add_argument("--partitions-per-node", type=_workers, default=4, help="partitions on each shard (default 4)")
    parser.add_argument("--max-shards", type=_workers, default=64, help="give up above this many shards (default 64)")
    parser.add_argument("--max-instances", type=_workers, default=DEFAULT_MAX_INSTANCES,
                        help=f"the generous fleet of the shard search and the largest fleet tried "
                             f"(default {DEFAULT_MAX_INSTANCES}; app.workers each, as the scenario says)")
    parser.add_argument("--replications", type=_workers, default=3, help="replications per candidate (default 3)")
    parser.add_argument("--workers", type=_workers, default=None, help="local worker processes (default: all cores)")
    parser.add_argument("--dask", metavar="ADDRESS", help="run the probes on this Dask scheduler")


def fleet_scenario(args: argparse.Namespace) -> Scenario:
    """The scenario a plan sizes: servers on machines of their own (``host.cores`` 0) unless ``--set`` says.

    A profile measured with every server on one machine carries that machine's cores
    (``host.cores``); a plan sizes shards and instances as separate servers.
    """
    scenario = scenario_from(args)
    if scenario.host.cores and not any(o.strip().startswith("host.") for o in args.overrides):
        print(f"plan: sizing servers with CPU of their own: host.cores {scenario.host.cores} -> 0 (the profile's "
              f"machine; --set host.cores=N plans for one N-core host)", file=sys.stderr)
        scenario = scenario.with_overrides(["host.cores=0"])
    return scenario


def _plan(args: argparse.Namespace) -> int:
    kwargs = {"results_root": args.out} if args.out else {}
    scenario = fleet_scenario(args)
    writable_dir(args.out or RESULTS_ROOT, "--out" if args.out else "results folder")
    result = plan(args.peak, args.p99, args.stock, scenario, sizes=args.sizes,
                  partitions_per_node=args.partitions_per_node, max_shards=args.max_shards,
                  max_instances=args.max_instances, warmup=args.warmup, replications=args.replications,
                  seed=args.seed, workers=args.workers, dask=args.dask, quiet=args.quiet, of=args.of, **kwargs)
    print("evidence (every candidate probed; p99 in ms, worst over replications; utilisation of the busiest "
          "Redis node and app instance, means over replications):")
    shown = result.evidence.drop(columns=["partitions", "p99_mean", "violations", "meets"])
    shown = shown.assign(p99_worst=shown["p99_worst"] * 1000, app_wait_mean=shown["app_wait_mean"] * 1000)
    print(shown.rename(columns={"subdomain_size": "size", "replications": "n", "app_wait_mean": "app_wait_ms",
                                "p99_worst": "p99_ms", "goodput_mean": "goodput"})
          .to_string(index=False, float_format=lambda v: f"{v:,.2f}"))
    print(f"runs: {result.path / 'runs.parquet'}")
    print(("answer: " if result.answer else "no answer: ") + result.describe())
    print(f"limits (plan table: {result.path / 'plan.csv'}):")
    for line in result.limits():
        print(f"  {line}")
    return 0 if result.answer else 1


COMMANDS = {
    "sweep": Command(_sweep_arguments, _sweep),
    "plot": Command(_plot_arguments, _plot),
    "plan": Command(_plan_arguments, _plan),
}
