"""What a faulted run lost: the loss accounting shared by the simulator and the real driver (sans-IO).

Everything here is a function of what the buyers were told (the acknowledged units) and of the end
state the servers show (the strategy's :class:`~engine.model.Inventory`): no clock, no I/O. Each
figure is named as in ``Result.summary``:

- ``acknowledged_units``: units of the requests answered ``ok`` (every buyer told "yes");
- ``lost_acknowledged``: acknowledged units whose deduction the servers no longer hold:
  ``max(0, acknowledged_units - sold)``, ``sold`` being the deductions the end state records (a
  failover that rolled back a deduction, or a master that restarted empty, forgot it);
- ``oversold_promised``: ``max(0, acknowledged_units - initial)``, units promised beyond the stock
  (the rolled-back units went back on sale and were sold again);
- ``vanished_units``: ``initial - sold - remaining - in_flight`` when positive: stock that
  disappeared with a node's memory (a master restarted empty), neither sold nor held anywhere;
- ``restored``: units a rollback put back into sellable stock (what recovery returned), as the
  fault records them;
- ``sold_unacknowledged``: ``max(0, sold - (acknowledged_units - lost_acknowledged))``: units the end
  state records as sold whose buyer was not told yes (its app instance died, or it timed out, while
  the deduction was under way).

:func:`broken_by_fault` sorts a run's broken invariants: once a fault has lost data, the invariants a
fault legitimately breaks (oversell, conservation, a negative holder, reconciliation with the DB)
are *broken by fault*, reported with their size and the faults that caused them, never as a pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from engine.model import Inventory, Outcome

LOSS_FIGURES = ("acknowledged_units", "lost_acknowledged", "oversold_promised", "vanished_units", "restored",
                "sold_unacknowledged")

# the invariants a fault that loses data can break (the prefixes of Inventory.violations and
# Strategy.reconciliation_differences sentences)
FAULT_BREAKABLE = ("oversell:", "conservation:", "reconciliation:")


@dataclass(frozen=True)
class FaultLoss:
    """What one fired fault did to the data: a cause the accounting names."""

    name: str
    kind: str
    writes_lost: int = 0  # scripts applied on the master that the new master lacks (or that died with it)
    units_rolled_back: int = 0  # sold units the new master no longer records
    units_restored: int = 0  # units the rollback put back into sellable stock
    units_vanished: int = 0  # stock gone with the node's memory (restart empty)

    @property
    def lost_data(self) -> bool:
        return bool(self.writes_lost or self.units_rolled_back or self.units_restored or self.units_vanished)

    def describe(self) -> str:
        return (f"{self.kind} {self.name!r}: {self.writes_lost} write(s) lost, {self.units_rolled_back} sold "
                f"unit(s) rolled back, {self.units_restored} restored to stock, {self.units_vanished} vanished")


def acknowledged_units(outcome_codes: np.ndarray, qty: np.ndarray) -> int:
    """Units of the requests answered ``ok``."""
    return int(np.asarray(qty)[np.asarray(outcome_codes) == Outcome.OK].sum())


def loss_figures(initial: int, acknowledged: int, sold: int, remaining: int, in_flight: int,
                 restored: int = 0) -> dict[str, int]:
    """The loss figures of one run from its acknowledged units and its end state."""
    lost = max(0, acknowledged - sold)
    return {
        "acknowledged_units": acknowledged,
        "lost_acknowledged": lost,
        "oversold_promised": max(0, acknowledged - initial),
        "vanished_units": max(0, initial - sold - remaining - in_flight),
        "restored": restored,
        "sold_unacknowledged": max(0, sold - (acknowledged - lost)),
    }


def inventory_losses(inventory: Inventory, acknowledged: int, restored: int = 0) -> dict[str, int]:
    """:func:`loss_figures` from an end-of-run inventory."""
    return loss_figures(inventory.initial, acknowledged, inventory.sold, inventory.remaining,
                        sum(inventory.in_flight.values()), restored)


def broken_by_fault(violations: Iterable[str], losses: Iterable[FaultLoss],
                    extra: Mapping[str, str] | None = None) -> tuple[list[str], list[str]]:
    """Split ``violations`` into (still violations, broken by fault).

    A violation is broken by fault when some fault lost data and the invariant is one a lost write
    breaks (:data:`FAULT_BREAKABLE`, or a negative counter); its sentence then names the causes.
    Without such a fault every violation stays a violation. ``extra`` adds entries already known to be
    caused by a fault (e.g. a drain a fault ended), keyed by sentence, valued by cause.
    """
    causes = [loss.describe() for loss in losses if loss.lost_data]
    kept: list[str] = []
    broken: list[str] = []
    for violation in violations:
        if causes and (violation.startswith(FAULT_BREAKABLE) or " is negative: " in violation):
            broken.append(f"{violation} (broken by fault: {'; '.join(causes)})")
        else:
            kept.append(violation)
    for sentence, cause in (extra or {}).items():
        broken.append(f"{sentence} (broken by fault: {cause})")
    return kept, broken
