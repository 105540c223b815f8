"""The ledger transactions on the real MariaDB at 127.0.0.1:3306, against the reference interpreter.

The same generators (worked example, idempotent apply, a partly known batch,
pre-allocation and release) run through the real driver (its SQL driver on
MariaDB, in the run's own scratch database, exactly as a real run executes
them) and on the reference interpreter (the statement twins); every return
value and every final figure must agree. This checks the SQL text (JSON_TABLE
batch insert, INSERT IGNORE, ON DUPLICATE KEY) and the driver's replies.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from servers import REDIS_URL

from engine.pipeline import ledger
from engine.real import RedisTarget, drivers
from engine.real.run import connected
from engine.scenario import Scenario
from engine.sql import db_key
from engine.tasks import TaskKind
from engine.testing import Reference

from .test_ledger import records

pytestmark = pytest.mark.real

STEPS = [
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
PARTS = [db_key("ledger_part", part, column) for part in ("sku42:p0", "sku42:p1")
         for column in ("preallocated", "deducted")]


def run_on_real_driver(steps) -> tuple[list, dict]:
    """Each step to its end through the real driver, one after another; then the parts' cells."""
    namespace = f"fstest-{uuid.uuid4().hex[:10]}"
    context = drivers.Context(RedisTarget(REDIS_URL), namespace, scenario=Scenario())

    async def main():
        try:
            async with connected(context.target, context) as interpreter:
                values = [await interpreter.run_to_end(step(), TaskKind.SETUP) for step in steps]
            return values, await drivers.read(context, PARTS)
        finally:
            await drivers.cleanup(context)

    return asyncio.run(main())


def test_ledger_on_mariadb_agrees_with_twins(redis_client, mariadb_cursor):  # fixtures: both servers answer
    ref = Reference()
    twins = [ref.run(step(), TaskKind.SETUP) for step in STEPS]
    real, cells = run_on_real_driver(STEPS)
    for i, (value, twin) in enumerate(zip(real, twins)):
        assert value == twin, (i, value, twin)
    row, rows, qty = real[5]
    assert row == ledger.LedgerRow(9_500, 470, 30) and row.actual == 9_970 and (rows, qty) == (3, 30)
    row, rows, qty = real[-1]
    # 30 + 2 x 3 (records 3, 4, 5 of the partly known batch) deducted; p1 took the rest of the pool
    assert row == ledger.LedgerRow(100, 10_000 - 36 - 100, 36) and (rows, qty) == (6, 36)
    assert [cells[key] for key in PARTS] == [500 - 36 - 100, 36, 9_500, 0]
    assert [ref.read(key) for key in PARTS] == [500 - 36 - 100, 36, 9_500, 0]
