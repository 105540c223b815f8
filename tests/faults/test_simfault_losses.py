"""engine.faults.losses: the sans-IO loss accounting (shared with real mode)."""

from __future__ import annotations

import numpy as np

from engine.faults.losses import FaultLoss, acknowledged_units, broken_by_fault, inventory_losses, loss_figures
from engine.model import Inventory, Outcome


def test_acknowledged_units_sum_the_ok_quantities():
    codes = np.array([Outcome.OK, Outcome.SOLD_OUT, Outcome.OK, Outcome.ERROR, Outcome.OK], dtype=np.int8)
    qty = np.array([1, 5, 2, 7, 3])
    assert acknowledged_units(codes, qty) == 6


def test_a_rollback_that_was_sold_again():
    # 100 units, 112 acknowledged, the servers record 100 sold: 12 lost, 12 promised beyond the stock
    figures = loss_figures(initial=100, acknowledged=112, sold=100, remaining=0, in_flight=0, restored=12)
    assert figures == {"acknowledged_units": 112, "lost_acknowledged": 12, "oversold_promised": 12,
                       "vanished_units": 0, "restored": 12, "sold_unacknowledged": 0}


def test_a_deduction_whose_buyer_was_not_told_yes():
    figures = loss_figures(initial=100, acknowledged=30, sold=33, remaining=67, in_flight=0)
    assert figures["sold_unacknowledged"] == 3 and figures["lost_acknowledged"] == 0


def test_an_empty_restart_forgets_sales_and_stock():
    figures = inventory_losses(Inventory(100, 0, {"redis": 0}), acknowledged=40)
    assert figures["lost_acknowledged"] == 40 and figures["oversold_promised"] == 0
    assert figures["vanished_units"] == 100


def test_in_flight_units_are_not_vanished():
    figures = inventory_losses(Inventory(100, 30, {"pool": 50}, {"transfer": 20}), acknowledged=30)
    assert figures["lost_acknowledged"] == 0 and figures["vanished_units"] == 0


def test_broken_by_fault_needs_a_fault_that_lost_data():
    violations = ["oversell: sold 3 > initial stock 2", "conservation: ...", "reconciliation: DB deducted 5 != 4",
                  "something else"]
    kept, broken = broken_by_fault(violations, [FaultLoss("p", "redis_pause")])
    assert kept == violations and broken == []  # a pause loses nothing: every violation stays one
    crash = FaultLoss("c", "redis_crash", writes_lost=3, units_rolled_back=2)
    kept, broken = broken_by_fault(violations, [crash], {"1 drain task ended by X": "a fault failed its op"})
    assert kept == ["something else"]
    assert len(broken) == 4 and all("(broken by fault: " in b for b in broken)
    assert "redis_crash 'c': 3 write(s) lost, 2 sold unit(s) rolled back" in broken[0]
    assert broken[-1] == "1 drain task ended by X (broken by fault: a fault failed its op)"
