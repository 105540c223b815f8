"""The ledger transactions on the real MariaDB at 127.0.0.1:3306, against their twins.

The same generators (worked example, idempotent apply, a partly known batch,
pre-allocation and release) run on MariaDB in a scratch database and on the
statement twins; every return value and every final figure must agree. This
checks the SQL text (JSON_TABLE batch insert, INSERT IGNORE, ON DUPLICATE KEY)
that the real driver runs.
"""

from __future__ import annotations

import pytest

from engine import sql
from engine.pipeline import ledger
from engine.sql import DbBegin, DbCommit, DbExec, DbRollback, SqlResult

from .test_ledger import records
from .test_ledger import run as run_twin

pytestmark = pytest.mark.real

NAMESPACE = "fspipe"


@pytest.fixture
def cursor(mariadb_cursor):
    return mariadb_cursor


def run_real(gen, cur):
    """Answer a ledger generator's DB ops on MariaDB (one transaction at a time)."""
    reply = None
    try:
        while True:
            op = gen.send(reply)
            reply = None
            if isinstance(op, DbBegin):
                cur.execute("START TRANSACTION")
                reply = "txn"
            elif isinstance(op, DbExec):
                cur.execute(sql.render(sql.get(op.statement).sql, NAMESPACE), op.params)
                rows = tuple(tuple(int(v) for v in row) for row in cur.fetchall()) if cur.description else ()
                reply = SqlResult(rows, 0 if cur.description else cur.rowcount)
            elif isinstance(op, DbCommit):
                cur.execute("COMMIT")
            elif isinstance(op, DbRollback):
                cur.execute("ROLLBACK")
            else:
                raise AssertionError(f"unexpected op {op!r}")
    except StopIteration as stop:
        return stop.value


def test_ledger_on_mariadb_agrees_with_twins(cursor):
    tables: dict = {}
    steps = [
        lambda: ledger.create_tables(),
        lambda: ledger.init_ledger("sku42", 10_000),
        lambda: ledger.preallocate("sku42", "sku42:p0", 400),  # the worked example ...
        lambda: ledger.apply_batch("sku42", "sku42:p0", records(3, qty=10)),  # MQ update of 30
        lambda: ledger.preallocate("sku42", "sku42:p0", 100),  # ... another 100 pre-allocated
        lambda: ledger.read_ledger("sku42"),
        lambda: ledger.apply_batch("sku42", "sku42:p0", records(3, qty=10)),  # the same batch again
        lambda: ledger.apply_batch("sku42", "sku42:p0", records(4, qty=2, start=2)),  # partly known
        lambda: ledger.preallocate("sku42", "sku42:p1", 9_501),  # more than the pool holds
        lambda: ledger.preallocate("sku42", "sku42:p1", 9_500),
        lambda: ledger.release("sku42", "sku42:p0", 1_000),  # more than p0 holds
        lambda: ledger.release("sku42", "sku42:p0", 100),
        lambda: ledger.read_ledger("sku42"),
    ]
    results = [(run_real(step(), cursor), run_twin(step(), tables)) for step in steps]
    for i, (real, twin) in enumerate(results):
        assert real == twin, (i, real, twin)
    row, rows, qty = results[5][0]
    assert row == ledger.LedgerRow(9_500, 470, 30) and row.actual == 9_970 and (rows, qty) == (3, 30)
    row, rows, qty = results[-1][0]
    # 30 + 2 x 3 (records 3, 4, 5 of the partly known batch) deducted; p1 took the rest of the pool
    assert row == ledger.LedgerRow(100, 10_000 - 36 - 100, 36) and (rows, qty) == (6, 36)
    cursor.execute(sql.render("SELECT part, preallocated, deducted FROM {ledger_part} ORDER BY part", NAMESPACE))
    assert cursor.fetchall() == (("sku42:p0", 500 - 36 - 100, 36), ("sku42:p1", 9_500, 0))
