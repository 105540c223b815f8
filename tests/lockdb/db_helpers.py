"""Drive DB strategies without SimPy: by hand, or against the statement twins in order."""

from __future__ import annotations

from typing import Any

import numpy as np
from opdrive import drive  # noqa: F401  (re-exported for the db tests)

from engine.ops import Now, Sleep
from engine.scenario import Scenario
from engine.sql import DbBegin, DbCommit, DbExec, DbRollback, get
from engine.strategies import strategy_class

HANDLE = "txn-handle"


def make(name: str, *overrides: str, stock: int = 10):
    scenario = Scenario().with_overrides([f"sale.stock={stock}", *overrides])
    return strategy_class(name)(scenario, np.random.default_rng(0), namespace="t")




class SerialDb:
    """Runs SQL ops one at a time on the twins (no concurrency, no time): reference semantics.

    Transactions are applied immediately and undone on rollback, so a sequence
    of requests run through it must leave the invariants intact.
    """

    def __init__(self) -> None:
        self.tables: dict[str, dict[Any, dict[str, Any]]] = {}
        self.undo: dict[int, dict[Any, Any]] = {}
        self.ops: list[Any] = []
        self.next_txn = 0

    def run(self, gen):
        reply = None
        try:
            while True:
                op = gen.send(reply)
                self.ops.append(op)
                reply = self.answer(op)
        except StopIteration as stop:
            return stop.value

    def answer(self, op):
        if isinstance(op, DbBegin):
            self.next_txn += 1
            self.undo[self.next_txn] = {}
            return self.next_txn
        if isinstance(op, DbExec):
            statement = get(op.statement)
            if op.txn is not None:
                for table, key in statement.locks(op.params):
                    row = self.tables.get(table, {}).get(key)
                    self.undo[op.txn].setdefault((table, key), None if row is None else dict(row))
            return statement.twin(self.tables, op.params)
        if isinstance(op, DbCommit):
            self.undo.pop(op.txn)
            return None
        if isinstance(op, DbRollback):
            for (table, key), image in self.undo.pop(op.txn).items():
                if image is None:
                    self.tables[table].pop(key, None)
                else:
                    self.tables[table][key] = image
            return None
        if isinstance(op, Sleep):
            return None
        if isinstance(op, Now):
            return 0.0
        raise AssertionError(f"unexpected op {op!r}")

    def read(self, key: str):
        from engine.sql import read_twin

        return read_twin(self.tables, key)
