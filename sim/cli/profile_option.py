"""``--profile NAME_OR_PATH``: apply a calibration profile to the scenario, before ``--set``.

A name is looked up in ``results/profiles/`` and then among the shipped
profiles (:mod:`sim.profiles`); a path is read as is. Keys the scenario does
not know (a profile written by a newer flashsim) are skipped with one warning
line on stderr.
"""

from __future__ import annotations

import argparse
import sys

from engine.scenario import Scenario
from sim import profiles


def add_profile_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", metavar="NAME_OR_PATH",
                        help="apply a calibration profile (from `flashsim calibrate`) before --set; "
                             f"shipped: {', '.join(profiles.shipped()) or 'none'}")


def profiled(scenario: Scenario, args: argparse.Namespace) -> Scenario:
    """``scenario`` with ``args.profile`` applied (if any); skipped keys reported on stderr."""
    ref = getattr(args, "profile", None)
    if ref is None:
        return scenario
    profile = profiles.find(ref)
    scenario, skipped = profile.apply(scenario)
    warn_skipped(profile.name, skipped)
    return scenario


def warn_skipped(name: str, skipped: list[str]) -> None:
    if skipped:
        print(f"flashsim: warning: profile {name}: skipped keys this flashsim does not know: "
              f"{', '.join(skipped)}", file=sys.stderr)
