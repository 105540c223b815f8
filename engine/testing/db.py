"""The reference database: SQL ops on the statement twins, with no time and no cost.

Statement semantics come from the registry (:mod:`engine.sql`), applied as the
simulator applies them (:mod:`sim.servers.db`): a statement takes its row
locks, then its twin runs against the *working* tables if its transaction
holds rows, else against the *committed* image (a consistent read); commit
publishes the locked rows, rollback restores their before-images; schema
statements change both images at once; ``db:`` read keys answer from the
committed image.

A statement that needs a row another open transaction holds gets
:class:`Locked` instead of a reply: the interpreter parks the task and asks
again when a transaction ends, or answers ``LOCK_WAIT_TIMEOUT`` once the lock
wait timeout has passed on its clock (the transaction stays open, as MySQL
leaves it). The pool never runs dry (no ``POOL_TIMEOUT``) and deadlocks are
not detected: they end by the lock wait timeout.
"""

from __future__ import annotations

import itertools
from typing import Any

from engine import sql
from engine.sql import DbBegin, DbCommit, DbError, DbExec, DbRollback, SqlResult
from engine.sql.registry import RowKey, Tables

_GONE: Any = object()  # before-image of a row that did not exist


class Transaction:
    """An open transaction (or a session: a held connection whose statements commit on their own)."""

    __slots__ = ("handle", "session", "before")

    def __init__(self, handle: int, session: bool):
        self.handle = handle
        self.session = session
        self.before: dict[RowKey, Any] = {}  # the rows it locked, as they were before it touched them

    def __repr__(self) -> str:
        return f"Transaction({self.handle}{', session' if self.session else ''})"


class Locked:
    """Not a reply: the statement waits for ``row``, held by open transaction ``holder``."""

    __slots__ = ("row", "holder")

    def __init__(self, row: RowKey, holder: Transaction):
        self.row = row
        self.holder = holder

    def __repr__(self) -> str:
        return f"Locked({self.row!r} held by {self.holder!r})"


class ReferenceDb:
    """Committed and working images of the tables, row locks, open transactions."""

    def __init__(self) -> None:
        self.committed: Tables = {}
        self.working: Tables = {}
        self.locks: dict[RowKey, Transaction] = {}
        self.open: dict[int, Transaction] = {}
        self.statements = 0
        self._handles = itertools.count(1)

    def read(self, key: str) -> Any:
        """A ``db:<table>:<key>:<column>`` read key, from committed data."""
        return sql.read_twin(self.committed, key)

    def answer(self, op: Any) -> Any:
        """The reply to one SQL op, or :class:`Locked` when a statement must wait for a row."""
        if isinstance(op, DbExec):
            return self.execute(op)
        if isinstance(op, DbBegin):
            txn = Transaction(next(self._handles), op.autocommit)
            self.open[txn.handle] = txn
            return txn
        if isinstance(op, DbCommit):
            self._end(self._txn(op.txn), commit=True)
            return None
        if isinstance(op, DbRollback):
            self._end(self._txn(op.txn), commit=False)
            return None
        raise TypeError(f"not an SQL op: {op!r}")

    def execute(self, op: DbExec) -> SqlResult | DbError | Locked:
        statement = sql.get(op.statement)
        if statement.ddl:
            statement.twin(self.committed, op.params)
            return statement.twin(self.working, op.params)
        own = op.txn is None or self._txn(op.txn).session  # an autocommit statement: its own transaction
        txn = Transaction(0, False) if own else self._txn(op.txn)
        for row in statement.locks(op.params):
            holder = self.locks.get(row)
            if holder is None:
                self._lock(txn, row)
            elif holder is not txn:
                if own:  # an autocommit statement holds nothing while it waits
                    self._end(txn, commit=False)
                return Locked(row, holder)
        self.statements += 1
        reply = statement.twin(self.working if txn.before else self.committed, op.params)
        if own:
            self._end(txn, commit=not isinstance(reply, DbError))
        return reply

    def _txn(self, handle: Any) -> Transaction:
        if not isinstance(handle, Transaction) or self.open.get(handle.handle) is not handle:
            raise ValueError(f"{handle!r} is not an open transaction of this database")
        return handle

    def _lock(self, txn: Transaction, row: RowKey) -> None:
        table, key = row
        image = self.working.get(table, {}).get(key, _GONE)
        txn.before[row] = image if image is _GONE else dict(image)
        self.locks[row] = txn

    def _end(self, txn: Transaction, commit: bool) -> None:
        for row, before in txn.before.items():
            table, key = row
            if commit:
                image = self.working.get(table, {}).get(key, _GONE)
                target = self.committed.setdefault(table, {})
                if image is _GONE:
                    target.pop(key, None)
                else:
                    target[key] = dict(image)
            else:
                rows = self.working.setdefault(table, {})
                if before is _GONE:
                    rows.pop(key, None)
                else:
                    rows[key] = before
            del self.locks[row]
        txn.before = {}
        self.open.pop(txn.handle, None)
