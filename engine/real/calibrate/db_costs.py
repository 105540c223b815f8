"""What MariaDB/MySQL spends per statement and per commit, and a hot row's TPS by concurrency.

All in a scratch database ``fscal_<hex>`` created with a plain ``CREATE
DATABASE`` (fails if it exists) and dropped afterwards, on the stock table
and statements the lock-based strategies use (:mod:`engine.lockdb.statements`).

- **commit path** (:func:`settings`): the server variables that decide what a
  commit waits for: ``log_bin``, ``sync_binlog``,
  ``innodb_flush_log_at_trx_commit`` (and version, deadlock detection, lock
  wait timeout, thread handling).
- **round trip** and **statement costs** (:func:`statement_costs`): one
  connection, no contention; each step's median client time minus the median
  ``COM_PING`` round trip is the server's time for it (BEGIN, the reads, the
  UPDATE, COMMIT, ROLLBACK).
- **hot row** (:func:`hot_row`): ``C`` connections each repeating the
  autocommit conditional ``UPDATE ... WHERE sku = ? AND stock >= 1`` on one row
  for a fixed time; commits per second. :func:`slap` runs the same statement
  with ``mariadb-slap`` (an independent client) when it is installed.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncmy

from engine import sql
from engine.lockdb.statements import STOCK
from engine.real.target import TargetError

SKU = "hot"
VARIABLES = ("version", "log_bin", "sync_binlog", "innodb_flush_log_at_trx_commit", "innodb_deadlock_detect",
             "innodb_lock_wait_timeout", "thread_handling", "max_connections", "binlog_commit_wait_count")


class Scratch:
    """A scratch database holding one stock row, created on entry and dropped on exit."""

    def __init__(self, server: dict[str, Any]):
        self.server = server
        self.namespace = f"fscal_{uuid.uuid4().hex[:10]}"
        self.created = False

    def table_sql(self, statement: str) -> str:
        return sql.render(sql.get(statement).sql, self.namespace)

    async def connect(self, database: bool = True) -> Any:
        try:
            return await asyncmy.connect(**self.server, autocommit=True,
                                         **({"db": self.namespace} if database else {}))
        except (OSError, asyncmy.errors.MySQLError) as err:
            where = f"{self.server['host']}:{self.server['port']}"
            raise TargetError(f"cannot use MariaDB/MySQL at {where}: {err.__class__.__name__}: {err}") from None

    async def __aenter__(self) -> Scratch:
        conn = await self.connect(database=False)
        try:
            async with conn.cursor() as cur:
                await cur.execute(f"CREATE DATABASE `{self.namespace}`")
                self.created = True
                await cur.execute(f"USE `{self.namespace}`")
                await cur.execute(sql.render(STOCK.create_sql, self.namespace))
                await cur.execute(self.table_sql("insert_stock"), (SKU, 10**15))
        finally:
            conn.close()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self.created:
            conn = await self.connect(database=False)
            try:
                async with conn.cursor() as cur:
                    await cur.execute(f"DROP DATABASE `{self.namespace}`")
            finally:
                conn.close()


async def settings(server: dict[str, Any]) -> dict[str, Any]:
    """The commit path and friends, as the server reports them (a missing variable is left out)."""
    conn = await Scratch(server).connect(database=False)
    out: dict[str, Any] = {}
    try:
        async with conn.cursor() as cur:
            for name in VARIABLES:
                try:
                    await cur.execute(f"SELECT @@{name}")
                    value = (await cur.fetchone())[0]
                except asyncmy.errors.MySQLError:
                    continue
                out[name] = int(value) if isinstance(value, int) else str(value)
    finally:
        conn.close()
    return out


async def _median_time(step: Callable[[], Awaitable[Any]], count: int) -> float:
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        await step()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


async def statement_costs(scratch: Scratch, count: int) -> dict[str, float]:
    """Median client time of each step (seconds); ``ping`` is the bare round trip."""
    conn = await scratch.connect()
    select = scratch.table_sql("select_stock")
    for_update = scratch.table_sql("select_stock_for_update")
    deduct = scratch.table_sql("deduct_stock")
    conditional = scratch.table_sql("deduct_if_enough")
    out: dict[str, float] = {}
    try:
        async with conn.cursor() as cur:
            async def run(text: str, params: tuple = ()) -> None:
                await cur.execute(text, params)
                if cur.description:
                    await cur.fetchall()

            out["ping"] = await _median_time(conn.ping, count)
            out["select_1"] = await _median_time(lambda: run("SELECT 1"), count)
            out["select_stock"] = await _median_time(lambda: run(select, (SKU,)), count)
            out["autocommit_update"] = await _median_time(lambda: run(conditional, (1, 1, SKU, 1)), count)
            steps: dict[str, list[float]] = {k: [] for k in ("begin", "select_stock_for_update", "deduct_stock",
                                                               "commit", "rollback")}
            for i in range(count):
                for name, text, params in (("begin", "BEGIN", ()), ("select_stock_for_update", for_update, (SKU,)),
                                           ("deduct_stock", deduct, (1, 1, SKU)),
                                           ("rollback" if i % 2 else "commit", "ROLLBACK" if i % 2 else "COMMIT", ())):
                    start = time.perf_counter()
                    await run(text, params)
                    steps[name].append(time.perf_counter() - start)
            out.update({name: statistics.median(values) for name, values in steps.items()})
    finally:
        conn.close()
    return out


async def hot_row(scratch: Scratch, connections: int, seconds: float) -> dict[str, Any]:
    """Autocommit conditional UPDATEs of one row from ``connections`` connections for ``seconds``."""
    text = scratch.table_sql("deduct_if_enough")
    conns = []
    try:
        for _ in range(connections):
            conns.append(await scratch.connect())
    except TargetError as err:
        for conn in conns:
            conn.close()
        return {"connections": connections, "error": str(err)}
    done = [0] * connections
    errors = [0] * connections
    stop_at = 0.0

    async def worker(k: int) -> None:
        async with conns[k].cursor() as cur:
            while time.perf_counter() < stop_at:
                try:
                    await cur.execute(text, (1, 1, SKU, 1))
                    done[k] += 1
                except asyncmy.errors.MySQLError:
                    errors[k] += 1

    try:
        stop_at = time.perf_counter() + seconds
        start = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(connections)))
        elapsed = time.perf_counter() - start
    finally:
        for conn in conns:
            conn.close()
    return {"connections": connections, "seconds": elapsed, "commits": sum(done), "errors": sum(errors),
            "tps": sum(done) / elapsed}


def slap(server: dict[str, Any], scratch: Scratch, connections: int, queries: int) -> dict[str, Any] | None:
    """The same hot-row UPDATE by ``mariadb-slap`` (None when it is not installed)."""
    binary = shutil.which("mariadb-slap") or shutil.which("mysqlslap")
    if binary is None:
        return None
    query = scratch.table_sql("deduct_if_enough") % (1, 1, f"'{SKU}'", 1)
    args = [binary, f"--host={server['host']}", f"--port={server['port']}", f"--user={server['user']}",
            f"--create-schema={scratch.namespace}", "--no-drop", f"--concurrency={connections}", "--iterations=1",
            f"--number-of-queries={queries}", f"--query={query}", "--delimiter=;"]
    env = {"MYSQL_PWD": server["password"]} if server.get("password") else None
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)
    except subprocess.TimeoutExpired:
        return {"connections": connections, "error": "mariadb-slap timed out"}
    seconds = _slap_seconds(done.stdout)
    if done.returncode != 0 or seconds is None:
        return {"connections": connections, "error": (done.stderr or done.stdout).strip()[:200]}
    return {"connections": connections, "queries": queries, "seconds": seconds, "tps": queries / seconds}


def _slap_seconds(output: str) -> float | None:
    """'Average number of seconds to run all queries: 1.234 seconds' -> 1.234."""
    for line in output.splitlines():
        if "Average number of seconds to run all queries" in line:
            return float(line.split(":")[1].split()[0])
    return None


async def measure(server: dict[str, Any], count: int, concurrency: Sequence[int], seconds: float,
                  slap_at: Sequence[int], slap_queries: int) -> dict[str, Any]:
    """Everything above on one server: settings, steps, hot-row TPS (own loop and mariadb-slap)."""
    found: dict[str, Any] = {"settings": await settings(server)}
    async with Scratch(server) as scratch:
        found["steps"] = await statement_costs(scratch, count)
        found["hot_row"], found["slap"] = [], []
        for connections in concurrency:  # each mariadb-slap check right after its own-client point
            found["hot_row"].append(await hot_row(scratch, connections, seconds))
            check = slap(server, scratch, connections, slap_queries) if connections in slap_at else None
            if check is not None:
                found["slap"].append(check)
    return found
