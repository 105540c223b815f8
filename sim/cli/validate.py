"""``flashsim validate``: the simulator against real servers on the validation grid.

    flashsim validate [--profile NAME] [--quick] [--points PATTERN ...] [--capacity real|sim]
                      [--replications N] [--seed N]
                      [--redis-url URL ...] [--db-url URL] [--workers N] [--out DIR] [--quiet]

Starts its own Redis (1 and 3 masters, LocalCluster on loopback ports, stopped
afterwards) unless ``--redis-url`` names a running one for that master count,
and uses the local MariaDB (``--db-url``). Writes ``results/validation/<run-id>/``
and prints the worst errors and the hold-out summary. Exit status 3 when an
invariant broke in any run, 1 when a real run failed, else 0 (missed targets
are findings, reported in the table, not failures of the command).

Real-mode modules are imported only when the command runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path

from engine.scenario import Scenario, ScenarioError
from sim.cli.common import Command, writable_dir

EXIT_FAILED = 1
EXIT_INVARIANT = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="a small subset (4 points, 1 seed, small sales): the CI version, well under 2 minutes")
    parser.add_argument("--profile", metavar="NAME_OR_PATH",
                        help="calibration profile (from `flashsim calibrate`) applied to every point's scenario")
    parser.add_argument("--points", action="append", metavar="PATTERN",
                        help="only the points matching this shell pattern, e.g. 'single_redis/*/poisson/n1' "
                             "(repeatable; names are strategy/load/arrival/nodes)")
    parser.add_argument("--capacity", choices=("real", "sim"), default="real",
                        help="where the capacity that scales the load levels is measured: on the real servers "
                             "(default) or in the simulator")
    parser.add_argument("--replications", type=int, help="seeds per point (default 3; --quick: 1)")
    parser.add_argument("--seed", type=int, default=0, help="first seed (default 0; replication r uses seed + r)")
    parser.add_argument("--redis-url", action="append", default=[], metavar="URL",
                        help="a running Redis to use for points with as many nodes as it has masters (repeatable; "
                             "default: start a local one per node count)")
    parser.add_argument("--db-url", help="MariaDB/MySQL for the DB strategies and the pipeline "
                        "(default $FLASHSIM_DB_URL or mysql://root@127.0.0.1:3306)")
    parser.add_argument("--workers", type=int, help="real load-generator processes per run, and the simulated app "
                        "fleet to match (app.instances=N, app.workers=1); default: the profile's fleet, "
                        "instances x workers (1 without a profile)")
    parser.add_argument("--out", type=Path, help="results folder (default results/validation/<run-id>)")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def handle(args: argparse.Namespace) -> int:
    from sim.validate import report
    from sim.validate.grid import FULL, QUICK
    from sim.validate.run import RESULTS_ROOT, RealSetup, run_validation

    if args.replications is not None and args.replications < 1:
        raise ScenarioError(f"--replications must be >= 1 (got {args.replications})")
    if args.workers is not None and args.workers < 1:
        raise ScenarioError(f"--workers must be >= 1 (got {args.workers})")
    writable_dir(args.out or RESULTS_ROOT, "--out" if args.out else "results folder")
    settings = QUICK if args.quick else FULL
    settings = dataclasses.replace(settings, seed=args.seed, capacity=args.capacity,
                                   replications=args.replications or settings.replications)
    # INSERT IGNORE of a redelivered detail row is the pipeline's idempotence at work, not news:
    # keep asyncmy from logging each one as a warning on stderr.
    logging.getLogger("asyncmy").setLevel(logging.ERROR)
    real = RealSetup(redis_urls=_targets(args.redis_url), db_url=args.db_url, workers=args.workers)
    transform = profile_transform(args.profile)
    if args.workers is not None:  # the simulated fleet is the real one
        transform = _with_fleet(transform, args.workers)
    validation = run_validation(transform, quick=args.quick, settings=settings,
                                patterns=args.points, real=real, out=args.out, quiet=args.quiet,
                                profile=args.profile)
    print(report.console(validation.errors))
    print(f"wrote {validation.path} (errors.md, errors.csv, runs.parquet, {len(validation.figures)} figures) "
          f"in {validation.wall_seconds:.0f} s")
    for failure in validation.failures:
        print(f"flashsim validate: real run failed: {failure}")
    for violation in validation.violations:
        print(f"INVARIANT BROKEN: {violation}")
    if validation.violations:
        return EXIT_INVARIANT
    return EXIT_FAILED if validation.failures else 0


def _with_fleet(transform: Callable[[Scenario], Scenario] | None, workers: int) -> Callable[[Scenario], Scenario]:
    """``transform``, then an app fleet of ``workers`` one-core instances (one per real worker process)."""
    def apply(scenario: Scenario) -> Scenario:
        scenario = transform(scenario) if transform is not None else scenario
        return scenario.with_overrides([f"app.instances={workers}", "app.workers=1"])
    return apply


def profile_transform(name: str | None) -> Callable[[Scenario], Scenario] | None:
    """The scenario transform of calibration profile ``name`` (a name or a path; :mod:`sim.profiles`), or None.

    Every grid point's base goes through it; keys the scenario does not know are
    reported once, on stderr.
    """
    if name is None:
        return None
    from sim import profiles
    from sim.cli.profile_option import warn_skipped

    profile = profiles.find(name)
    warn_skipped(profile.name, profile.apply(Scenario())[1])

    def transform(scenario: Scenario) -> Scenario:
        return profile.apply(scenario)[0]

    return transform


def _targets(urls: list[str]) -> dict[int, str]:
    """Each --redis-url by its number of masters (asked of the server)."""
    if not urls:
        return {}
    import asyncio

    from engine.real import RedisTarget, TargetError
    from engine.real.target import discover

    by_nodes: dict[int, str] = {}
    for url in urls:
        target = RedisTarget.from_options(url)
        try:
            masters = len(asyncio.run(discover(target)).masters)
        except TargetError as err:
            raise ScenarioError(str(err)) from None
        if masters in by_nodes:
            raise ScenarioError(f"two --redis-url targets have {masters} master(s); give one per node count")
        by_nodes[masters] = url
    return by_nodes


COMMANDS = {"validate": Command(add_arguments, handle)}
