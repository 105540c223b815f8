"""db_pessimistic: BEGIN; SELECT stock ... FOR UPDATE; UPDATE if enough; COMMIT.

The design article's first attempt. The row lock is held across three round
trips and a log flush, so one hot row serves a few hundred to a couple of
thousand buyers per second, and every other buyer queues on the lock.
"""

from __future__ import annotations

from engine.lockdb.base import Attempt, DbStrategy
from engine.model import Outcome, Request
from engine.sql import DB_BEGIN, DbCommit, DbError, DbExec, DbRollback


class DbPessimistic(DbStrategy):
    name = "db_pessimistic"
    summary = "MySQL: SELECT ... FOR UPDATE, UPDATE, COMMIT"

    def attempt(self, request: Request) -> Attempt:
        txn = yield DB_BEGIN
        if isinstance(txn, DbError):
            return txn
        read = yield DbExec(txn, "select_stock_for_update", (self.sku,))
        if isinstance(read, DbError) or read.first is None:
            yield DbRollback(txn)
            return read if isinstance(read, DbError) else Outcome.ERROR
        stock = read.first[0]
        if stock < request.qty:
            yield DbRollback(txn)
            self._learn(request, -1)
            return Outcome.SOLD_OUT
        qty = request.qty
        update = yield DbExec(txn, "deduct_stock", (qty, qty, self.sku))
        if isinstance(update, DbError):
            yield DbRollback(txn)
            return update
        committed = yield DbCommit(txn)
        if isinstance(committed, DbError):
            return committed
        self._learn(request, stock - qty)
        return Outcome.OK
