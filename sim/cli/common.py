"""What every ``flashsim`` command shares: the command shape, errors, exit codes, scenario arguments.

A command module defines ``COMMANDS = {name: Command(add_arguments, handler)}``;
:mod:`sim.cli.main` names the module per command and imports it only when that
command runs. This module imports nothing from the command modules, so there is
no import cycle between them and the dispatcher.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
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


def writable_dir(path: Path | None, what: str = "--out") -> None:
    """Fail now, with one line, unless directory ``path`` exists or can be made, and takes a file.

    Called before a run starts, so that a bad output path never costs the run. It
    tries for real (creates the directory, writes and removes a scratch file): a
    permission check alone is not enough for root or a read-only mount.
    """
    if path is not None and (problem := _dir_problem(path)):
        raise CliError(f"{what} {path}: {problem}")


def writable_file(path: Path, what: str = "--out") -> None:
    """Fail now, with one line, unless file ``path`` can be written (its folder is made if needed)."""
    problem = _dir_problem(path.parent)
    if problem:
        raise CliError(f"{what} {path}: cannot create its folder {path.parent}: {problem}")
    if path.is_dir():
        raise CliError(f"{what} {path}: is a directory")
    existed = path.exists()
    try:
        with path.open("ab"):
            pass
    except OSError as err:
        raise CliError(f"{what} {path}: cannot write there ({err.strerror or err.__class__.__name__})") from None
    if not existed:
        path.unlink()


def _dir_problem(path: Path) -> str | None:
    if path.exists() and not path.is_dir():
        return "is a file, not a directory"
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        return f"cannot write there ({err.strerror or err.__class__.__name__})"
    return None


def report_violations(results: Sequence[Result]) -> int:
    bad = [(r.strategy, v) for r in results for v in r.violations]
    for strategy, violation in bad:
        print(f"INVARIANT BROKEN [{strategy}]: {violation}", file=sys.stderr)
    faulted = [(r.strategy, v) for r in results for v in r.broken_by_fault]  # reported, and not a pass either
    for strategy, violation in faulted:
        print(f"BROKEN BY FAULT [{strategy}]: {violation}", file=sys.stderr)
    return EXIT_INVARIANT if bad or faulted else 0
