"""SQL ops (:mod:`.ops`) and the statement registry (:mod:`.registry`: real
MariaDB text + Python twin + lock footprint per statement). The statements live
with their families (:mod:`engine.lockdb.statements`, :mod:`engine.pipeline.ledger`). See :mod:`.registry` for how to
add a statement or a table.
"""

from __future__ import annotations

from engine.sql.ops import (
    DB_BEGIN,
    DB_SESSION,
    DEADLOCK,
    DUPLICATE_KEY,
    ERROR_CODES,
    LOCK_WAIT_TIMEOUT,
    POOL_TIMEOUT,
    TABLE_EXISTS,
    DbBegin,
    DbCommit,
    DbError,
    DbExec,
    DbRollback,
    SqlResult,
)
from engine.sql.registry import (
    STATEMENTS,
    TABLES,
    Statement,
    Table,
    Tables,
    db_key,
    get,
    lock_rows,
    parse_db_key,
    physical_name,
    read_sql,
    read_twin,
    register,
    register_table,
    render,
)

__all__ = [
    "DB_BEGIN", "DB_SESSION", "DEADLOCK", "DUPLICATE_KEY", "ERROR_CODES", "LOCK_WAIT_TIMEOUT", "POOL_TIMEOUT", "STATEMENTS",
    "TABLES", "TABLE_EXISTS", "DbBegin", "DbCommit", "DbError", "DbExec", "DbRollback", "SqlResult", "Statement",
    "Table", "Tables", "db_key", "get", "lock_rows", "parse_db_key", "physical_name", "read_sql", "read_twin",
    "register", "register_table", "render",
]
