"""The statement registry: real SQL text, twins, lock footprints, read keys."""

import pytest

from engine import sql
from engine.sql import DbError, SqlResult


def fresh():
    tables = {}
    assert sql.get("create_stock").twin(tables, ()) == SqlResult()
    assert sql.get("insert_stock").twin(tables, ("sku42", 10)) == SqlResult(affected=1)
    return tables


def test_every_statement_has_real_parameterised_sql():
    for name, statement in sql.STATEMENTS.items():
        rendered = sql.render(statement.sql, "fstest-x1")
        assert "{" not in rendered and "}" not in rendered, name
        assert "`fstest_x1_" in rendered, name
        assert "?" not in rendered  # %s paramstyle (pymysql, aiomysql, asyncmy)


def test_render_and_physical_names():
    assert sql.physical_name("fs-run:1", "stock") == "fs_run_1_stock"
    assert sql.render("SELECT 1 FROM {stock}", "ns") == "SELECT 1 FROM `ns_stock`"
    with pytest.raises(ValueError, match="64"):
        sql.physical_name("n" * 70, "stock")


def test_lock_footprints():
    assert sql.get("select_stock").locks(("a",)) == ()
    assert sql.get("select_stock_for_update").locks(("a",)) == (("stock", "a"),)
    assert sql.get("deduct_if_enough").locks((1, 1, "a", 1)) == (("stock", "a"),)
    assert sql.get("deduct_hot").group_commit and not sql.get("deduct_if_enough").group_commit


def test_twins():
    tables = fresh()
    assert sql.get("select_stock").twin(tables, ("sku42",)) == SqlResult(((10, 0),))
    assert sql.get("select_stock").twin(tables, ("nope",)) == SqlResult()
    assert sql.get("deduct_stock").twin(tables, (3, 3, "sku42")).affected == 1
    assert sql.get("deduct_if_enough").twin(tables, (8, 8, "sku42", 8)).affected == 0  # 7 left
    assert sql.get("deduct_if_version").twin(tables, (1, 1, "sku42", 0, 1)).affected == 0  # stale version
    assert sql.get("deduct_if_version").twin(tables, (1, 1, "sku42", 1, 1)).affected == 1
    assert tables["stock"]["sku42"] == {"sku": "sku42", "stock": 6, "sold": 4, "version": 2}
    assert sql.get("insert_stock").twin(tables, ("sku42", 1)) == DbError(sql.DUPLICATE_KEY)
    assert sql.get("create_stock").twin(tables, ()) == DbError(sql.TABLE_EXISTS)
    sql.get("drop_stock").twin(tables, ())
    assert tables == {}


def test_read_keys():
    tables = fresh()
    key = sql.db_key("stock", "sku42", "stock")
    assert key == "db:stock:sku42:stock"
    assert sql.read_twin(tables, key) == 10
    assert sql.read_twin(tables, "db:stock:other:stock") is None
    assert sql.read_twin({}, key) is None
    assert sql.read_sql(key, "ns") == ("SELECT `stock` FROM `ns_stock` WHERE `sku` = %s", ("sku42",))
    for bad in ("stock:sku42:stock", "db:nosuch:a:b", "db:stock:a:no-ident"):
        with pytest.raises(ValueError, match="db read key"):
            sql.parse_db_key(bad)


def test_registry_rejects_duplicates_and_unknown_tables():
    with pytest.raises(ValueError, match="twice"):
        sql.register(sql.get("select_stock"))
    with pytest.raises(ValueError, match="unregistered table"):
        sql.register(sql.Statement("bad", "SELECT * FROM {nosuch}", lambda t, p: SqlResult()))
    with pytest.raises(KeyError, match="unknown statement"):
        sql.get("nosuch")


def test_db_error_codes_are_checked():
    with pytest.raises(ValueError, match="unknown DbError code"):
        DbError("oops")
    assert DbError(sql.DEADLOCK, "a") == DbError(sql.DEADLOCK, "b")
