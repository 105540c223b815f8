"""The statement registry: every SQL statement the engine may run, twice.

Like :mod:`engine.scripts` for Redis, each named statement exists as

- ``sql``: the real, parameterised MariaDB/MySQL text the real driver runs.
  Table names are written as ``{table}`` placeholders (logical names) and
  filled in per run by :func:`render` (e.g. ``{stock}`` -> ```fs_ab12_stock```),
  so concurrent runs never share a table; parameters are ``%s`` placeholders
  (the paramstyle of pymysql, aiomysql and asyncmy), bound in order;
- ``twin``: its reference semantics in Python, ``twin(tables, params) ->
  SqlResult | DbError``, over an in-memory model where ``tables`` maps a logical
  table name to ``{primary key: {column: value}}``; the simulator applies it
  at the instant the statement runs (after it holds its row locks);
- ``locks``: its lock footprint, ``locks(params) -> ((table, key), ...)``: the
  rows it locks exclusively until commit (``SELECT ... FOR UPDATE``, ``UPDATE``,
  ``INSERT``). A plain ``SELECT`` is a consistent (MVCC) read and locks nothing;
- ``group_commit``: the statement may be committed in a group with others on
  the same row (a hot-row hint, see :mod:`engine.lockdb.statements`); autocommit only;
- ``ddl``: schema statements (``create_<table>``/``drop_<table>``, made by
  :func:`register_table`); their twins get the whole table model.

Adding a statement: in a module of this package (or your own, imported from
``engine/sql/__init__.py``), write the twin and call::

    register(Statement(
        name="apply_detail",
        sql="INSERT IGNORE INTO {detail} (detail_id, sku, qty) VALUES (%s, %s, %s)",
        twin=apply_detail_twin,                 # (tables, params) -> SqlResult
        locks=lock_rows("detail", 0),           # locks the row keyed by params[0]
    ))

and, for a new table, ``register_table(Table("detail", key="detail_id",
create_sql="CREATE TABLE {detail} (...)"))`` first: it also registers the
statements ``create_detail`` and ``drop_detail`` that setup and cleanup run,
and tells the ``db:`` read keys the table's primary-key column.
A differential test on a real MariaDB runs each statement and its twin.

Reading DB state from outside a transaction (inventory snapshots, invariants)
uses string keys ``db:<table>:<primary key>:<column>`` (:func:`db_key`), which
the simulated DB and the real driver both answer (:func:`read_sql` gives the
real query); a missing row or table reads as ``None``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from engine.sql.ops import EMPTY, TABLE_EXISTS, DbError, SqlResult

Tables = dict[str, MutableMapping[Any, dict[str, Any]]]
Twin = Callable[[Tables, tuple], "SqlResult | DbError"]
RowKey = tuple[str, Any]
Locks = Callable[[tuple], tuple[RowKey, ...]]


def no_locks(params: tuple) -> tuple[RowKey, ...]:
    return ()


def lock_rows(table: str, *indexes: int) -> Locks:
    """Footprint of a statement that locks ``table`` rows keyed by ``params[i]`` for each index."""
    def locks(params: tuple) -> tuple[RowKey, ...]:
        return tuple((table, params[i]) for i in indexes)
    locks.__qualname__ = f"lock_rows({table!r}, {', '.join(map(str, indexes))})"
    return locks


@dataclass(frozen=True)
class Statement:
    name: str
    sql: str
    twin: Twin
    locks: Locks = no_locks
    group_commit: bool = False
    ddl: bool = False  # CREATE/DROP: changes the schema, committed at once


@dataclass(frozen=True)
class Table:
    """A logical table: its primary-key column and its DDL (``{name}`` placeholder for itself)."""

    name: str
    key: str
    create_sql: str
    rows: Callable[[], MutableMapping[Any, dict[str, Any]]] = dict  # what holds its rows in the twins' model


STATEMENTS: dict[str, Statement] = {}
TABLES: dict[str, Table] = {}
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def register(statement: Statement) -> Statement:
    if statement.name in STATEMENTS:
        raise ValueError(f"statement {statement.name!r} registered twice")
    for table in _PLACEHOLDER.findall(statement.sql):
        if table not in TABLES:
            raise ValueError(f"statement {statement.name!r} uses unregistered table {{{table}}}")
    STATEMENTS[statement.name] = statement
    return statement


def register_table(table: Table) -> Table:
    """Register a table and its two DDL statements, ``create_<name>`` and ``drop_<name>``.

    ``create_<name>`` fails with ``TABLE_EXISTS`` when the table is there already
    (a run never adopts a table it did not create); ``drop_<name>`` is idempotent.
    """
    if table.name in TABLES:
        raise ValueError(f"table {table.name!r} registered twice")
    TABLES[table.name] = table
    name = table.name

    def create(tables: Tables, params: tuple) -> SqlResult | DbError:
        if name in tables:
            return DbError(TABLE_EXISTS, name)
        tables[name] = table.rows()
        return EMPTY

    def drop(tables: Tables, params: tuple) -> SqlResult:
        tables.pop(name, None)
        return EMPTY

    register(Statement(f"create_{name}", table.create_sql, create, ddl=True))
    register(Statement(f"drop_{name}", f"DROP TABLE IF EXISTS {{{name}}}", drop, ddl=True))
    return table


def get(name: str) -> Statement:
    try:
        return STATEMENTS[name]
    except KeyError:
        raise KeyError(f"unknown statement {name!r}; known: {sorted(STATEMENTS)}") from None


def physical_name(namespace: str, table: str) -> str:
    """The real table name of logical ``table`` in one run's ``namespace`` (letters, digits, _)."""
    safe = re.sub(r"[^0-9A-Za-z_]", "_", namespace)
    name = f"{safe}_{table}"
    if len(name) > 64:
        raise ValueError(f"table name {name!r} is longer than MySQL's 64 characters")
    return name


def render(sql: str, namespace: str) -> str:
    """Fill the ``{table}`` placeholders of ``sql`` with this run's quoted table names."""
    return _PLACEHOLDER.sub(lambda m: f"`{physical_name(namespace, m.group(1))}`", sql)


def db_key(table: str, key: Any, column: str) -> str:
    """The read key of one cell: ``db:<table>:<primary key>:<column>``."""
    return f"db:{table}:{key}:{column}"


def parse_db_key(read_key: str) -> tuple[str, str, str]:
    """``(table, primary key as text, column)`` of a ``db:`` read key."""
    prefix, table, rest = read_key.split(":", 2) if read_key.count(":") >= 3 else ("", "", "")
    key, _, column = rest.rpartition(":")
    if prefix != "db" or table not in TABLES or not key or not column.isidentifier():
        raise ValueError(f"not a db read key: {read_key!r} (expected db:<table>:<key>:<column>)")
    return table, key, column


def read_sql(read_key: str, namespace: str) -> tuple[str, tuple[Any, ...]]:
    """The real query answering a ``db:`` read key: ``(sql, params)``."""
    table, key, column = parse_db_key(read_key)
    return render(f"SELECT `{column}` FROM {{{table}}} WHERE `{TABLES[table].key}` = %s", namespace), (key,)


def read_twin(tables: Tables, read_key: str) -> Any:
    """The in-memory answer to a ``db:`` read key (``None`` for a missing table/row/column)."""
    table, key, column = parse_db_key(read_key)
    rows = tables.get(table)
    if rows is None:
        return None
    row = rows.get(key)
    if row is None and key.lstrip("-").isdigit():  # integer primary keys are stored as ints
        row = rows.get(int(key))
    return None if row is None else row.get(column)
