"""Pre-allocated stock accounting in the database, and the idempotent batch apply.

The design article's "Pre-Allocated Stock Management": a product's stock in
the DB is split into the **pre-allocation pool** (not yet handed to any
partition) and **pre-allocated stock** (handed to partitions, whose sales the
DB has not heard of yet); ``actual stock = pool + pre-allocated``. Two moves
change it:

- a *pre-allocation* moves ``n`` units from the pool to a partition
  (``pool -= n; preallocated += n``): actual stock is unchanged;
- a *release* gives unsold units of a retired partition back to the pool
  (the reverse move);
- an *MQ update* of ``n`` sold units moves them from pre-allocated to
  deducted (``preallocated -= n; deducted += n``) in ONE transaction with the
  detail rows that justify it: actual stock falls by ``n``.

Worked example (tests/pipeline/test_ledger.py): 10,000 units -> pool 10,000;
pre-allocate 400 -> pool 9,600, pre-allocated 400, actual 10,000; MQ update of
30 -> pre-allocated 370, deducted 30, actual 9,970; pre-allocate 100 -> pool
9,500, pre-allocated 470, actual 9,970, deducted 30.

Tables (registered in :mod:`engine.sql`'s statement registry, real MariaDB
text plus Python twins): ``ledger`` (one row per SKU), ``ledger_part`` (one row
per partition) and ``detail`` (one row per detail record, primary key = the
detail id). The apply inserts each detail row with ``INSERT IGNORE`` and
adjusts the ledger by the quantity of the rows that were really new, so a
batch (or a record) applied twice changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from engine.pipeline.columnar import DetailRows
from engine.sql import DB_BEGIN, DbCommit, DbError, DbExec, DbRollback, SqlResult
from engine.sql.ops import DUPLICATE_KEY, EMPTY
from engine.sql.registry import Statement, Table, Tables, lock_rows, no_locks, register, register_table

LEDGER = register_table(Table(
    "ledger", key="sku",
    create_sql=("CREATE TABLE {ledger} (sku VARCHAR(64) NOT NULL PRIMARY KEY, pool BIGINT NOT NULL, "
                "preallocated BIGINT NOT NULL DEFAULT 0, deducted BIGINT NOT NULL DEFAULT 0) ENGINE=InnoDB"),
))
LEDGER_PART = register_table(Table(
    "ledger_part", key="part",
    create_sql=("CREATE TABLE {ledger_part} (part VARCHAR(128) NOT NULL PRIMARY KEY, sku VARCHAR(64) NOT NULL, "
                "preallocated BIGINT NOT NULL DEFAULT 0, deducted BIGINT NOT NULL DEFAULT 0) ENGINE=InnoDB"),
))
DETAIL = register_table(Table(
    "detail", key="detail_id",
    create_sql=("CREATE TABLE {detail} (detail_id VARCHAR(160) NOT NULL PRIMARY KEY, sku VARCHAR(64) NOT NULL, "
                "part VARCHAR(128) NOT NULL, qty BIGINT NOT NULL, t DOUBLE NOT NULL, "
                "KEY sku_idx (sku)) ENGINE=InnoDB"),
    rows=DetailRows,  # one row per sale: held in columns in the simulator (engine/pipeline/columnar.py)
))


def _ledger_insert(tables: Tables, params: tuple) -> SqlResult | DbError:
    sku, pool = params
    rows = tables["ledger"]
    if sku in rows:
        return DbError(DUPLICATE_KEY, f"ledger row {sku!r}")
    rows[sku] = {"sku": sku, "pool": int(pool), "preallocated": 0, "deducted": 0}
    return SqlResult(affected=1)


def _ledger_preallocate(tables: Tables, params: tuple) -> SqlResult:
    take, give, sku, need = params
    row = tables["ledger"].get(sku)
    if row is None or row["pool"] < need or take == 0:
        return EMPTY
    row["pool"] -= take
    row["preallocated"] += give
    return SqlResult(affected=1)


def _part_preallocate(tables: Tables, params: tuple) -> SqlResult:
    part, sku, qty, more = params
    rows = tables["ledger_part"]
    row = rows.get(part)
    if row is None:
        rows[part] = {"part": part, "sku": sku, "preallocated": int(qty), "deducted": 0}
        return SqlResult(affected=1)
    if more == 0:
        return EMPTY
    row["preallocated"] += more
    return SqlResult(affected=2)  # MySQL: ON DUPLICATE KEY UPDATE that changed the row counts 2


def _ledger_release(tables: Tables, params: tuple) -> SqlResult:
    give, take, sku = params
    row = tables["ledger"].get(sku)
    if row is None or take == 0:
        return EMPTY
    row["pool"] += give
    row["preallocated"] -= take
    return SqlResult(affected=1)


def _part_release(tables: Tables, params: tuple) -> SqlResult:
    take, part, need = params
    row = tables["ledger_part"].get(part)
    if row is None or row["preallocated"] < need or take == 0:
        return EMPTY
    row["preallocated"] -= take
    return SqlResult(affected=1)


def _detail_insert(tables: Tables, params: tuple) -> SqlResult:
    detail_id, sku, part, qty, t = params
    rows = tables["detail"]
    if rows.__class__ is DetailRows:  # INSERT IGNORE of a duplicate key: nothing happens, 0 rows
        return SqlResult(affected=1) if rows.insert(detail_id, sku, part, int(qty), float(t)) else EMPTY  # type: ignore[attr-defined]
    if detail_id in rows:
        return EMPTY
    rows[detail_id] = {"detail_id": detail_id, "sku": sku, "part": part, "qty": int(qty), "t": float(t)}
    return SqlResult(affected=1)


_parsed: tuple[str, list] = ("", [])  # the last batch parsed: its lock footprint, then its twin, read it


def _batch_rows(records: str) -> list:
    """``json.loads(records)``, once for the footprint and the twin of the same statement (read-only)."""
    global _parsed
    text, rows = _parsed
    if text is not records and text != records:
        rows = json.loads(records)
        _parsed = (records, rows)
    return rows


def _detail_insert_batch(tables: Tables, params: tuple) -> SqlResult:
    sku, part, records = params
    rows = tables["detail"]
    inserted = 0
    if rows.__class__ is DetailRows:
        insert = rows.insert  # type: ignore[attr-defined]
        for detail_id, qty, t in _batch_rows(records):
            inserted += insert(detail_id, sku, part, int(qty), float(t))
        return SqlResult(affected=inserted)
    for detail_id, qty, t in _batch_rows(records):
        inserted += _detail_insert(tables, (detail_id, sku, part, qty, t)).affected
    return SqlResult(affected=inserted)


def _batch_locks(params: tuple) -> tuple[tuple[str, Any], ...]:
    return tuple(("detail", record[0]) for record in _batch_rows(params[2]))


def _apply(table: str) -> Any:
    def apply(tables: Tables, params: tuple) -> SqlResult:
        take, add, key = params
        row = tables[table].get(key)
        if row is None or (take == 0 and add == 0):
            return EMPTY
        row["preallocated"] -= take
        row["deducted"] += add
        return SqlResult(affected=1)
    return apply


def _ledger_select(tables: Tables, params: tuple) -> SqlResult:
    row = tables["ledger"].get(params[0])
    return EMPTY if row is None else SqlResult(((row["pool"], row["preallocated"], row["deducted"]),))


def _detail_totals(tables: Tables, params: tuple) -> SqlResult:
    rows = tables["detail"]
    if rows.__class__ is DetailRows:
        return SqlResult((rows.totals(params[0]),))  # type: ignore[attr-defined]
    qtys = [row["qty"] for row in rows.values() if row["sku"] == params[0]]
    return SqlResult(((len(qtys), sum(qtys)),))


register(Statement("ledger_insert", "INSERT INTO {ledger} (sku, pool, preallocated, deducted) VALUES (%s, %s, 0, 0)",
                   _ledger_insert, lock_rows("ledger", 0)))
# params (qty, qty, sku, qty): pool -> pre-allocated, only when the pool holds qty
register(Statement("ledger_preallocate",
                   "UPDATE {ledger} SET pool = pool - %s, preallocated = preallocated + %s WHERE sku = %s AND pool >= %s",
                   _ledger_preallocate, lock_rows("ledger", 2)))
# params (part, sku, qty, qty)
register(Statement("part_preallocate",
                   "INSERT INTO {ledger_part} (part, sku, preallocated, deducted) VALUES (%s, %s, %s, 0) "
                   "ON DUPLICATE KEY UPDATE preallocated = preallocated + %s",
                   _part_preallocate, lock_rows("ledger_part", 0)))
# params (qty, qty, sku): pre-allocated -> pool (a partition gave unsold stock back). No check on the
# product's pre-allocated figure: it is the sum over partitions, some of which may dip below zero while
# MQ updates overtake their pre-allocations; part_release, in the same transaction, is the check.
register(Statement("ledger_release",
                   "UPDATE {ledger} SET pool = pool + %s, preallocated = preallocated - %s WHERE sku = %s",
                   _ledger_release, lock_rows("ledger", 2)))
# params (qty, part, qty): only when the partition still holds qty pre-allocated units
register(Statement("part_release",
                   "UPDATE {ledger_part} SET preallocated = preallocated - %s WHERE part = %s AND preallocated >= %s",
                   _part_release, lock_rows("ledger_part", 1)))
# params (detail_id, sku, part, qty, t); 1 row when new, 0 for a detail id seen before
register(Statement("detail_insert", "INSERT IGNORE INTO {detail} (detail_id, sku, part, qty, t) VALUES (%s, %s, %s, %s, %s)",
                   _detail_insert, lock_rows("detail", 0)))
# params (sku, part, json [[detail_id, qty, t], ...]): the whole batch in one statement (MariaDB >= 10.6,
# MySQL >= 8.0 have JSON_TABLE); affected = rows that were new
register(Statement("detail_insert_batch",
                   "INSERT IGNORE INTO {detail} (detail_id, sku, part, qty, t) "
                   "SELECT j.detail_id, %s, %s, j.qty, j.t FROM JSON_TABLE(%s, '$[*]' COLUMNS ("
                   "detail_id VARCHAR(160) PATH '$[0]', qty BIGINT PATH '$[1]', t DOUBLE PATH '$[2]')) AS j",
                   _detail_insert_batch, _batch_locks))
# params (qty, qty, sku): an MQ update, pre-allocated -> deducted
register(Statement("ledger_apply",
                   "UPDATE {ledger} SET preallocated = preallocated - %s, deducted = deducted + %s WHERE sku = %s",
                   _apply("ledger"), lock_rows("ledger", 2)))
# params (qty, qty, part)
register(Statement("part_apply",
                   "UPDATE {ledger_part} SET preallocated = preallocated - %s, deducted = deducted + %s WHERE part = %s",
                   _apply("ledger_part"), lock_rows("ledger_part", 2)))
# params (sku,) -> (pool, preallocated, deducted): a consistent read, no lock
register(Statement("ledger_select", "SELECT pool, preallocated, deducted FROM {ledger} WHERE sku = %s",
                   _ledger_select, no_locks))
# params (sku,) -> (rows, total qty) over the detail table
register(Statement("detail_totals", "SELECT COUNT(*), COALESCE(SUM(qty), 0) FROM {detail} WHERE sku = %s",
                   _detail_totals, no_locks))

Ops = Generator[Any, Any, Any]


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """One product's stock as the DB sees it."""

    pool: int
    preallocated: int
    deducted: int

    @property
    def actual(self) -> int:
        """Actual stock = pre-allocation pool + pre-allocated stock."""
        return self.pool + self.preallocated


@dataclass(frozen=True, slots=True)
class ApplyReport:
    """What one apply transaction did: rows new to the DB, duplicates ignored, units moved."""

    inserted: tuple[str, ...]
    duplicates: int
    qty: int


class ApplyFailed(RuntimeError):
    """The DB refused the transaction (lock wait timeout, deadlock, pool...): rolled back."""


def _ok(reply: Any, txn: Any) -> Ops:
    if isinstance(reply, DbError):
        if txn is not None:
            yield DbRollback(txn)
        raise ApplyFailed(reply.code)
    return reply


def create_tables() -> Ops:
    """Create this run's ledger, ledger_part and detail tables."""
    for table in ("ledger", "ledger_part", "detail"):
        yield from _ok((yield DbExec(None, f"create_{table}")), None)


def init_ledger(sku: str, stock: int) -> Ops:
    """A product row with all its stock in the pre-allocation pool."""
    reply = yield DbExec(None, "ledger_insert", (sku, stock))
    yield from _ok(reply, None)


def preallocate(sku: str, part: str, qty: int) -> Generator[Any, Any, bool]:
    """Move ``qty`` units from the pool to partition ``part`` in one transaction; False if the pool is short."""
    txn = yield from _ok((yield DB_BEGIN), None)
    moved = yield from _ok((yield DbExec(txn, "ledger_preallocate", (qty, qty, sku, qty))), txn)
    if moved.affected != 1:
        yield DbRollback(txn)
        return False
    yield from _ok((yield DbExec(txn, "part_preallocate", (part, sku, qty, qty))), txn)
    yield from _ok((yield DbCommit(txn)), txn)
    return True


def release(sku: str, part: str, qty: int) -> Generator[Any, Any, bool]:
    """Move ``qty`` unsold units from partition ``part`` back to the pool; False if it holds fewer.

    The check is the partition's own pre-allocated figure, not the product's: the product's is the
    sum over all partitions, and another partition's figure may be below zero for a while (its MQ
    updates overtook a pre-allocation still queued behind this release), which says nothing about
    what ``part`` holds. Every pre-allocation of ``part`` is applied before its release (the moves
    are written in order) and only its applied sales have been deducted, so ``part`` holds at least
    the units it gives back. The product row is locked first, as in :func:`preallocate` and
    :func:`apply_batch`.
    """
    txn = yield from _ok((yield DB_BEGIN), None)
    moved = yield from _ok((yield DbExec(txn, "ledger_release", (qty, qty, sku))), txn)
    if moved.affected == 1:
        moved = yield from _ok((yield DbExec(txn, "part_release", (qty, part, qty))), txn)
    if moved.affected != 1:
        yield DbRollback(txn)
        return False
    yield from _ok((yield DbCommit(txn)), txn)
    return True


def apply_batch(sku: str, part: str, records: list[tuple[str, int, float]]) -> Generator[Any, Any, ApplyReport]:
    """Apply detail records ``(detail_id, qty, t)`` of one partition in ONE transaction.

    The detail rows go in with INSERT IGNORE (the primary key is the detail
    id); only the rows that were new move units from pre-allocated to
    deducted, on the product and on the partition. Idempotent: a second
    application inserts nothing and moves nothing. Raises :class:`ApplyFailed`
    (after rolling back) when the DB refuses; the caller must not acknowledge.

    A batch goes in as one multi-row statement. A record belongs to one batch
    only (a re-send repeats the batch as it was), so a batch is either all new
    or all known; should it be partly known, the transaction is rolled back and
    redone row by row, which tells exactly which rows were new.
    """
    txn = yield from _ok((yield DB_BEGIN), None)
    rows = json.dumps(records)  # (tuples are written as JSON arrays)
    reply = yield from _ok((yield DbExec(txn, "detail_insert_batch", (sku, part, rows))), txn)
    if reply.affected == len(records):
        inserted = [detail_id for detail_id, _, _ in records]
        qty = sum(n for _, n, _ in records)
    elif reply.affected == 0:
        inserted, qty = [], 0
    else:
        yield DbRollback(txn)
        txn = yield from _ok((yield DB_BEGIN), None)
        inserted, qty = [], 0
        for detail_id, n, t in records:
            reply = yield from _ok((yield DbExec(txn, "detail_insert", (detail_id, sku, part, n, t))), txn)
            if reply.affected == 1:
                inserted.append(detail_id)
                qty += n
    if qty:
        yield from _ok((yield DbExec(txn, "ledger_apply", (qty, qty, sku))), txn)
        yield from _ok((yield DbExec(txn, "part_apply", (qty, qty, part))), txn)
    yield from _ok((yield DbCommit(txn)), txn)
    return ApplyReport(tuple(inserted), len(records) - len(inserted), qty)


def read_ledger(sku: str) -> Generator[Any, Any, tuple[LedgerRow | None, int, int]]:
    """The product's ledger row (None if absent) and the detail table's (rows, total qty)."""
    row = (yield from _ok((yield DbExec(None, "ledger_select", (sku,))), None)).first
    count, total = (yield from _ok((yield DbExec(None, "detail_totals", (sku,))), None)).first
    ledger = None if row is None else LedgerRow(int(row[0]), int(row[1]), int(row[2]))
    return ledger, int(count), int(total)
