"""Servers beyond Redis (a database, a message queue): how the real driver plugs them in.

Each :class:`Driver` class appended to :data:`DRIVERS` is instantiated in
every process of a run (the coordinator for setup, each worker), installs the
interpreter handlers of its ops, and takes part in the run's life cycle:
``check`` before anything is created (refuse a target that already holds
this run's scratch schema), ``final_checks`` after the drain (invariants only
the real servers can answer, e.g. "DB deducted = sold"), ``cleanup`` at the end
(drop only what this run created). Drivers connect lazily, on their first op,
so a strategy that never talks to a database never needs one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from engine.model import Inventory
from engine.real.interpreter import RealInterpreter
from engine.real.target import RedisTarget


@dataclass
class Context:
    """What every driver of one run shares: the target, the run's namespace, its options."""

    target: RedisTarget
    namespace: str
    keep: bool = False
    worker: int = -1  # -1: the coordinator (setup, final checks, cleanup)
    scenario: Any = None
    options: dict[str, Any] = field(default_factory=dict)  # driver settings (e.g. the database URL)


class Driver:
    """One kind of server beyond Redis. Subclasses override what they need."""

    name: ClassVar[str] = ""
    read_prefix: ClassVar[str] = ""  # read keys this driver answers (e.g. "db:")

    def __init__(self, context: Context):
        self.context = context

    async def open(self, interpreter: RealInterpreter) -> None:
        """Install handlers for this driver's ops (connect lazily)."""

    async def close(self) -> None:
        """Close connections opened in this process."""

    def figures(self) -> dict[str, float]:
        """This process's counts of what the server did (summed over processes into the summary)."""
        return {}

    @classmethod
    async def check(cls, context: Context) -> None:
        """Before setup: raise if the target already holds what this run would create."""

    @classmethod
    async def final_checks(cls, context: Context, strategy: Any, inventory: Inventory) -> list[str]:
        """After the drain: broken invariants, as sentences."""
        return []

    @classmethod
    async def cleanup(cls, context: Context) -> None:
        """At the end (unless ``keep``): remove only what this run created."""

    @classmethod
    async def read(cls, context: Context, keys: list[str]) -> dict[str, Any]:
        """Values of read keys under :attr:`read_prefix` (missing ones left out)."""
        return {}


DRIVERS: list[type[Driver]] = []


async def check(context: Context) -> None:
    for cls in DRIVERS:
        await cls.check(context)


async def install(interpreter: RealInterpreter, context: Context) -> list[Driver]:
    opened = []
    for cls in DRIVERS:
        driver = cls(context)
        await driver.open(interpreter)
        opened.append(driver)
    return opened


def figures(opened: list[Driver]) -> dict[str, float]:
    """What the servers did in this process (DB statements, MQ deliveries), by summary key."""
    out: dict[str, float] = {}
    for driver in opened:
        out.update(driver.figures())
    return out


async def final_checks(context: Context, strategy: Any, inventory: Inventory) -> list[str]:
    problems: list[str] = []
    for cls in DRIVERS:
        problems += await cls.final_checks(context, strategy, inventory)
    return problems


async def cleanup(context: Context) -> None:
    for cls in DRIVERS:
        await cls.cleanup(context)


def answers(key: str) -> bool:
    """True when a driver (not Redis) answers reads of ``key``."""
    return any(cls.read_prefix and key.startswith(cls.read_prefix) for cls in DRIVERS)


async def read(context: Context, keys: list[str]) -> dict[str, Any]:
    """Answer reads of keys that are not Redis keys (``db:...``) through the driver that owns them."""
    values: dict[str, Any] = {}
    for cls in DRIVERS:
        mine = [key for key in keys if key.startswith(cls.read_prefix)] if cls.read_prefix else []
        if mine:
            values.update(await cls.read(context, mine))
    return values
