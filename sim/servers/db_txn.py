"""The nouns of the simulated MySQL: rows with their lock queues, transactions, hot-row groups."""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from engine.sql import Statement
from engine.sql.registry import RowKey
from sim.interpreter import Task

GONE = object()  # before-image of a row that did not exist


class Row:
    """One lockable row: its holder and its FIFO queue of waiting transactions.

    A row exists only while it is held, waited for, armed with a timer or forming a group: the
    server drops it once free (a free row and a new one behave alike), and its queue is made on
    the first wait, so a million rows locked once each (detail inserts) cost no memory after commit.
    """

    __slots__ = ("key", "holder", "queue", "timer_armed", "group")

    def __init__(self, key: RowKey):
        self.key = key
        self.holder: Txn | None = None
        self.queue: deque[Txn] | None = None  # made by the first waiter
        self.timer_armed = False
        self.group: Group | None = None  # hot-row group still taking members


class Txn:
    """One transaction on one pooled connection (also an autocommit statement)."""

    __slots__ = ("task", "autocommit", "session", "held", "before", "waiting_for", "wait_deadline",
                 "statement", "params", "pending", "t_wait", "wrote")

    def __init__(self, task: Task, autocommit: bool, session: bool = False):
        self.task = task
        self.autocommit = autocommit
        self.session = session  # holds its connection across autocommit statements
        self.wrote = False  # changed a row: its commit must flush the log
        self.held: list[Row] = []
        self.before: dict[RowKey, Any] = {}
        self.waiting_for: Row | None = None
        self.wait_deadline = math.inf
        self.statement: Statement = None  # type: ignore[assignment]  # set before each statement is sent
        self.params: tuple = ()
        self.pending: list[RowKey] = []  # rows still to lock for the current statement
        self.t_wait = 0.0


class Group(Txn):
    """Hot-row group commit: autocommit updates of one row applied under one lock, one flush."""

    __slots__ = ("members",)

    def __init__(self, leader: Txn):
        super().__init__(leader.task, True)
        self.statement = leader.statement
        self.members: list[Txn] = [leader]


def closes_cycle(txn: Txn, row: Row) -> bool:
    """Would ``txn`` waiting for ``row`` close a cycle in the waits-for graph (a deadlock)?

    Locks are exclusive, so the graph is a chain: row -> its holder -> the row
    that holder waits for -> ...; a deadlock is a chain leading back to ``txn``.
    """
    holder = row.holder
    while holder is not None:
        if holder is txn:
            return True
        waiting = holder.waiting_for
        holder = waiting.holder if waiting is not None else None
    return False
