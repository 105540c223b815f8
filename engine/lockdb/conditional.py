"""db_conditional: one autocommit ``UPDATE ... WHERE sku = ? AND stock >= ?``.

The check and the deduction are one statement, so the row lock is held only
for the update and its commit (no round trip inside the lock). Safe against
oversell on its own; still one hot row and one log flush per buyer.
"""

from __future__ import annotations

from engine.lockdb.base import Attempt, DbStrategy
from engine.model import Outcome, Request
from engine.sql import DbError, DbExec


class DbConditional(DbStrategy):
    name = "db_conditional"
    summary = "MySQL: one autocommit UPDATE ... WHERE stock >= qty"
    statement = "deduct_if_enough"

    def attempt(self, request: Request) -> Attempt:
        qty = request.qty
        update = yield DbExec(None, self.statement, (qty, qty, self.sku, qty))
        if isinstance(update, DbError):
            return update
        if update.affected == 1:
            return Outcome.OK
        self._learn(request, -1)  # 0 rows: not enough stock left
        return Outcome.SOLD_OUT
