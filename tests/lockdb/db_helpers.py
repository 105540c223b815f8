"""What the DB strategy tests share: a strategy on a small sale, a transaction handle for scripted replies."""

from __future__ import annotations

import numpy as np

from engine.scenario import Scenario
from engine.strategies import strategy_class

HANDLE = "txn-handle"


def make(name: str, *overrides: str, stock: int = 10):
    scenario = Scenario().with_overrides([f"sale.stock={stock}", *overrides])
    return strategy_class(name)(scenario, np.random.default_rng(0), namespace="t")
