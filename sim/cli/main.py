"""The ``flashsim`` command line: finds the command, imports its module, runs it.

    flashsim run | compare | reference      (sim.cli.commands)
    flashsim sweep | plot | plan            (sim.bench.commands)
    flashsim cluster up|down                (sim.cli.real)
    flashsim validate                       (sim.cli.validate)
    flashsim calibrate                      (sim.cli.calibrate)

A command's module is imported only when that command runs, so ``flashsim
--help`` or a simulated ``flashsim run`` never loads the real-mode stack
(redis, asyncmy, the load-generator processes) nor the sweep machinery.

Bad input exits with status 2 and one line on stderr naming the problem;
a broken invariant exits with status 3.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from engine.scenario import ScenarioError
from sim.cli.common import EXIT_USAGE, CliError, Command

# name -> (module defining it in its COMMANDS table, one-line help), in the order `--help` lists them
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("sim.cli.commands", "simulate one strategy on a scenario"),
    "compare": ("sim.cli.commands", "run every strategy on the same buyers and print them side by side"),
    "reference": ("sim.cli.commands", "print the scenario reference (every key, its default and meaning)"),
    "sweep": ("sim.bench.commands", "run a parameter sweep (points x strategies x replications) in parallel, resumable"),
    "plot": ("sim.bench.commands", "draw the standard figures from a results folder"),
    "plan": ("sim.bench.commands",
             "smallest shard count (and sub-domain size) meeting a p99 SLO at a peak, with no false sold-outs"),
    "cluster": ("sim.cli.real", "start (up) or stop (down) a local Redis Cluster on loopback ports"),
    "validate": ("sim.cli.validate",
                 "run the validation grid in the simulator and on real servers; report errors per figure"),
    "calibrate": ("sim.cli.calibrate", "measure Redis, the DB and the real driver; write a calibration profile"),
}


def load_command(name: str) -> Command:
    """Import the module of command ``name`` and return its entry."""
    module, _help = COMMANDS[name]
    return importlib.import_module(module).COMMANDS[name]


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser, with the arguments of ``command`` only (``"*"``: of every command)."""
    parser = argparse.ArgumentParser(prog="flashsim", description="Flash-sale inventory deduction bench.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_module, help_text) in COMMANDS.items():
        subparser = sub.add_parser(name, help=help_text, description=help_text)
        if command in (name, "*"):
            load_command(name).add_arguments(subparser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    wanted = next((arg for arg in argv if not arg.startswith("-")), None)  # the top level has no valued options
    parser = build_parser(wanted if wanted in COMMANDS else None)
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # argparse already printed its one-line usage error (or the help)
        return int(stop.code or 0) and EXIT_USAGE
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    try:
        return load_command(args.command).handler(args)
    except (ScenarioError, CliError) as err:
        print(f"flashsim: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("flashsim: interrupted", file=sys.stderr)
        return 130
