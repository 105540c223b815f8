"""What the lock-based (MySQL) strategies share: the stock row, retries, counters.

Stock lives in one row of the ``stock`` table (:mod:`engine.lockdb.statements`).
:meth:`DbStrategy.deduct` runs :meth:`DbStrategy.attempt` (one try, which
returns an :class:`~engine.model.Outcome` or the :class:`~engine.sql.DbError`
that stopped it) and applies the client retry policy (``db.retry``) to errors:
each retry is a whole new transaction, i.e. new load on the server.

Inventory is read through the ``db:`` keys (``db:stock:<sku>:stock`` and
``db:stock:<sku>:sold``), which the simulated DB and the real driver answer
from committed data.

With ``db.read_cache`` on (the article's second step), a Redis key holds the
stock the app believes the row has: buyers are first checked against it (a
cached shortage refuses them without touching the DB) and every committed
deduction is followed by a decrement of it. It drifts from the DB whenever a
buyer gives up between the commit and the cache update; the summary reports
how often and how far (``cache_*``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Generator
from typing import Any

import numpy as np

from engine.lockdb import cache, statements  # noqa: F401  (register the read-cache scripts and stock statements)
from engine.model import Inventory, Outcome, Request
from engine.ops import Eval, Sleep
from engine.sql import DbError, DbExec, db_key
from engine.strategy import Ops, Read, Strategy

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
        # The optional Redis read cache (db.read_cache): its key, and how far it strays from the DB.
        self.cache_key = f"{self.namespace}:cache:{{{self.sku}}}:stock" if self.scenario.db.read_cache else None
        self.cache_refusals = 0
        self.cache_samples = 0
        self.cache_disagree = 0
        self.cache_max_gap = 0
        self.cache_gap = 0

    # --- life cycle -----------------------------------------------------
    def setup(self) -> Ops:
        created = yield DbExec(None, f"create_{self.table}")
        if isinstance(created, DbError):
            raise RuntimeError(f"cannot create table {self.table!r} in namespace {self.namespace!r}: {created.code}")
        inserted = yield DbExec(None, "insert_stock", (self.sku, self.scenario.sale.stock))
        if isinstance(inserted, DbError) or inserted.affected != 1:
            raise RuntimeError(f"cannot insert the stock row for {self.sku!r}: {inserted}")
        if self.cache_key is not None:
            created = yield Eval("cache_init", (self.cache_key,), (self.scenario.sale.stock,))
            if created != 1:
                raise RuntimeError(f"read-cache key {self.cache_key!r} already exists")

    def deduct(self, request: Request) -> Generator[Any, Any, Outcome]:
        if self._refuse_locally(request):
            return Outcome.SOLD_OUT
        if self.cache_key is not None:
            cached = yield Eval("cache_get", (self.cache_key,), ())
            if 0 <= cached < request.qty:  # the cache says there is not enough: spare the DB
                self.cache_refusals += 1
                self._learn(request, -1)
                return Outcome.SOLD_OUT
        tried = yield from self.attempt(request)
        if isinstance(tried, DbError):
            outcome = yield from self._retry(request, tried)
        else:
            outcome = tried
        if outcome is Outcome.OK and self.cache_key is not None:
            # After the commit: a buyer who leaves before this point leaves the cache behind the DB.
            yield Eval("cache_deduct", (self.cache_key,), (request.qty,))
        return outcome

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
        return () if self.cache_key is None else (self.cache_key,)

    def tables(self) -> tuple[str, ...]:
        """Logical tables this strategy creates (the real driver drops them afterwards)."""
        return (self.table,)

    def servable(self, qty: int, read: Read) -> bool:
        """The committed stock row holds ``qty`` (a deduction not yet committed still counts)."""
        return int(read(self.stock_key) or 0) >= qty

    def inventory(self, read: Read) -> Inventory:
        """The DB row; with the read cache on, also note how far the cache is from it.

        Every snapshot (the timeline samples and the final one) compares the
        cache with the committed row, so :meth:`counters` can say how often and
        how far they disagreed. The cache holds no stock: it is not a holder.
        """
        stock = int(read(self.stock_key) or 0)
        if self.cache_key is not None:
            cached = read(self.cache_key)
            if cached is not None:
                gap = int(cached) - stock
                self.cache_samples += 1
                self.cache_disagree += gap != 0
                self.cache_max_gap = max(self.cache_max_gap, abs(gap))
                self.cache_gap = gap
        return Inventory(
            initial=self.scenario.sale.stock,
            sold=int(read(self.sold_key) or 0),
            holders={"db": stock},
        )

    def counters(self) -> dict[str, float]:
        figures: dict[str, float] = {"retries": self.retries}
        figures.update({f"err_{code}": n for code, n in sorted(self.errors.items())})
        if self.cache_key is not None:
            figures.update({
                "cache_refusals": self.cache_refusals,  # buyers refused by the cache, DB untouched
                "cache_disagree_share": self.cache_disagree / self.cache_samples if self.cache_samples else 0.0,
                "cache_max_gap": self.cache_max_gap,  # units, cache - committed DB stock, largest seen
                "cache_final_gap": self.cache_gap,  # at the last snapshot
            })
        return figures
