"""SQL for the lock-based strategies: ops (:mod:`.ops`), the statement registry
(:mod:`.registry`: real MariaDB text + Python twin + lock footprint per statement)
and the statements themselves (:mod:`.stock`). See :mod:`.registry` for how to
add a statement or a table.
"""

from __future__ import annotations

from . import stock  # noqa: F401  (registers the stock table and its statements)
from .ops import (
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
from .registry import (
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
