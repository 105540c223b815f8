"""SQL operations a strategy yields, and the replies it gets back.

Four ops cover every lock-based strategy:

- ``txn = yield DbBegin()`` takes a connection from the app's pool and starts a
  transaction; the reply is an opaque transaction handle, or a :class:`DbError`
  (``POOL_TIMEOUT`` when no connection came free within the acquire timeout);
- ``result = yield DbExec(txn, "statement_name", params)`` runs one registered
  statement (:mod:`engine.sql.registry`) inside ``txn``; with ``txn=None`` it
  runs in autocommit on a connection borrowed from the pool for just that
  statement. The reply is a :class:`SqlResult` or a :class:`DbError`;
- ``yield DbCommit(txn)`` / ``yield DbRollback(txn)`` end the transaction and
  give its connection back. ``DbCommit`` replies ``None`` or a :class:`DbError`
  (after which the transaction is rolled back and the connection returned:
  no further op is needed); ``DbRollback`` always succeeds (``None``).

Errors are *values*, never exceptions, so a strategy tests them like any reply
(``if isinstance(reply, DbError)``) and both interpreters deliver them the same
way. After an error inside a transaction the strategy must still end it with
``DbRollback`` (MySQL keeps the transaction open after a lock-wait timeout; the
handle must be released either way). An error of an autocommit ``DbExec`` or
of ``DbBegin`` leaves nothing to end.

Never ``Sleep`` while holding a transaction or session: a buyer whose deadline
passes during the sleep is dropped by the interpreter, and nothing would give
the connection back. Give it back first, then sleep, then begin again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# DbError codes, with the MySQL error they stand for.
LOCK_WAIT_TIMEOUT = "lock_wait_timeout"  # ER_LOCK_WAIT_TIMEOUT (1205): innodb_lock_wait_timeout expired
DEADLOCK = "deadlock"  # ER_LOCK_DEADLOCK (1213): chosen as deadlock victim, transaction rolled back
POOL_TIMEOUT = "pool_timeout"  # app side: no pooled connection within the acquire timeout
DUPLICATE_KEY = "duplicate_key"  # ER_DUP_ENTRY (1062)
TABLE_EXISTS = "table_exists"  # ER_TABLE_EXISTS_ERROR (1050): another run owns this namespace
CONNECTION = "connection"  # the connection broke (real mode only)
ERROR_CODES = (LOCK_WAIT_TIMEOUT, DEADLOCK, POOL_TIMEOUT, DUPLICATE_KEY, TABLE_EXISTS, CONNECTION)


@dataclass(frozen=True, slots=True)
class DbBegin:
    """Take a pooled connection and start a transaction (reply: handle or DbError).

    ``autocommit=True`` opens a *session* instead: the connection is held, but
    each statement on it commits on its own (no BEGIN is sent); ``DbCommit`` or
    ``DbRollback`` of a session only gives the connection back. Use it to run
    several autocommit statements without queueing for the pool between them.
    """

    autocommit: bool = False


@dataclass(frozen=True, slots=True)
class DbExec:
    """Run registered statement ``statement`` with ``params`` (``%s`` placeholders, in order).

    ``txn`` is a handle from :class:`DbBegin`, or ``None`` for autocommit.
    """

    txn: Any
    statement: str
    params: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class DbCommit:
    """Commit ``txn`` and return its connection to the pool (reply: None or DbError)."""

    txn: Any


@dataclass(frozen=True, slots=True)
class DbRollback:
    """Roll ``txn`` back and return its connection to the pool (reply: None)."""

    txn: Any


@dataclass(frozen=True, slots=True)
class SqlResult:
    """What a statement returned: result rows (tuples, in SELECT column order) and affected rows.

    ``affected`` follows MySQL with ``CLIENT_FOUND_ROWS`` off: rows actually
    changed by UPDATE, rows inserted by INSERT (0 for an ignored duplicate).
    """

    rows: tuple[tuple[Any, ...], ...] = ()
    affected: int = 0

    @property
    def first(self) -> tuple[Any, ...] | None:
        return self.rows[0] if self.rows else None


@dataclass(frozen=True, slots=True)
class DbError:
    """A failed DB op; ``code`` is one of :data:`ERROR_CODES`."""

    code: str
    detail: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.code not in ERROR_CODES:
            raise ValueError(f"unknown DbError code {self.code!r}; known: {', '.join(ERROR_CODES)}")


DB_BEGIN = DbBegin()
DB_SESSION = DbBegin(autocommit=True)
EMPTY = SqlResult()
