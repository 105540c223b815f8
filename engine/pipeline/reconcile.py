"""End-of-run reconciliation: Redis deductions vs detail records vs the DB.

After the pipeline drains, every unit Redis sold must be in a detail record,
every detail record applied, and the DB's deducted figure, its detail rows and
the records must agree, with the DB ledger still conserving the initial stock.
Any mismatch becomes one readable sentence in ``differences`` (expected: none).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from engine.ops import Eval
from engine.pipeline.ledger import read_ledger
from engine.pipeline.stats import SyncStats


@dataclass(frozen=True)
class Reconciliation:
    redis_sold: int
    detail_records: int
    detail_qty: int
    detail_applied_qty: int
    unapplied_records: int  # still pending or sent
    db_pool: int
    db_preallocated: int
    db_deducted: int
    db_detail_rows: int
    db_detail_qty: int
    applied_twice: int
    differences: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.differences


def reconcile(sources: list[tuple[str, str]], sku: str, stats: SyncStats,
              initial: int) -> Generator[Any, Any, Reconciliation]:
    """Read every partition's detail summary and the DB ledger; compare.

    ``sources`` lists ``(detail hash key, sold counter key)`` per partition.
    """
    totals = [0] * 7
    for details, sold_key in sources:
        summary = yield Eval("detail_summary", (details, sold_key))
        totals = [a + int(b) for a, b in zip(totals, summary)]
    records, qty, pending, sent, _applied, applied_qty, sold = totals
    row, db_rows, db_qty = yield from read_ledger(sku)
    pool, preallocated, deducted = (row.pool, row.preallocated, row.deducted) if row else (0, 0, 0)
    twice = stats.applied_twice
    checks = [
        (sold == qty, f"Redis sold {sold} != detail records' qty {qty}"),
        (pending + sent == 0, f"{pending} detail records still pending and {sent} sent, not applied"),
        (applied_qty == qty, f"applied detail qty {applied_qty} != detail qty {qty}"),
        (deducted == qty, f"DB deducted {deducted} != detail records' qty {qty}"),
        (db_qty == deducted, f"DB detail rows' qty {db_qty} != DB deducted {deducted}"),
        (db_rows == records, f"DB detail rows {db_rows} != detail records {records}"),
        (row is not None and pool + preallocated + deducted == initial,
         f"DB ledger pool {pool} + pre-allocated {preallocated} + deducted {deducted} != initial {initial}"),
        (twice == 0, f"{twice} detail records applied twice"),
        (stats.ledger_failures == 0,
         f"{stats.ledger_failures} pre-allocations/releases refused by the DB ledger"),
    ]
    differences = tuple(message for ok, message in checks if not ok)
    return Reconciliation(sold, records, qty, applied_qty, pending + sent, pool, preallocated, deducted,
                          db_rows, db_qty, twice, differences)
