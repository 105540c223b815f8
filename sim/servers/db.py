"""A simulated MySQL/InnoDB server and the app's connection pool, in SimPy time.

The model is the set of mechanisms a DBA names when a hot row collapses:

- **connection pools** (app side): one per app instance, ``db.pool_size``
  connections each, FIFO waiters, ``db.acquire_timeout`` (-> ``POOL_TIMEOUT``);
  a request uses its instance's pool (``Task.app``);
- **server threads**: at most ``db.threads`` statements use a CPU at once
  (FIFO, per-statement service time ``db.service``); a thread waiting for a row
  lock gives its slot up, as with InnoDB's thread concurrency control;
- **row locks**: exclusive, one FIFO queue per row, ``db.lock_wait_timeout``
  (-> ``LOCK_WAIT_TIMEOUT``, the statement fails, the transaction stays open);
- **deadlock detection** (``db.deadlock_detect``): every new waiter searches
  the waits-for graph while holding the global ``lock_sys`` mutex, at a cost of
  ``db.detect_cost`` per transaction already waiting on the row; handing a
  released lock to the next waiter needs the same mutex (``db.grant_cost``).
  With many waiters the mutex saturates and every hand-off waits for it: the
  reason one hot row gets *slower* as concurrency grows. Real cycles are found
  and the requester is rolled back (-> ``DEADLOCK``); with detection off only
  the lock-wait timeout breaks them;
- **commit** (``db.commit_path``): with ``binlog_sync`` (the binary log on,
  ``sync_binlog=1``) a writing commit pays ``db.commit`` (the log flush) with
  its row locks still held; with ``group_commit`` (InnoDB with the binary log
  off) it releases its locks first and its reply then waits for the redo log:
  one flush at a time, each flushing every commit that arrived while the one
  before it ran (group commit), so the row is free during the flush.

Buyers who gave up do not cancel their server work: a transaction whose
client's deadline has passed keeps its place in the lock queue and its locks;
the app notices only when the next reply reaches it, and then rolls back
(one more hop plus ``db.rollback`` with the locks held). Waiters for a pooled
connection are skipped as soon as their client has gone. Under overload, the
row therefore works for buyers who are already gone: that, plus the detection
cost, is the collapse.

Statement semantics come from the registry (:mod:`engine.sql`): a statement's
twin runs once it holds its rows, against the working tables; plain reads see
the committed image (MVCC); commit publishes the rows a transaction locked and
rollback restores their before-images. The ``db:`` read keys answer from the
committed image.

Costs are events, not processes: one event per hop that really waits (arrival
at the server, reply at the app, lock grant, commit end), and one sweeping
timer per row / per pool for the timeouts (deadlines in a FIFO queue with one
timeout are in order, so only the head needs a timer).
"""

from __future__ import annotations

from collections import deque
from heapq import heappop, heappush
from typing import Any

import simpy

from engine import sql
from engine.distributions import sampler
from engine.pipeline.columnar import DetailRows
from engine.sql import DbBegin, DbCommit, DbError, DbExec, DbRollback, SqlResult, Statement
from engine.sql.registry import STATEMENTS as _STATEMENTS
from engine.sql.registry import RowKey, Tables
from sim.interpreter import Interpreter, Task
from sim.kernel import Call, schedule_call
from sim.servers.db_txn import GONE, Group, Row, Txn, closes_cycle
from sim.world import COMPONENTS, World

_NO_ROWS: dict = {}


class _Pool:
    """One app instance's connections: how many are free, who waits, whether its timeout sweep is armed."""

    __slots__ = ("index", "free", "waiters", "timer_armed")

    def __init__(self, index: int, size: int):
        self.index = index
        self.free = size
        self.waiters: deque[tuple[Task, Any, float]] = deque()
        self.timer_armed = False


class SimDb:
    """The app instances' connection pools and one MySQL server."""

    def __init__(self, world: World):
        scenario = world.scenario
        self.config = config = scenario.db
        self.env: simpy.Environment = world.env
        self.interpreter: Interpreter = world.interpreter
        rng = world.streams.generator("db")
        self._hop = sampler(scenario.network.db, rng)
        self._service = {name: sampler(dist, rng) for name, dist in config.service.items()}
        self._default_service = self._service["default"]
        self._commit = sampler(config.commit, rng)
        self._rollback = sampler(config.rollback, rng)
        self._begin = sampler(config.begin, rng)
        self._group_commit = config.commit_path == "group_commit"
        self.flush_end = 0.0  # group_commit: when the log flush in progress ends
        self.next_flush_end: float | None = None  # ... and the one after it, whose group is still forming
        self.working: Tables = {}
        self.committed: Tables = {}
        self.rows: dict[RowKey, Row] = {}
        self.threads = [0.0] * config.threads  # a heap of the times each server thread comes free
        self.host = world.host  # the machine's cores its threads share (host.cores; None: CPU of its own)
        self.lock_sys_free = 0.0  # when the global lock_sys mutex comes free
        # one pool per app instance, and one for the pipeline service (index app.instances)
        self.pools = [_Pool(k, config.pool_size) for k in range(scenario.app.instances + 1)]
        self.stats = dict.fromkeys(
            ("statements", "lock_waits", "lock_wait_time", "lock_timeouts", "deadlocks", "pool_waits",
             "pool_timeouts", "abandoned", "replies_to_gone", "commits", "rollbacks", "groups", "detect_time",
             "flushes"), 0.0)

    # ------------------------------------------------------------ observation
    def read(self, key: str) -> Any:
        return sql.read_twin(self.committed, key)

    def figures(self) -> dict[str, float]:
        """The server's side of the story, for the run summary (empty if no SQL ran)."""
        stats = self.stats
        if not stats["statements"]:
            return {}
        waits = stats["lock_waits"]
        return {
            "db_statements": int(stats["statements"]),
            "db_lock_waits": int(waits),
            "db_lock_wait_mean": stats["lock_wait_time"] / waits if waits else 0.0,
            "db_lock_timeouts": int(stats["lock_timeouts"]),
            "db_deadlocks": int(stats["deadlocks"]),
            "db_pool_timeouts": int(stats["pool_timeouts"]),
            "db_replies_to_gone": int(stats["replies_to_gone"]),  # server work whose buyer had left
            "db_abandoned": int(stats["abandoned"]),  # of which open transactions the app then rolled back
            "db_rollbacks": int(stats["rollbacks"]),
            "db_groups": int(stats["groups"]),
            "db_detect_time": stats["detect_time"],
            **({"db_flushes": int(stats["flushes"])} if self._group_commit else {}),
        }

    # ------------------------------------------------------------ op handlers
    def on_begin(self, task: Task, op: DbBegin) -> None:
        self._acquire(task, op)

    def on_exec(self, task: Task, op: DbExec) -> None:
        if op.txn is None:
            self._acquire(task, op)
        else:
            txn: Txn = op.txn
            txn.task = task
            self._send(txn, op)

    def on_commit(self, task: Task, op: DbCommit) -> None:
        if op.txn.session:  # nothing to commit: the app just returns the connection
            schedule_call(self.env, 0.0, self._deliver, (op.txn, None, True))
            return
        schedule_call(self.env, self._hop(), self._commit_arrives, op.txn)

    def on_rollback(self, task: Task, op: DbRollback) -> None:
        if op.txn.session:
            schedule_call(self.env, 0.0, self._deliver, (op.txn, None, True))
            return
        schedule_call(self.env, self._hop(), self._rollback_arrives, op.txn)

    # ------------------------------------------------------------ pool
    def _acquire(self, task: Task, op: Any) -> None:
        pool = self.pools[task.app]
        if pool.free > 0 and not pool.waiters:
            pool.free -= 1
            self._with_connection(task, op)
            return
        self.stats["pool_waits"] += 1
        pool.waiters.append((task, op, self.env.now + self.config.acquire_timeout))
        if not pool.timer_armed:
            pool.timer_armed = True
            schedule_call(self.env, self.config.acquire_timeout, self._pool_timer, pool)

    def _release_connection(self, task: Task) -> None:
        """``task`` gives its connection back to its instance's pool (or to the first waiter there)."""
        now = self.env.now
        pool = self.pools[task.app]
        waiters = pool.waiters
        while waiters:
            task, op, _ = waiters.popleft()
            if task.finished or now > task.deadline:  # the buyer left: the app drops the request
                self.interpreter.resume_checked(task)
                continue
            self._with_connection(task, op, direct=True)
            return
        pool.free += 1

    def _pool_timer(self, event: Call) -> None:
        now = self.env.now
        pool: _Pool = event.value
        waiters = pool.waiters
        while waiters and waiters[0][2] <= now:
            task, _, _ = waiters.popleft()
            self.stats["pool_timeouts"] += 1
            self._wake(task, DbError(sql.POOL_TIMEOUT))
        if waiters:
            schedule_call(self.env, waiters[0][2] - now, self._pool_timer, pool)
        else:
            pool.timer_armed = False

    def _with_connection(self, task: Task, op: Any, direct: bool = False) -> None:
        """Start ``op`` on a connection just taken (``direct``: not from inside an op handler)."""
        if op.__class__ is DbBegin:
            if op.autocommit:  # a session: nothing to send until its first statement
                txn = Txn(task, autocommit=True, session=True)
                if direct:
                    self._wake(task, txn)
                else:
                    schedule_call(self.env, 0.0, self._deliver, (txn, txn, False))
                return
            txn = Txn(task, autocommit=False)
            delay = self._hop() + self._begin() + self._hop()
            schedule_call(self.env, delay, self._deliver, (txn, txn, False))
        else:
            self._send(Txn(task, autocommit=True), op)

    # ------------------------------------------------------------ statements
    def _send(self, txn: Txn, op: DbExec) -> None:
        statement = _STATEMENTS.get(op.statement) or sql.get(op.statement)
        txn.statement = statement
        txn.params = op.params
        keys = statement.locks(op.params)
        if txn.held:
            held = {row.key for row in txn.held}
            txn.pending = [key for key in reversed(keys) if key not in held]
        else:
            txn.pending = list(reversed(keys))
        schedule_call(self.env, self._hop(), self._statement_arrives, txn)

    def _statement_arrives(self, event: Call) -> None:
        txn: Txn = event.value
        self.stats["statements"] += 1
        if txn.statement.group_commit and txn.autocommit and len(txn.pending) == 1:
            self._join_group(txn)
            return
        self._lock_next(txn)

    def _lock_next(self, txn: Txn) -> None:
        """Take the statement's rows in order; wait in a row's queue when it is taken."""
        now = self.env.now
        pending = txn.pending
        rows = self.rows
        working = self.working
        held = txn.held
        before = txn.before
        while pending:
            key = pending[-1]
            row = rows.get(key)
            if row is None:  # (self._row, inline: a new row is free)
                row = rows[key] = Row(key)
            elif row.holder is not None or row.queue:
                self._wait(txn, row, now)
                return
            row.holder = txn  # (self._hold, inline: a batch insert locks a row per record)
            held.append(row)
            image: Any = working.get(key[0], _NO_ROWS).get(key[1], GONE)
            before[key] = image if image is GONE else dict(image)
            pending.pop()
        self._execute(txn, now)

    def _row(self, key: RowKey) -> Row:
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = Row(key)
        return row

    def _hold(self, txn: Txn, row: Row) -> None:
        row.holder = txn
        txn.held.append(row)
        table, key = row.key
        image: Any = self.working.get(table, _NO_ROWS).get(key, GONE)
        txn.before[row.key] = image if image is GONE else dict(image)

    def _execute(self, txn: Txn, now: float) -> None:
        statement = txn.statement
        service = self._service.get(statement.name, self._default_service)()
        finish = self._run_on_thread(now, service)
        reply = self._apply(statement, txn.params, bool(txn.held))
        if reply.__class__ is SqlResult and reply.affected:
            txn.wrote = True
        if txn.autocommit and not txn.held:  # a read-only statement: nothing to commit
            schedule_call(self.env, finish - now + self._hop(), self._deliver, (txn, reply, not txn.session))
        elif txn.autocommit:
            if isinstance(reply, DbError):
                self._end(txn, commit=False)
                schedule_call(self.env, finish - now + self._hop(), self._deliver, (txn, reply, not txn.session))
            elif self._group_commit and txn.wrote:
                schedule_call(self.env, finish - now, self._release_then_flush, (txn, reply, not txn.session))
            else:
                schedule_call(self.env, finish - now + self._commit_cost(txn), self._autocommit_done, (txn, reply))
        else:
            schedule_call(self.env, finish - now + self._hop(), self._deliver, (txn, reply, False))

    def _apply(self, statement: Statement, params: tuple, writes: bool) -> SqlResult | DbError:
        if statement.ddl:
            statement.twin(self.committed, params)
            return statement.twin(self.working, params)
        return statement.twin(self.working if writes else self.committed, params)

    def _run_on_thread(self, now: float, service: float) -> float:
        free_at = heappop(self.threads)
        start = now if now > free_at else free_at
        host = self.host
        finish = (start if host is None else host.start(start, service)) + service
        heappush(self.threads, finish)
        return finish

    def _autocommit_done(self, event: Call) -> None:
        txn, reply = event.value
        self._end(txn, commit=True)
        schedule_call(self.env, self._hop(), self._deliver, (txn, reply, not txn.session))

    # ------------------------------------------------------------ lock queue
    def _wait(self, txn: Txn, row: Row, now: float) -> None:
        config = self.config
        self.stats["lock_waits"] += 1
        txn.waiting_for = row
        txn.t_wait = now
        txn.wait_deadline = now + config.lock_wait_timeout
        queue = row.queue
        if queue is None:
            queue = row.queue = deque()
        if config.deadlock_detect:
            cost = config.detect_cost * len(queue)
            done = (now if now > self.lock_sys_free else self.lock_sys_free) + cost
            self.lock_sys_free = done
            self.stats["detect_time"] += cost
            if closes_cycle(txn, row):
                txn.waiting_for = None
                self.stats["deadlocks"] += 1
                self._end(txn, commit=False)  # InnoDB rolls the victim back
                reply = (txn, DbError(sql.DEADLOCK), txn.autocommit and not txn.session)
                schedule_call(self.env, done - now + self._hop(), self._deliver, reply)
                return
        queue.append(txn)
        if not row.timer_armed:
            row.timer_armed = True
            schedule_call(self.env, config.lock_wait_timeout, self._lock_timer, row)

    def _lock_timer(self, event: Call) -> None:
        row: Row = event.value
        now = self.env.now
        queue = row.queue
        while queue and queue[0].wait_deadline <= now:
            txn = queue.popleft()
            txn.waiting_for = None
            self.stats["lock_timeouts"] += 1
            self.stats["lock_wait_time"] += now - txn.t_wait
            error = DbError(sql.LOCK_WAIT_TIMEOUT)
            if isinstance(txn, Group):
                self._fail_group(txn, error)
            else:
                txn.pending = []  # the statement failed; the transaction stays open
                if txn.autocommit:
                    self._end(txn, commit=False)
                schedule_call(self.env, self._hop(), self._deliver, (txn, error, txn.autocommit and not txn.session))
        if queue:
            schedule_call(self.env, queue[0].wait_deadline - now, self._lock_timer, row)
        else:
            row.timer_armed = False
            self._forget(row)

    def _release(self, row: Row) -> None:
        """Hand ``row`` to its next waiter, through the lock_sys mutex."""
        row.holder = None
        if not row.queue:
            self._forget(row)
            return
        now = self.env.now
        txn = row.queue.popleft()
        granted = (now if now > self.lock_sys_free else self.lock_sys_free) + self.config.grant_cost
        self.lock_sys_free = granted
        row.holder = txn  # reserved: later arrivals queue behind it
        txn.waiting_for = None
        self.stats["lock_wait_time"] += granted - txn.t_wait
        schedule_call(self.env, granted - now, self._granted, txn)

    def _forget(self, row: Row) -> None:
        """Drop ``row`` once nothing refers to it (a new Row is made when it is locked again)."""
        if row.holder is None and not row.queue and not row.timer_armed and row.group is None:
            del self.rows[row.key]

    def _granted(self, event: Call) -> None:
        txn: Txn = event.value
        self._hold(txn, self.rows[txn.pending.pop()])
        if isinstance(txn, Group):
            self._run_group(txn)
        else:
            self._lock_next(txn)

    # ------------------------------------------------------------ end of a transaction
    def _end(self, txn: Txn, commit: bool) -> None:
        """Publish (commit) or undo (rollback) the rows ``txn`` locked, then release them."""
        last: Any = None
        source: Any = _NO_ROWS
        target: Any = _NO_ROWS
        columns = False
        for row in txn.held:
            table, key = row.key
            if commit:
                if table != last:  # (the rows of a transaction are mostly in one table)
                    last = table
                    source = self.working.get(table, _NO_ROWS)
                    target = self.committed.get(table)
                    if target is None:
                        target = self.committed[table] = {}
                    columns = source.__class__ is DetailRows and target.__class__ is DetailRows
                if columns:  # column to column
                    source.copy_to(key, target)
                    continue
                image: Any = source.get(key, GONE)
                if image is GONE:
                    target.pop(key, None)
                else:
                    target[key] = dict(image)
            else:
                before = txn.before[row.key]
                rows = self.working.setdefault(table, {})
                if before is GONE:
                    rows.pop(key, None)
                else:
                    rows[key] = before
        self.stats["commits" if commit else "rollbacks"] += 1
        held = txn.held
        txn.held = []
        txn.before = {}
        for row in held:
            self._release(row)

    def _commit_cost(self, txn: Txn) -> float:
        """A log flush if ``txn`` changed rows; a read-only or no-op commit costs a rollback's worth."""
        if txn.wrote:
            txn.wrote = False
            return self._commit()
        return self._rollback()

    def _commit_arrives(self, event: Call) -> None:
        txn: Txn = event.value
        if self._group_commit and txn.wrote:
            self._commit_grouped(txn, None, True)
            return
        schedule_call(self.env, self._commit_cost(txn), self._commit_done, txn)

    def _release_then_flush(self, event: Call) -> None:
        self._commit_grouped(*event.value)

    def _commit_grouped(self, txn: Txn, reply: Any, release: bool) -> None:
        """group_commit: publish and release now; reply once the log flush that covers the commit ends."""
        txn.wrote = False
        self._end(txn, commit=True)
        now = self.env.now
        schedule_call(self.env, self._flushed_at(now) - now + self._hop(), self._deliver, (txn, reply, release))

    def _flushed_at(self, now: float) -> float:
        """When the redo-log flush that covers a commit made at ``now`` ends (one flush at a time)."""
        if self.next_flush_end is not None and now >= self.flush_end:  # the waiting group's flush has begun
            self.flush_end, self.next_flush_end = self.next_flush_end, None
        if now >= self.flush_end:  # the log is idle: flush right away
            self.stats["flushes"] += 1
            self.flush_end = now + self._commit()
            return self.flush_end
        if self.next_flush_end is None:  # a flush is running: join the group that flushes after it
            self.stats["flushes"] += 1
            self.next_flush_end = self.flush_end + self._commit()
        return self.next_flush_end

    def _commit_done(self, event: Call) -> None:
        txn: Txn = event.value
        self._end(txn, commit=True)
        schedule_call(self.env, self._hop(), self._deliver, (txn, None, True))

    def _rollback_arrives(self, event: Call) -> None:
        schedule_call(self.env, self._rollback(), self._rollback_done, event.value)

    def _rollback_done(self, event: Call) -> None:
        txn: Txn = event.value
        self._end(txn, commit=False)
        schedule_call(self.env, self._hop(), self._deliver, (txn, None, True))

    def _abandon_done(self, event: Call) -> None:
        self._end(event.value, commit=False)
        self._release_connection(event.value.task)

    # ------------------------------------------------------------ replies
    def _deliver(self, event: Call) -> None:
        """A reply reaches the app: ``(txn, reply, release the connection?)``."""
        txn, reply, release = event.value
        task = txn.task
        gone = task.finished or self.env.now > task.deadline
        if gone:
            self.stats["replies_to_gone"] += 1
        if release:
            self._release_connection(task)
        elif gone:
            self.stats["abandoned"] += 1
            if txn.session:  # holds no locks between statements: just give the connection back
                self._release_connection(task)
            else:  # the app rolls the open transaction back (one hop, locks still held)
                schedule_call(self.env, self._hop() + self._rollback(), self._abandon_done, txn)
        self._wake(task, reply)

    def _wake(self, task: Task, reply: Any) -> None:
        task.reply = reply
        self.interpreter.resume_checked(task)

    # ------------------------------------------------------------ hot-row group commit
    def _join_group(self, txn: Txn) -> None:
        row = self._row(txn.pending[0])
        group = row.group
        if group is not None and len(group.members) < self.config.batch_size:
            group.members.append(txn)
            return
        group = row.group = Group(txn)
        group.pending = [row.key]
        schedule_call(self.env, self.config.batch_window, self._group_ready, group)

    def _group_ready(self, event: Call) -> None:
        group: Group = event.value
        row = self.rows[group.pending[0]]
        if row.holder is not None or row.queue:
            self._wait(group, row, self.env.now)  # still takes members while it waits
            return
        self._hold(group, row)
        group.pending.pop()
        self._run_group(group)

    def _run_group(self, group: Group) -> None:
        now = self.env.now
        row = group.held[0]
        if row.group is group:
            row.group = None  # closed: later updates form the next group
        self.stats["groups"] += 1
        statement = group.statement
        service = (self._service.get(statement.name, self._default_service)()
                   + self.config.group_member_cost * len(group.members))
        finish = self._run_on_thread(now, service)
        replies = [statement.twin(self.working, member.params) for member in group.members]
        group.wrote = any(reply.__class__ is SqlResult and reply.affected for reply in replies)
        if self._group_commit and group.wrote:
            schedule_call(self.env, finish - now, self._group_released, (group, replies))
            return
        schedule_call(self.env, finish - now + self._commit_cost(group), self._group_done, (group, replies))

    def _group_released(self, event: Call) -> None:
        group, replies = event.value
        group.wrote = False
        self._end(group, commit=True)
        now = self.env.now
        delay = self._flushed_at(now) - now
        for member, reply in zip(group.members, replies):
            schedule_call(self.env, delay + self._hop(), self._deliver, (member, reply, not member.session))

    def _group_done(self, event: Call) -> None:
        group, replies = event.value
        self._end(group, commit=True)
        for member, reply in zip(group.members, replies):
            schedule_call(self.env, self._hop(), self._deliver, (member, reply, not member.session))

    def _fail_group(self, group: Group, error: DbError) -> None:
        row = self.rows[group.pending[0]]
        if row.group is group:
            row.group = None
        for member in group.members:
            schedule_call(self.env, self._hop(), self._deliver, (member, error, not member.session))


def install(world: World) -> None:
    """Give ``world`` a simulated MySQL (``world.db``) and the interpreter its SQL handlers."""
    db = SimDb(world)
    world.db = db  # type: ignore[attr-defined]
    handlers = world.interpreter.handlers
    handlers[DbBegin] = db.on_begin
    handlers[DbExec] = db.on_exec
    handlers[DbCommit] = db.on_commit
    handlers[DbRollback] = db.on_rollback
    world.readers["db"] = db.read
    world.summaries.append(db.figures)


COMPONENTS.append(install)
