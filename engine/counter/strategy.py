"""Single Redis: one counter on one node, atomic Lua check-and-decrement.

The design article's second step. Its ceiling is one single-threaded server:
every buyer, sold out or not, costs that server one script run (unless the app
already knows the sale is over).

With ``pipeline.enabled`` (the default) each deduction also writes its detail
record in the same Lua script (``deduct_detail``) and the DB learns of the
sales asynchronously (:mod:`engine.pipeline`); all stock is pre-allocated to
the one counter.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from engine.counter import twins  # noqa: F401  (registers the counter scripts)
from engine.counter.keys import StockKeys
from engine.model import Inventory, Outcome, Request
from engine.ops import Eval
from engine.pipeline import Reconciliation, SyncPipeline
from engine.pipeline.stats import SyncStats
from engine.scripts import BAD_QTY, NO_STOCK_KEY, SOLD_OUT
from engine.strategy import Ops, Read, Strategy


class SingleRedis(Strategy):
    name = "single_redis"
    summary = "one Redis counter, Lua check-and-decrement"
    retries_once = True
    # With workload.retry > 0 every attempt carries the request id and the deduction is audited
    # per id (deduct_once); ``keyed`` False drops the key: a retry deducts again (tests show it).
    keyed = True

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.counter = StockKeys(self.namespace, self.scenario.sale.sku)
        self._keys = self.counter.all()
        self.pipeline: SyncPipeline | None = None
        if self.scenario.pipeline.enabled:
            self.pipeline = SyncPipeline(self.scenario.pipeline, self.scenario.sale.sku, self.namespace, self.note)
            self.pipeline.add_partition(self.counter)
        self._use_flag = self.scenario.sale.soldout_flag
        self.retrying = self.scenario.workload.retry > 0
        self._once_keys = (*self._keys, self.counter.outcomes, self.counter.deductions)
        self._figures: dict[str, float] = {}

    def setup(self) -> Ops:
        yield from init_counter(self._keys, self.scenario.sale.stock)
        if self.pipeline is not None:
            stock = self.scenario.sale.stock
            yield from self.pipeline.setup(stock, [(self.counter.tag, stock)])

    def deduct(self, request: Request) -> Generator[Any, Any, Outcome]:
        # the hot path of every simulation: kept free of helper calls on purpose
        if self.sold_out[request.app] and self._use_flag:
            return Outcome.SOLD_OUT
        if self.retrying:
            remaining = yield from self._deduct_once(request)
        elif self.pipeline is not None:
            remaining = yield from self.pipeline.deduct(self.counter, request.qty)
        else:
            remaining = yield Eval("deduct", self._keys, (request.qty,))
        if remaining >= 0:
            if remaining == 0:
                self.sold_out[request.app] = True
            return Outcome.OK
        if remaining == SOLD_OUT:
            self._learn(request, remaining)
            return Outcome.SOLD_OUT
        assert remaining in (BAD_QTY, NO_STOCK_KEY), remaining
        return Outcome.ERROR

    def _deduct_once(self, request: Request) -> Generator[Any, Any, int]:
        """One attempt of a request that may be retried: deducted at most once per request id."""
        args = (request.qty, request.id, 1 if self.keyed else 0)
        if self.pipeline is not None:
            reply = yield from self.pipeline.deduct_with("deduct_once_detail", self._once_keys, args,
                                                         self.counter.tag)
        else:
            reply = yield Eval("deduct_once", self._once_keys, args)
        return int(reply[0])

    def background(self) -> list[Ops]:
        return self.pipeline.background() if self.pipeline is not None else []

    def drain(self) -> Ops:
        if self.pipeline is not None:
            yield from self.pipeline.drain(self.scenario.sale.stock)
        if self.retrying:  # read the audit: how many request ids deducted more than once
            ids, deductions = yield Eval("deduct_audit", (self.counter.deductions,), ())
            self._figures["duplicate_deductions"] = int(deductions) - int(ids)

    def keys(self) -> tuple[str, ...]:
        once = (self.counter.outcomes, self.counter.deductions) if self.retrying else ()
        return self._keys + once + (self.pipeline.keys() if self.pipeline is not None else ())

    def counters(self) -> dict[str, float]:
        return {**(self.pipeline.counters() if self.pipeline is not None else {}), **self._figures}

    def tally(self) -> dict[str, Any]:
        return {**super().tally(), "sync": self.pipeline.stats if self.pipeline is not None else None}

    def merge_tallies(self, tallies: list[dict[str, Any]]) -> dict[str, float]:
        merged = super().merge_tallies(tallies)
        if self.pipeline is not None:  # records counted by the app workers, applied by the service
            merged.update(self.pipeline.counters(SyncStats.merged([t["sync"] for t in tallies])))
        return merged

    def reconciliation(self) -> Reconciliation | None:
        return self.pipeline.reconciliation if self.pipeline is not None else None

    def servable(self, qty: int, read: Read) -> bool:
        return int(read(self.counter.stock) or 0) >= qty

    def inventory(self, read: Read) -> Inventory:
        return Inventory(
            initial=self.scenario.sale.stock,
            sold=int(read(self.counter.sold) or 0),
            holders={"redis": int(read(self.counter.stock) or 0)},
        )


def init_counter(keys: tuple[str, str], stock: int) -> Ops:
    """Create a stock counter and its sold counter; fail loudly if they exist."""
    created = yield Eval("init_stock", keys, (stock,))
    if created != 1:
        raise RuntimeError(f"stock keys {keys} already exist (init_stock returned {created})")
