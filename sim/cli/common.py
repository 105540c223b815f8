"""What every ``flashsim`` command shares: the command shape, errors, exit codes, scenario arguments.

A command module defines ``COMMANDS = {name: Command(add_arguments, handler)}``;
:mod:`sim.cli.main` names the module per command and imports it only when that
command runs. This module imports nothing from the command modules, so there is
no import cycle between them and the dispatcher.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

from engine.result import Result
from engine.scenario import Scenario, load_scenario
from sim.cli import profile_option

EXIT_USAGE = 2
EXIT_INVARIANT = 3


class CliError(Exception):
    """A problem with the user's input: printed as one line, exit status 2."""


class Command(NamedTuple):
    """A subcommand: what it adds to its parser, and what runs it (returning the exit status)."""

    add_arguments: Callable[[argparse.ArgumentParser], None]
    handler: Callable[[argparse.Namespace], int]


def no_arguments(parser: argparse.ArgumentParser) -> None:
    """For a command that takes none."""


def scenario_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", nargs="?", help="scenario TOML file (default: the embedded default)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a scenario key, e.g. --set sale.stock=5000 (repeatable)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", type=Path, help="write results into this directory")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    profile_option.add_profile_argument(parser)


def scenario_from(args: argparse.Namespace) -> Scenario:
    if args.seed < 0:
        raise CliError(f"--seed must be >= 0 (got {args.seed})")
    return profile_option.profiled(load_scenario(args.scenario), args).with_overrides(args.overrides)


def report_violations(results: Sequence[Result]) -> int:
    bad = [(r.strategy, v) for r in results for v in r.violations]
    for strategy, violation in bad:
        print(f"INVARIANT BROKEN [{strategy}]: {violation}", file=sys.stderr)
    faulted = [(r.strategy, v) for r in results for v in r.broken_by_fault]  # reported, and not a pass either
    for strategy, violation in faulted:
        print(f"BROKEN BY FAULT [{strategy}]: {violation}", file=sys.stderr)
    return EXIT_INVARIANT if bad or faulted else 0
