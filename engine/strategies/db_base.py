"""What the lock-based (MySQL) strategies share: the stock row, retries, counters.

Stock lives in one row of the ``stock`` table (:mod:`engine.sql.stock`).
:meth:`DbStrategy.deduct` runs :meth:`DbStrategy.attempt` (one try, which
returns an :class:`~engine.model.Outcome` or the :class:`~engine.sql.DbError`
that stopped it) and applies the client retry policy (``db.retry``) to errors:
each retry is a whole new transaction, i.e. new load on the server.

Inventory is read through the ``db:`` keys (``db:stock:<sku>:stock`` and
``db:stock:<sku>:sold``), which the simulated DB and the real driver answer
from committed data.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Generator
from typing import Any

import numpy as np

from ..model import Inventory, Outcome, Request
from ..ops import Sleep
from ..sql import DbError, DbExec, db_key
from .base import Ops, Read, Strategy

Attempt = Generator[Any, Any, "Outcome | DbError"]


def backoff_delay(policy: str, retry: int, base: float, cap: float, rng: np.random.Generator) -> float:
    """Delay before retry number ``retry`` (1, 2, ...): 0, or "full jitter" exponential backoff.

    Full jitter (uniform in [0, min(cap, base * 2**(retry-1))]) spreads retries
    out instead of re-synchronising them on the hot row.
    """
    if policy == "immediate" or base == 0:
        return 0.0
    return float(rng.uniform(0.0, min(cap, base * 2.0 ** (retry - 1))))


class DbStrategy(Strategy):
    """Base of the ``db_*`` strategies: setup, inventory, retries on DB errors, counters."""

    table = "stock"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.sku = self.scenario.sale.sku
        self.stock_key = db_key(self.table, self.sku, "stock")
        self.sold_key = db_key(self.table, self.sku, "sold")
        self.errors: Counter[str] = Counter()
        self.retries = 0

    # --- life cycle -----------------------------------------------------
    def setup(self) -> Ops:
        created = yield DbExec(None, f"create_{self.table}")
        if isinstance(created, DbError):
            raise RuntimeError(f"cannot create table {self.table!r} in namespace {self.namespace!r}: {created.code}")
        inserted = yield DbExec(None, "insert_stock", (self.sku, self.scenario.sale.stock))
        if isinstance(inserted, DbError) or inserted.affected != 1:
            raise RuntimeError(f"cannot insert the stock row for {self.sku!r}: {inserted}")

    def deduct(self, request: Request) -> Generator[Any, Any, Outcome]:
        if self.sold_out_seen and self._refuse_locally(request):
            return Outcome.SOLD_OUT
        outcome = yield from self.attempt(request)
        if outcome.__class__ is not DbError:
            return outcome
        return (yield from self._retry(request, outcome))

    def _retry(self, request: Request, error: DbError) -> Generator[Any, Any, Outcome]:
        """Apply the client retry policy after ``error``: every retry is a new try from scratch."""
        config = self.scenario.db
        retry = 0
        while True:
            self.errors[error.code] += 1
            if config.retry == "none" or retry >= config.retry_max:
                return Outcome.ERROR
            retry += 1
            self.retries += 1
            delay = backoff_delay(config.retry, retry, config.retry_base, config.retry_cap, self.rng)
            if delay > 0:
                yield Sleep(delay)
            outcome = yield from self.attempt(request)
            if not isinstance(outcome, DbError):
                return outcome
            error = outcome

    def attempt(self, request: Request) -> Attempt:
        """One try at the deduction: an Outcome, or the DbError that stopped it."""
        raise NotImplementedError

    # --- observation ----------------------------------------------------
    def keys(self) -> tuple[str, ...]:
        return ()  # no Redis keys

    def tables(self) -> tuple[str, ...]:
        """Logical tables this strategy creates (the real driver drops them afterwards)."""
        return (self.table,)

    def inventory(self, read: Read) -> Inventory:
        return Inventory(
            initial=self.scenario.sale.stock,
            sold=int(read(self.sold_key) or 0),
            holders={"db": int(read(self.stock_key) or 0)},
        )

    def counters(self) -> dict[str, float]:
        figures: dict[str, float] = {"retries": self.retries}
        figures.update({f"err_{code}": n for code, n in sorted(self.errors.items())})
        return figures
