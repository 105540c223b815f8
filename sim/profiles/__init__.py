"""Calibration profiles shipped with flashsim (``<name>.toml``), and where ``--profile NAME`` looks.

A name is looked up first in ``results/profiles/`` (where ``flashsim calibrate``
writes), then among the shipped profiles in this package; a path is read as is.
"""

from __future__ import annotations

from pathlib import Path

from engine.profile import Profile, load_profile
from engine.scenario import Scenario

SHIPPED = Path(__file__).resolve().parent
WRITTEN = Path("results") / "profiles"


def search_path() -> tuple[Path, ...]:
    """Where a profile name is looked up, first match wins."""
    return (WRITTEN, SHIPPED)


def find(ref: str | Path) -> Profile:
    """The profile ``ref`` (a name or a path)."""
    return load_profile(ref, search_path())


def shipped() -> list[str]:
    """Names of the profiles shipped with flashsim."""
    return sorted(p.stem for p in SHIPPED.glob("*.toml"))


def with_profile(scenario: Scenario, ref: str | Path | None) -> tuple[Scenario, list[str]]:
    """``scenario`` with profile ``ref`` applied (unchanged for ``None``), and the keys it skipped."""
    if ref is None:
        return scenario, []
    return find(ref).apply(scenario)
