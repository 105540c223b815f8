"""Every registered stock statement against its twin on the real MariaDB at 127.0.0.1:3306.

Runs in a scratch database this test creates and drops. Random sequences of
statements go to MariaDB (in autocommit) and to the in-memory twin model; each
reply (rows, affected rows, error) and the final rows must agree. The issue-6
real driver runs the same SQL text; this checks only the text/twin pair.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine import sql
from engine.sql import DbError, SqlResult

pytestmark = pytest.mark.real

NAMESPACE = "fsdbtest"
ERRORS = {1062: sql.DUPLICATE_KEY, 1050: sql.TABLE_EXISTS}


@pytest.fixture
def cursor(mariadb_cursor):
    return mariadb_cursor


def real(cur, name, params):
    import pymysql

    try:
        cur.execute(sql.render(sql.get(name).sql, NAMESPACE), params)
    except pymysql.MySQLError as err:
        return DbError(ERRORS[err.args[0]])
    rows = tuple(tuple(int(v) for v in row) for row in cur.fetchall()) if cur.description else ()
    return SqlResult(rows, 0 if cur.description else cur.rowcount)


def random_statement(rng, skus):
    sku = str(rng.choice(skus))
    qty = int(rng.integers(0, 4)) if rng.random() < 0.9 else int(rng.integers(50, 200))
    name = str(rng.choice(["select_stock", "select_stock_for_update", "deduct_stock", "deduct_if_enough",
                           "deduct_if_version", "deduct_hot", "insert_stock"]))
    if name in ("select_stock", "select_stock_for_update"):
        return name, (sku,)
    if name == "insert_stock":
        return name, (sku, int(rng.integers(0, 100)))
    if name == "deduct_if_version":
        return name, (qty, qty, sku, int(rng.integers(0, 6)), qty)
    if name == "deduct_stock":
        return name, (qty, qty, sku)
    return name, (qty, qty, sku, qty)


@pytest.mark.parametrize("seed", range(4))
def test_statements_agree_with_their_twins(cursor, seed):
    rng = np.random.default_rng(seed)
    tables: dict = {}
    assert real(cursor, "create_stock", ()) == sql.get("create_stock").twin(tables, ())
    assert real(cursor, "create_stock", ()) == sql.get("create_stock").twin(tables, ()) == DbError(sql.TABLE_EXISTS)
    try:
        for sku, stock in (("a", 40), ("b", 3)):
            assert real(cursor, "insert_stock", (sku, stock)) == sql.get("insert_stock").twin(tables, (sku, stock))
        for _ in range(150):
            name, params = random_statement(rng, ["a", "b", "zz"])
            expected = sql.get(name).twin(tables, params)
            assert real(cursor, name, params) == expected, (name, params)
        for sku in ("a", "b", "zz"):
            for column in ("stock", "sold", "version"):
                key = sql.db_key("stock", sku, column)
                query, params = sql.read_sql(key, NAMESPACE)
                cursor.execute(query, params)
                row = cursor.fetchone()
                assert (None if row is None else int(row[0])) == sql.read_twin(tables, key), key
    finally:
        assert real(cursor, "drop_stock", ()) == sql.get("drop_stock").twin(tables, ())
    assert tables == {}
