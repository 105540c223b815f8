"""SQL ops against a real MariaDB/MySQL, in a scratch database per run.

``DbBegin`` / ``DbExec`` / ``DbCommit`` / ``DbRollback`` (:mod:`engine.sql.ops`)
run through asyncmy on a per-process pool: the registered statement's real
text (:func:`engine.sql.render`: ``{table}`` -> this run's table names) with
its parameters. MySQL errors become the same :class:`~engine.sql.DbError`
values the simulator returns (1205 lock-wait timeout, 1213 deadlock, 1062
duplicate key, 1050 table exists, a lost connection); anything else is raised
inside the strategy's generator.

Safety: the first SQL op of a run (in setup) creates the database
``fsreal_<namespace>`` with a plain ``CREATE DATABASE``, which fails if it
exists, so a run never adopts a schema it did not make; cleanup drops exactly
that database, and only if this run created it. The server comes from
``FLASHSIM_DB_URL`` (``mysql://user@host:port``, default
``mysql://root@127.0.0.1:3306``) and the password from ``FLASHSIM_DB_PASSWORD``;
neither is printed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections import deque
from decimal import Decimal
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncmy

from engine import sql
from engine.real.drivers import DRIVERS, Context, Driver
from engine.real.interpreter import RealInterpreter, Task
from engine.real.target import TargetError
from engine.sql import DbBegin, DbCommit, DbError, DbExec, DbRollback, SqlResult
from engine.sql.ops import CONNECTION

ENV_URL = "FLASHSIM_DB_URL"
ENV_PASSWORD = "FLASHSIM_DB_PASSWORD"
DEFAULT_URL = "mysql://root@127.0.0.1:3306"
MAX_POOL_PER_PROCESS = 32  # MariaDB's default max_connections is 151, shared by every worker
ERRNO = {1205: sql.LOCK_WAIT_TIMEOUT, 1213: sql.DEADLOCK, 1062: sql.DUPLICATE_KEY, 1050: sql.TABLE_EXISTS,
         2006: CONNECTION, 2013: CONNECTION}


# asyncmy logs every warning MariaDB raises as a WARNING on the "asyncmy" logger; with no handler
# configured, Python's last-resort handler prints them on stderr. The pipeline's INSERT IGNORE
# raises one per duplicate detail record ("Duplicate entry ... for key 'PRIMARY'"), which the
# pipeline counts itself (sync_duplicates_suppressed): the driver's own log stays off the terminal.
_DRIVER_LOG = logging.getLogger("asyncmy")
_DRIVER_LOG.addHandler(logging.NullHandler())
_DRIVER_LOG.propagate = False


def database_name(namespace: str) -> str:
    """The scratch database of the run in ``namespace``."""
    safe = re.sub(r"[^0-9A-Za-z_]", "_", namespace)[:50]
    return safe if safe.startswith("fsreal_") else f"fsreal_{safe}"


def server(context: Context) -> dict[str, Any]:
    """asyncmy connection arguments (no database) from the options or env."""
    url = context.options.get("db_url") or os.environ.get(ENV_URL) or DEFAULT_URL
    parts = urlsplit(url)
    if parts.scheme not in ("mysql", "mariadb"):
        raise TargetError(f"database URL must start with mysql:// (got scheme {parts.scheme!r})")
    password = context.options.get("db_password") or os.environ.get(ENV_PASSWORD) or unquote(parts.password or "")
    return {"host": parts.hostname or "127.0.0.1", "port": parts.port or 3306,
            "user": unquote(parts.username or "root"), "password": password}


class _Txn:
    """A held connection: a transaction, or an autocommit session."""

    __slots__ = ("conn", "session", "owner")

    def __init__(self, conn: Any, session: bool, owner: Task):
        self.conn = conn
        self.session = session
        self.owner = owner


class _Pool:
    """The app's connection pool: at most ``size`` connections, FIFO waiters with a timeout.

    A waiter whose buyer has already given up is skipped when a connection
    frees (the app drops the request, as in the simulator).
    """

    def __init__(self, size: int, connect: Any):
        self.size = size
        self.connect = connect
        self.opened = 0
        self.free: list[Any] = []
        self.waiters: deque[tuple[asyncio.Future[Any], float]] = deque()
        self.all: list[Any] = []

    async def acquire(self, timeout: float, deadline: float) -> Any:
        if self.free:
            return self.free.pop()
        if self.opened < self.size:
            self.opened += 1
            try:
                conn = await self.connect()
            except BaseException:
                self.opened -= 1
                raise
            self.all.append(conn)
            return conn
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Any] = loop.create_future()
        self.waiters.append((waiter, deadline))
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except TimeoutError:
            if waiter.done():  # handed over just as the timer fired: keep it
                return waiter.result()
            waiter.cancel()
            return DbError(sql.POOL_TIMEOUT)

    def release(self, conn: Any) -> None:
        now = asyncio.get_running_loop().time()
        while self.waiters:
            waiter, deadline = self.waiters.popleft()
            if waiter.done():
                continue
            if now > deadline:  # the buyer left: nobody will use this connection
                waiter.set_result(DbError(sql.POOL_TIMEOUT))
                continue
            waiter.set_result(conn)
            return
        self.free.append(conn)

    def discard(self, conn: Any) -> None:
        """A broken connection leaves the pool (a new one may be opened in its place)."""
        conn.close()
        if conn in self.all:
            self.all.remove(conn)
        self.opened -= 1

    async def close(self) -> None:
        for conn in self.all:
            conn.close()
        self.all, self.free = [], []


class SqlDriver(Driver):
    name = "sql"
    read_prefix = "db:"

    def __init__(self, context: Context):
        super().__init__(context)
        self.pool: _Pool | None = None
        self._opening: asyncio.Lock | None = None
        self.interpreter: RealInterpreter | None = None
        self.held: dict[Task, list[_Txn]] = {}  # open transactions by task, released if the task is dropped
        self.counts = dict.fromkeys(("statements", "commits", "rollbacks", "lock_timeouts", "deadlocks",
                                     "pool_timeouts", "abandoned"), 0)

    def figures(self) -> dict[str, float]:
        """The server's side, named as the simulated DB names it (empty when no SQL ran)."""
        if not self.counts["statements"]:
            return {}
        return {f"db_{key}": float(value) for key, value in self.counts.items()}

    def _count(self, reply: Any) -> Any:
        if isinstance(reply, DbError):
            key = {sql.LOCK_WAIT_TIMEOUT: "lock_timeouts", sql.DEADLOCK: "deadlocks",
                   sql.POOL_TIMEOUT: "pool_timeouts"}.get(reply.code)
            if key:
                self.counts[key] += 1
        return reply

    async def open(self, interpreter: RealInterpreter) -> None:
        self.interpreter = interpreter
        self._opening = asyncio.Lock()
        for op, run in ((DbBegin, self._begin), (DbExec, self._exec), (DbCommit, self._commit),
                        (DbRollback, self._rollback)):
            interpreter.handlers[op] = self._handler(run)
        interpreter.abandon_hooks.append(self._abandoned)

    def _abandoned(self, task: Task) -> None:
        """The buyer gave up while holding transactions: the app rolls them back."""
        for txn in self.held.pop(task, ()):
            self.counts["abandoned"] += 1
            asyncio.get_running_loop().create_task(self._rollback(DbRollback(txn)))

    def _handler(self, run: Any) -> Any:
        def handle(task: Task, op: Any) -> None:
            asyncio.get_running_loop().create_task(self._answer(task, run(op, task)))
        return handle

    async def _answer(self, task: Task, work: Any) -> None:
        assert self.interpreter is not None
        try:
            reply = await work
        except Exception as err:  # not a DbError case: raise it in the strategy
            self.interpreter.fail(task, err)
            return
        self.interpreter.wake(task, reply)

    async def _pool(self) -> _Pool:
        if self.pool is None:
            assert self._opening is not None
            async with self._opening:
                if self.pool is None:
                    self.pool = await _open_pool(self.context)
        return self.pool

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()

    # ------------------------------------------------------------ ops
    async def _acquire(self, task: Task) -> Any:
        pool = await self._pool()
        scenario = self.context.scenario
        timeout = scenario.db.acquire_timeout if scenario is not None else 30.0
        return await pool.acquire(timeout, task.deadline)

    def _give_back(self, txn: _Txn, broken: bool = False) -> None:
        held = self.held.get(txn.owner)
        if held is not None and txn in held:
            held.remove(txn)
            if not held:
                del self.held[txn.owner]
        assert self.pool is not None
        if broken:
            self.pool.discard(txn.conn)
        else:
            self.pool.release(txn.conn)

    async def _begin(self, op: DbBegin, task: Task) -> Any:
        conn = await self._acquire(task)
        if isinstance(conn, DbError):
            return self._count(conn)
        txn = _Txn(conn, op.autocommit, task)
        self.held.setdefault(task, []).append(txn)
        if not op.autocommit:
            try:
                await conn.begin()
            except asyncmy.errors.MySQLError as err:
                self._give_back(txn, broken=True)
                return _db_error(err)
        if task.finished:  # dropped while we waited: nobody will end this transaction
            self._abandoned(task)
        return txn

    async def _exec(self, op: DbExec, task: Task) -> Any:
        if op.txn is not None:
            self.counts["statements"] += 1
            return self._count(await _execute(op.txn.conn, op, self.context.namespace))
        conn = await self._acquire(task)
        if isinstance(conn, DbError):
            return self._count(conn)
        txn = _Txn(conn, True, task)
        self.counts["statements"] += 1
        try:
            return self._count(await _execute(conn, op, self.context.namespace))
        finally:
            self._give_back(txn)

    async def _commit(self, op: DbCommit, task: Task | None = None) -> Any:
        txn: _Txn = op.txn
        try:
            if not txn.session:
                await txn.conn.commit()
                self.counts["commits"] += 1
            return None
        except asyncmy.errors.MySQLError as err:
            try:
                await txn.conn.rollback()
            except asyncmy.errors.MySQLError:
                pass
            return self._count(_db_error(err))
        finally:
            self._give_back(txn)

    async def _rollback(self, op: DbRollback, task: Task | None = None) -> None:
        txn: _Txn = op.txn
        broken = False
        try:
            if not txn.session:
                await txn.conn.rollback()
                self.counts["rollbacks"] += 1
        except asyncmy.errors.MySQLError:
            broken = True  # a broken connection rolls back by itself; it leaves the pool
        finally:
            self._give_back(txn, broken)

    # ------------------------------------------------------------ life cycle
    @classmethod
    async def read(cls, context: Context, keys: list[str]) -> dict[str, Any]:
        """Answer ``db:<table>:<key>:<column>`` reads (absent table/row: missing)."""
        if not context.options.get("db_created"):
            return {}
        conn = await asyncmy.connect(**server(context), db=database_name(context.namespace), autocommit=True)
        values: dict[str, Any] = {}
        try:
            async with conn.cursor() as cur:
                for key in keys:
                    text, params = sql.read_sql(key, context.namespace)
                    try:
                        await cur.execute(text, params)
                    except asyncmy.errors.ProgrammingError:  # the table does not exist (yet)
                        continue
                    row = await cur.fetchone()
                    if row is not None and row[0] is not None:
                        values[key] = _plain(row[0])
        finally:
            conn.close()
        return values

    @classmethod
    async def cleanup(cls, context: Context) -> None:
        if not context.options.get("db_created"):
            return
        conn = await asyncmy.connect(**server(context), autocommit=True)
        try:
            async with conn.cursor() as cur:
                await cur.execute(f"DROP DATABASE IF EXISTS `{database_name(context.namespace)}`")
        finally:
            conn.close()
        context.options["db_created"] = False


async def _open_pool(context: Context) -> Any:
    """Create the scratch database (coordinator: first SQL op of setup), then a pool on it."""
    args = server(context)
    name = database_name(context.namespace)
    try:
        if context.worker < 0 and not context.options.get("db_created"):
            conn = await asyncmy.connect(**args, autocommit=True)
            try:
                async with conn.cursor() as cur:
                    await cur.execute(f"CREATE DATABASE `{name}`")
            except asyncmy.errors.MySQLError as err:
                if err.args and err.args[0] == 1007:
                    raise TargetError(f"database {name!r} already exists; refusing to use it") from None
                raise
            finally:
                conn.close()
            context.options["db_created"] = True
        scenario = context.scenario
        size = min(MAX_POOL_PER_PROCESS, scenario.db.pool_size if scenario is not None else 8)

        async def connect() -> Any:
            return await asyncmy.connect(db=name, autocommit=True, **args)

        probe = await connect()  # fail now, with a clear message, if the database is unusable
        pool = _Pool(max(1, size), connect)
        pool.opened, pool.free, pool.all = 1, [probe], [probe]
        return pool
    except (OSError, asyncmy.errors.MySQLError) as err:
        where = f"{args['host']}:{args['port']}"
        raise TargetError(f"cannot use MariaDB/MySQL at {where}: {err.__class__.__name__}: {err}") from None


async def _execute(conn: Any, op: DbExec, namespace: str) -> SqlResult | DbError:
    statement = sql.get(op.statement)
    try:
        async with conn.cursor() as cur:
            await cur.execute(sql.render(statement.sql, namespace), op.params)
            if cur.description:
                rows = tuple(tuple(_plain(v) for v in row) for row in await cur.fetchall())
                return SqlResult(rows, 0)
            return SqlResult((), cur.rowcount)
    except asyncmy.errors.MySQLError as err:
        if not err.args or err.args[0] not in ERRNO:
            raise
        return _db_error(err)


def _db_error(err: Exception) -> DbError:
    code = ERRNO.get(err.args[0], CONNECTION) if err.args else CONNECTION
    return DbError(code, str(err.args[1] if len(err.args) > 1 else err))


def _plain(value: Any) -> Any:
    """Decimal sums become ints (as the twins return them)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


DRIVERS.append(SqlDriver)
