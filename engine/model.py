"""Requests, outcomes and inventory snapshots: the nouns shared by all strategies."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import NamedTuple


class Outcome(IntEnum):
    """What a buyer was told."""

    OK = 0  # stock deducted
    SOLD_OUT = 1  # refused: not enough stock (or so the strategy believed)
    TIMEOUT = 2  # the client gave up waiting
    ERROR = 3  # the strategy failed (e.g. a missing key, a lock-wait timeout)
    GATED = 4  # refused by the gate (admission control) before the strategy ran: no token, no room

    @property
    def label(self) -> str:
        return self.name.lower()


OUTCOME_LABELS = tuple(o.label for o in Outcome)


class Request(NamedTuple):
    """One buyer's attempt to buy ``qty`` units; ``t_intended`` is its intended send time.

    ``app`` is the app instance the router sent it to (0 .. ``app.instances`` - 1):
    the strategy keeps per-instance state (sold-out flag, registry) under it.
    """

    id: int
    qty: int
    t_intended: float
    app: int = 0


@dataclass(frozen=True)
class Inventory:
    """Where every unit of stock is at one instant.

    ``holders`` names every place that still holds unsold stock (a Redis
    counter, a partition's sub-domain, the pre-allocation pool, a DB row, ...).
    Conservation: ``initial == sold + sum(holders) + sum(in_flight)``.
    """

    initial: int
    sold: int
    holders: dict[str, int] = field(default_factory=dict)
    in_flight: dict[str, int] = field(default_factory=dict)

    @property
    def remaining(self) -> int:
        return sum(self.holders.values())

    def violations(self) -> list[str]:
        """Broken invariants, as readable sentences (empty when all hold)."""
        problems = []
        if self.sold > self.initial:
            problems.append(f"oversell: sold {self.sold} > initial stock {self.initial}")
        if self.sold < 0:
            problems.append(f"sold counter is negative: {self.sold}")
        for name, value in {**self.holders, **self.in_flight}.items():
            if value < 0:
                problems.append(f"{name} is negative: {value}")
        total = self.sold + self.remaining + sum(self.in_flight.values())
        if total != self.initial:
            problems.append(
                f"conservation: sold {self.sold} + held {self.remaining} + in flight "
                f"{sum(self.in_flight.values())} = {total} != initial {self.initial}"
            )
        return problems
