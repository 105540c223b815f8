"""Building blocks of scenario sections: errors, documented fields, Dist and Qty.

Each section of a scenario is a frozen dataclass whose fields are declared
with :func:`doc` (default + one-line meaning, shown in the scenario
reference) and validated in ``__post_init__`` with :func:`require` /
:func:`choice`, raising :class:`ScenarioError`. A section may live in its own
module; :mod:`engine.scenario` composes them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar


class ScenarioError(ValueError):
    """A scenario, override or file that cannot be used; the message is one line."""


def doc(default: Any, doc: str, *, factory: bool = False) -> Any:
    if factory:
        return field(default_factory=default, metadata={"doc": doc})
    return field(default=default, metadata={"doc": doc})


def require(condition: bool, message: str) -> None:
    if not condition:
        raise ScenarioError(message)


def choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    require(value in choices, f"{name} must be one of {', '.join(choices)} (got {value!r})")


@dataclass(frozen=True)
class Dist:
    """A non-negative random duration. A plain number in TOML means ``deterministic``."""

    KINDS: ClassVar[tuple[str, ...]] = ("deterministic", "exponential", "lognormal")

    kind: str = doc("deterministic", "deterministic | exponential | lognormal")
    mean: float = doc(0.0, "mean, seconds")
    cv: float = doc(0.0, "coefficient of variation (lognormal only)")

    def __post_init__(self) -> None:
        choice("kind", self.kind, self.KINDS)
        require(math.isfinite(self.mean) and self.mean >= 0, f"mean must be >= 0 (got {self.mean})")
        require(math.isfinite(self.cv) and self.cv >= 0, f"cv must be >= 0 (got {self.cv})")
        if self.kind == "exponential":
            require(self.mean > 0, "an exponential distribution needs mean > 0")

    @classmethod
    def _from_scalar(cls, value: float) -> Dist:
        return cls("deterministic", float(value))

    @property
    def is_constant(self) -> bool:
        return self.kind == "deterministic" or (self.kind == "lognormal" and self.cv == 0)


@dataclass(frozen=True)
class Wake:
    """How long an idle component takes to start work again, by how long it was idle (seconds).

    A command or request that reaches a component idle for ``g`` seconds starts
    ``base + per_idle * g`` later (at most ``cap``) when ``g > after``, else at
    once. It is latency, not CPU: utilisation does not count it. On a virtual
    machine an idle vCPU halts and its wake-up is slow; measured here, the
    median round trip of one closed-loop buyer grows roughly linearly with
    the idle gap (see docs/calibration.md). ``flashsim calibrate`` fits it; the
    default (all zero) models none.
    """

    after: float = doc(0.0, "idle gap (s) up to which nothing is added")
    base: float = doc(0.0, "delay (s) added after a longer gap")
    per_idle: float = doc(0.0, "more delay per second of idle gap (s/s)")
    cap: float = doc(0.0, "largest delay added (s); 0: no wake-up cost at all")

    def __post_init__(self) -> None:
        for name in ("after", "base", "per_idle", "cap"):
            value = getattr(self, name)
            require(math.isfinite(value) and value >= 0, f"wake.{name} must be >= 0 (got {value})")

    @property
    def costs(self) -> bool:
        """True when some idle gap adds a delay."""
        return self.cap > 0 and (self.base > 0 or self.per_idle > 0)

    def delay(self, idle: float) -> float:
        """The delay added for an idle gap of ``idle`` seconds."""
        if idle <= self.after:
            return 0.0
        d = self.base + self.per_idle * idle
        return d if d < self.cap else self.cap


@dataclass(frozen=True)
class Qty:
    """Units per request: uniform integer in [low, high]. A plain integer means fixed."""

    low: int = doc(1, "smallest qty")
    high: int = doc(1, "largest qty")

    def __post_init__(self) -> None:
        require(self.low >= 1, f"qty must be >= 1 (got low={self.low})")
        require(self.high >= self.low, f"qty high {self.high} < low {self.low}")

    @classmethod
    def _from_scalar(cls, value: int) -> Qty:
        return cls(int(value), int(value))
