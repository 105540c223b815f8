"""Pre-allocated stock accounting: the article's worked example, figure by figure.

The ledger's transactions run on the serial reference interpreter
(:mod:`engine.testing`: the statement twins of the registry, no SimPy, no
MariaDB): the same statements the simulator and the real driver run.
"""

from __future__ import annotations

from engine.pipeline import ledger
from engine.pipeline.ledger import LedgerRow
from engine.tasks import TaskKind
from engine.testing import Reference


def run(ref: Reference, gen):
    """Run one ledger generator to its end on ``ref``; its value (no transaction may stay open)."""
    value = ref.run(gen, TaskKind.SETUP)
    assert not ref.db.open
    return value


def figures(ref: Reference, sku="sku42", part="sku42:p0"):
    row, rows, qty = run(ref, ledger.read_ledger(sku))
    p = ref.db.committed["ledger_part"].get(part, {})
    return row, (p.get("preallocated"), p.get("deducted")), rows, qty


def ledger_of(initial: int) -> Reference:
    ref = Reference()
    run(ref, ledger.create_tables())
    run(ref, ledger.init_ledger("sku42", initial))
    return ref


def records(n, qty=1, start=0):
    return [(f"sku42:p0:{i}", qty, 0.5 + i) for i in range(start, start + n)]


def test_worked_example_every_figure():
    ref = ledger_of(10_000)
    row, part, _, _ = figures(ref)
    assert row == LedgerRow(pool=10_000, preallocated=0, deducted=0) and row.actual == 10_000
    assert part == (None, None)

    # a partition pre-allocates 400 units: pool -> pre-allocated, actual stock unchanged
    assert run(ref, ledger.preallocate("sku42", "sku42:p0", 400)) is True
    row, part, _, _ = figures(ref)
    assert row == LedgerRow(pool=9_600, preallocated=400, deducted=0) and row.actual == 10_000
    assert part == (400, 0)

    # an MQ update of 30 sold units (three detail records of 10): pre-allocated -> deducted
    report = run(ref, ledger.apply_batch("sku42", "sku42:p0", records(3, qty=10)))
    assert report.qty == 30 and len(report.inserted) == 3 and report.duplicates == 0
    row, part, rows, qty = figures(ref)
    assert row == LedgerRow(pool=9_600, preallocated=370, deducted=30) and row.actual == 9_970
    assert part == (370, 30) and (rows, qty) == (3, 30)

    # another 100 units pre-allocated
    assert run(ref, ledger.preallocate("sku42", "sku42:p0", 100)) is True
    row, part, rows, qty = figures(ref)
    assert row == LedgerRow(pool=9_500, preallocated=470, deducted=30) and row.actual == 9_970
    assert part == (470, 30) and (rows, qty) == (3, 30)
    assert row.pool + row.preallocated + row.deducted == 10_000


def test_apply_is_idempotent_by_detail_id():
    ref = ledger_of(100)
    run(ref, ledger.preallocate("sku42", "sku42:p0", 100))
    first = run(ref, ledger.apply_batch("sku42", "sku42:p0", records(5)))
    again = run(ref, ledger.apply_batch("sku42", "sku42:p0", records(5)))
    overlap = run(ref, ledger.apply_batch("sku42", "sku42:p0", records(4, start=3)))  # 3, 4 seen; 5, 6 new
    assert (first.qty, again.qty, again.duplicates, again.inserted) == (5, 0, 5, ())
    # partly known (a producer that re-batched): rolled back and redone row by row, exactly
    assert overlap.inserted == ("sku42:p0:5", "sku42:p0:6") and overlap.duplicates == 2
    row, part, rows, qty = figures(ref)
    assert row == LedgerRow(pool=0, preallocated=93, deducted=7) and part == (93, 7) and (rows, qty) == (7, 7)


def test_preallocation_beyond_the_pool_is_refused():
    ref = ledger_of(50)
    assert run(ref, ledger.preallocate("sku42", "sku42:p0", 51)) is False
    row, part, _, _ = figures(ref)
    assert row == LedgerRow(pool=50, preallocated=0, deducted=0) and part == (None, None)


def test_release_gives_unsold_units_back_to_the_pool():
    ref = ledger_of(1_000)
    run(ref, ledger.preallocate("sku42", "sku42:p0", 400))
    run(ref, ledger.apply_batch("sku42", "sku42:p0", records(30)))
    assert run(ref, ledger.release("sku42", "sku42:p0", 371)) is False  # only 370 are pre-allocated
    assert run(ref, ledger.release("sku42", "sku42:p0", 370)) is True
    row, part, _, _ = figures(ref)
    assert row == LedgerRow(pool=970, preallocated=0, deducted=30) and row.actual == 970 and part == (0, 30)


def test_release_is_checked_against_the_partition_not_against_other_partitions_in_flight():
    """Sold-out sales 19 and 32 (experiments/soldout_sales.py, gathering on): a gathered partition's
    release reached the DB while the anchor's MQ updates had overtaken its pre-allocation (still queued
    behind the release); the product's pre-allocated figure, a sum over partitions, was below the
    release although the releasing partition held it, and the DB refused it (then the anchor's
    pre-allocation, for want of the released units in the pool)."""
    ref = ledger_of(100)
    run(ref, ledger.preallocate("sku42", "sku42:p0", 10))
    run(ref, ledger.preallocate("sku42", "sku42:p1", 2))  # the anchor, pre-allocated at setup
    run(ref, ledger.apply_batch("sku42", "sku42:p0", records(2)))  # p0 sold 2 of its 10: holds 8
    anchor = [(f"sku42:p1:{i}", 1, 1.0 + i) for i in range(7)]
    run(ref, ledger.apply_batch("sku42", "sku42:p1", anchor))  # 7 sold: 5 of a top-up not yet in the DB
    assert figures(ref)[0] == LedgerRow(pool=88, preallocated=3, deducted=9)  # 8 in p0, -5 in p1
    assert run(ref, ledger.release("sku42", "sku42:p0", 8)) is True  # p0 holds 8: the DB takes them back
    assert run(ref, ledger.release("sku42", "sku42:p0", 1)) is False  # but not one more
    assert run(ref, ledger.preallocate("sku42", "sku42:p1", 5)) is True  # the anchor's top-up lands
    row, part, rows, qty = figures(ref)
    assert row == LedgerRow(pool=91, preallocated=0, deducted=9) and row.actual == 91
    assert part == (0, 2) and figures(ref, part="sku42:p1")[1] == (0, 7) and (rows, qty) == (9, 9)
