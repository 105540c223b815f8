"""Pre-allocated stock accounting: the article's worked example, figure by figure.

The ledger's transactions are driven with the statement twins of the registry
(no SimPy, no MariaDB): the same statements the simulator and the real
driver run.
"""

from __future__ import annotations

import copy

from engine.pipeline import ledger
from engine.pipeline.ledger import LedgerRow
from engine.sql import STATEMENTS, DbBegin, DbCommit, DbExec, DbRollback


def run(gen, tables):
    """Answer a ledger generator's DB ops from the statement twins (one transaction at a
    time, rollback restores the tables); return its value."""
    reply = None
    before = None
    try:
        while True:
            op = gen.send(reply)
            reply = None
            if isinstance(op, DbBegin):
                before, reply = copy.deepcopy(tables), "txn"
            elif isinstance(op, DbExec):
                reply = STATEMENTS[op.statement].twin(tables, op.params)
            elif isinstance(op, DbRollback):
                tables.clear()
                tables.update(before)
            elif isinstance(op, DbCommit):
                before = None
            else:
                raise AssertionError(f"unexpected op {op!r}")
    except StopIteration as stop:
        return stop.value


def figures(tables, sku="sku42", part="sku42:p0"):
    row, rows, qty = run(ledger.read_ledger(sku), tables)
    p = tables["ledger_part"].get(part, {})
    return row, (p.get("preallocated"), p.get("deducted")), rows, qty


def records(n, qty=1, start=0):
    return [(f"sku42:p0:{i}", qty, 0.5 + i) for i in range(start, start + n)]


def test_worked_example_every_figure():
    tables: dict = {}
    run(ledger.create_tables(), tables)
    run(ledger.init_ledger("sku42", 10_000), tables)
    row, part, _, _ = figures(tables)
    assert row == LedgerRow(pool=10_000, preallocated=0, deducted=0) and row.actual == 10_000
    assert part == (None, None)

    # a partition pre-allocates 400 units: pool -> pre-allocated, actual stock unchanged
    assert run(ledger.preallocate("sku42", "sku42:p0", 400), tables) is True
    row, part, _, _ = figures(tables)
    assert row == LedgerRow(pool=9_600, preallocated=400, deducted=0) and row.actual == 10_000
    assert part == (400, 0)

    # an MQ update of 30 sold units (three detail records of 10): pre-allocated -> deducted
    report = run(ledger.apply_batch("sku42", "sku42:p0", records(3, qty=10)), tables)
    assert report.qty == 30 and len(report.inserted) == 3 and report.duplicates == 0
    row, part, rows, qty = figures(tables)
    assert row == LedgerRow(pool=9_600, preallocated=370, deducted=30) and row.actual == 9_970
    assert part == (370, 30) and (rows, qty) == (3, 30)

    # another 100 units pre-allocated
    assert run(ledger.preallocate("sku42", "sku42:p0", 100), tables) is True
    row, part, rows, qty = figures(tables)
    assert row == LedgerRow(pool=9_500, preallocated=470, deducted=30) and row.actual == 9_970
    assert part == (470, 30) and (rows, qty) == (3, 30)
    assert row.pool + row.preallocated + row.deducted == 10_000


def test_apply_is_idempotent_by_detail_id():
    tables: dict = {}
    run(ledger.create_tables(), tables)
    run(ledger.init_ledger("sku42", 100), tables)
    run(ledger.preallocate("sku42", "sku42:p0", 100), tables)
    first = run(ledger.apply_batch("sku42", "sku42:p0", records(5)), tables)
    again = run(ledger.apply_batch("sku42", "sku42:p0", records(5)), tables)
    overlap = run(ledger.apply_batch("sku42", "sku42:p0", records(4, start=3)), tables)  # 3, 4 seen; 5, 6 new
    assert (first.qty, again.qty, again.duplicates, again.inserted) == (5, 0, 5, ())
    # partly known (a producer that re-batched): rolled back and redone row by row, exactly
    assert overlap.inserted == ("sku42:p0:5", "sku42:p0:6") and overlap.duplicates == 2
    row, part, rows, qty = figures(tables)
    assert row == LedgerRow(pool=0, preallocated=93, deducted=7) and part == (93, 7) and (rows, qty) == (7, 7)


def test_preallocation_beyond_the_pool_is_refused():
    tables: dict = {}
    run(ledger.create_tables(), tables)
    run(ledger.init_ledger("sku42", 50), tables)
    assert run(ledger.preallocate("sku42", "sku42:p0", 51), tables) is False
    row, part, _, _ = figures(tables)
    assert row == LedgerRow(pool=50, preallocated=0, deducted=0) and part == (None, None)


def test_release_gives_unsold_units_back_to_the_pool():
    tables: dict = {}
    run(ledger.create_tables(), tables)
    run(ledger.init_ledger("sku42", 1_000), tables)
    run(ledger.preallocate("sku42", "sku42:p0", 400), tables)
    run(ledger.apply_batch("sku42", "sku42:p0", records(30)), tables)
    assert run(ledger.release("sku42", "sku42:p0", 371), tables) is False  # only 370 are pre-allocated
    assert run(ledger.release("sku42", "sku42:p0", 370), tables) is True
    row, part, _, _ = figures(tables)
    assert row == LedgerRow(pool=970, preallocated=0, deducted=30) and row.actual == 970 and part == (0, 30)
