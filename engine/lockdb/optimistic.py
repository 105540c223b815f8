"""db_optimistic: read (stock, version), then compare-and-set on the version.

``SELECT stock, version`` is a plain MVCC read (no lock); the deduction is
``UPDATE ... WHERE sku = ? AND version = ? AND stock >= ?`` in autocommit.
0 rows changed means another buyer got there first: re-read and retry, up to
``db.optimistic_max`` times with full-jitter backoff from ``db.optimistic_base``.
Read and update share one pooled connection (a session); during a backoff the
connection goes back to the pool and each retry queues for one again.
Under a flash sale almost every try conflicts, and every retry is new load on
the row; the conflict and abort ratios in the summary show it.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from engine.lockdb.base import Attempt, DbStrategy, backoff_delay
from engine.model import Outcome, Request
from engine.ops import Sleep
from engine.sql import DB_SESSION, DbCommit, DbError, DbExec


class DbOptimistic(DbStrategy):
    name = "db_optimistic"
    summary = "MySQL: version compare-and-set with bounded retries"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.cas_tries = 0
        self.conflicts = 0
        self.aborts = 0
        self.requests_tried = 0

    def attempt(self, request: Request) -> Attempt:
        config = self.scenario.db
        qty = request.qty
        self.requests_tried += 1
        conflict = 0
        session = yield DB_SESSION  # one connection for the read and the compare-and-set
        while True:
            if isinstance(session, DbError):
                return session
            outcome = yield from self._try(session, request, qty)
            if outcome is not None:
                yield DbCommit(session)  # a session's commit just gives the connection back
                return outcome
            self.conflicts += 1
            if conflict >= config.optimistic_max:
                self.aborts += 1
                yield DbCommit(session)
                return Outcome.ERROR
            conflict += 1
            delay = backoff_delay("backoff", conflict, config.optimistic_base, config.retry_cap, self.rng)
            if delay > 0:  # never sleep holding a connection: give it back, queue again afterwards
                yield DbCommit(session)
                yield Sleep(delay)
                session = yield DB_SESSION

    def _try(self, session: Any, request: Request, qty: int) -> Generator[Any, Any, Outcome | DbError | None]:
        """Read, then compare-and-set; ``None`` means a version conflict."""
        read = yield DbExec(session, "select_stock", (self.sku,))
        if isinstance(read, DbError):
            return read
        if read.first is None:
            return Outcome.ERROR
        stock, version = read.first
        if stock < qty:
            self._learn(request, -1)
            return Outcome.SOLD_OUT
        self.cas_tries += 1
        update = yield DbExec(session, "deduct_if_version", (qty, qty, self.sku, version, qty))
        if isinstance(update, DbError):
            return update
        if update.affected == 1:
            self._learn(request, stock - qty)
            return Outcome.OK
        return None

    def counters(self) -> dict[str, float]:
        figures = super().counters()
        figures.update({
            "cas_tries": self.cas_tries,
            "conflicts": self.conflicts,
            "conflict_ratio": self.conflicts / self.cas_tries if self.cas_tries else 0.0,
            "aborts": self.aborts,
            "abort_ratio": self.aborts / self.requests_tried if self.requests_tried else 0.0,
        })
        return figures
