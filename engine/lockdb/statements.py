"""The stock table and the statements of the lock-based strategies.

One row per SKU: ``stock`` (units left), ``sold`` (units deducted) and
``version`` (bumped by every deduction, for optimistic concurrency control).
Invariant: ``stock + sold`` is the initial stock, and ``stock >= 0``.
"""

from __future__ import annotations

from engine.sql.ops import DUPLICATE_KEY, EMPTY, DbError, SqlResult
from engine.sql.registry import Statement, Table, Tables, lock_rows, register, register_table

STOCK = register_table(Table(
    "stock",
    key="sku",
    create_sql=(
        "CREATE TABLE {stock} ("
        "sku VARCHAR(64) NOT NULL PRIMARY KEY, "
        "stock BIGINT NOT NULL, "
        "sold BIGINT NOT NULL DEFAULT 0, "
        "version BIGINT NOT NULL DEFAULT 0"
        ") ENGINE=InnoDB"
    ),
))


def insert_stock(tables: Tables, params: tuple) -> SqlResult | DbError:
    sku, stock = params
    rows = tables["stock"]
    if sku in rows:
        return DbError(DUPLICATE_KEY, f"stock row {sku!r}")
    rows[sku] = {"sku": sku, "stock": int(stock), "sold": 0, "version": 0}
    return SqlResult(affected=1)


def select_stock(tables: Tables, params: tuple) -> SqlResult:
    row = tables["stock"].get(params[0])
    return EMPTY if row is None else SqlResult(((row["stock"], row["version"]),))


def _take(row: dict, params: tuple) -> int:
    """``SET stock = stock - %s, sold = sold + %s, version = version + 1``: changed rows."""
    row["stock"] -= params[0]
    row["sold"] += params[1]
    row["version"] += 1  # so the row always changes (and counts as changed), even for qty 0
    return 1


def deduct_stock(tables: Tables, params: tuple) -> SqlResult:
    row = tables["stock"].get(params[2])
    return EMPTY if row is None else SqlResult(affected=_take(row, params))


def deduct_if_enough(tables: Tables, params: tuple) -> SqlResult:
    row = tables["stock"].get(params[2])
    if row is None or row["stock"] < params[3]:
        return EMPTY
    return SqlResult(affected=_take(row, params))


def deduct_if_version(tables: Tables, params: tuple) -> SqlResult:
    row = tables["stock"].get(params[2])
    if row is None or row["version"] != params[3] or row["stock"] < params[4]:
        return EMPTY
    return SqlResult(affected=_take(row, params))


# Every deduction binds qty twice (stock - %s, sold + %s): params are exactly the SQL's, in order.
_DEDUCT = "UPDATE {stock} SET stock = stock - %s, sold = sold + %s, version = version + 1 WHERE sku = %s"

register(Statement(
    "insert_stock",
    "INSERT INTO {stock} (sku, stock, sold, version) VALUES (%s, %s, 0, 0)",
    insert_stock, lock_rows("stock", 0),
))
# A consistent (MVCC) read: no lock, never waits. Returns (stock, version).
register(Statement("select_stock", "SELECT stock, version FROM {stock} WHERE sku = %s", select_stock))
# The pessimistic read: takes the row's exclusive lock until commit.
register(Statement(
    "select_stock_for_update", "SELECT stock, version FROM {stock} WHERE sku = %s FOR UPDATE",
    select_stock, lock_rows("stock", 0),
))
# params (qty, qty, sku)
register(Statement("deduct_stock", _DEDUCT, deduct_stock, lock_rows("stock", 2)))
# params (qty, qty, sku, qty): the conditional update, safe on its own in autocommit
register(Statement("deduct_if_enough", _DEDUCT + " AND stock >= %s", deduct_if_enough, lock_rows("stock", 2)))
# params (qty, qty, sku, version, qty): optimistic compare-and-set on the version
register(Statement(
    "deduct_if_version", _DEDUCT + " AND version = %s AND stock >= %s", deduct_if_version, lock_rows("stock", 2),
))
# Hot-row group commit (AliSQL's inventory hint COMMIT_ON_SUCCESS ROLLBACK_ON_FAIL TARGET_AFFECT_ROW 1,
# PolarDB's hot-row optimisation): the server queues these updates on the row and applies and
# commits them in groups, one lock hand-off and one log flush per group. MariaDB has no such hint,
# so the real text is the plain conditional update (same semantics, no grouping); the simulator
# models the grouping. params (qty, qty, sku, qty).
register(Statement(
    "deduct_hot", _DEDUCT + " AND stock >= %s", deduct_if_enough, lock_rows("stock", 2), group_commit=True,
))
