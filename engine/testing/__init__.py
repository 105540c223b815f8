"""The serial reference interpreter: what every op means, with no I/O, no SimPy and no cost.

Tests run engine generators here instead of hand-writing an interpreter per
folder. :class:`Reference` answers

- ``Eval`` with the script's twin (:data:`engine.scripts.REGISTRY`) on one
  in-memory store standing for the whole cluster (keys carry hash tags, so
  they never collide); keys of one script must share a slot, as Redis Cluster
  demands, else a :class:`CrossSlot` error is thrown into the generator;
- ``Now`` with its clock (:attr:`Reference.t`, settable), ``Sleep`` by moving
  the task's wake time: the clock reaches it when the task runs again;
- ``Spawn`` by queueing a task of kind SPAWN (run it with :meth:`~Reference.run_spawned`,
  :meth:`~Reference.step` it, or let :meth:`~Reference.sale` schedule it);
- SQL ops with the statement twins (:mod:`engine.testing.db`; a statement
  that needs a row another transaction holds waits for it, up to
  ``lock_wait_timeout`` on the clock), MQ ops with an at-least-once broker
  (:mod:`engine.testing.mq`).

Tasks follow the rules of :mod:`engine.tasks`, like the two real interpreters:
a request that raises ends with ``Outcome.ERROR`` (counted in :attr:`Reference.errors`),
any other task that raises raises :class:`~engine.tasks.TaskFailed`; once
:meth:`~Reference.stop` is called, background and spawned tasks end at their
next step. Every op yielded is kept, per task (:attr:`Task.trace`) and overall
(:attr:`Reference.log`).

Three ways to drive: :meth:`~Reference.run` one generator to its end;
:meth:`~Reference.step` tasks op by op in any interleaving a test likes; or
:meth:`~Reference.sale`, a whole sale scheduled by wake time (ops take no time).
:func:`drive` answers from a list of scripted replies instead.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from typing import Any

from engine import scripts
from engine.model import Outcome, Request
from engine.ops import Eval, Now, Sleep, Spawn
from engine.pipeline.ops import Ack, Consume, Publish
from engine.slots import key_slot
from engine.sql import LOCK_WAIT_TIMEOUT, DbBegin, DbCommit, DbError, DbExec, DbRollback
from engine.strategy import Strategy
from engine.tasks import StrategyErrors, TaskFailed, TaskKind
from engine.testing.db import Locked, ReferenceDb, Transaction
from engine.testing.mq import ReferenceMq

__all__ = ["CrossSlot", "Reference", "ReferenceDb", "ReferenceMq", "Sale", "Task", "Transaction", "drive"]

Gen = Generator[Any, Any, Any]
SQL_OPS = (DbBegin, DbExec, DbCommit, DbRollback)
MQ_OPS = (Publish, Consume, Ack)


class CrossSlot(Exception):
    """A script's keys hash to different slots (Redis Cluster's CROSSSLOT error)."""


class Task:
    """One generator the reference runs, its pending reply and what it yielded."""

    __slots__ = ("gen", "kind", "tag", "reply", "error", "wake", "order", "finished", "value", "exception",
                 "ops", "trace", "waiting", "lock_deadline")

    def __init__(self, gen: Gen, kind: TaskKind, tag: Any, wake: float, order: int):
        self.gen = gen
        self.kind = kind
        self.tag = tag
        self.reply: Any = None  # sent at the next step
        self.error: BaseException | None = None  # thrown at the next step instead
        self.wake = wake  # it may not run before this time
        self.order = order  # FIFO among tasks that may run at the same time
        self.finished = False
        self.value: Any = None  # what the generator returned (a request: its Outcome)
        self.exception: BaseException | None = None  # what it raised, if it did
        self.ops = 0  # server round trips (Spawn, Now and Sleep are not)
        self.trace: list[Any] = []  # every op it yielded, in order
        self.waiting: Any = None  # an SQL op parked for a row lock, asked again at the next step
        self.lock_deadline = math.inf  # when that wait ends in LOCK_WAIT_TIMEOUT

    def __repr__(self) -> str:
        state = "finished" if self.finished else f"wake={self.wake:g}"
        return f"Task({self.kind.value}, tag={self.tag!r}, {state}, {len(self.trace)} ops)"


@dataclass
class Sale:
    """What :meth:`Reference.sale` ran: the tasks by kind and each request's outcome."""

    t0: float  # reference time of the sale start (after setup and what it spawned)
    requests: list[Task]
    setup: Task
    drain: Task
    background: list[Task]
    setup_spawned: list[Task] = field(default_factory=list)  # finished before t0
    spawned: list[Task] = field(default_factory=list)  # every spawned task, setup's included

    @property
    def outcomes(self) -> list[Outcome]:
        return [task.value for task in self.requests]


class Reference:
    """A serial world: one Redis store, one database, one broker, one clock."""

    def __init__(self, t: float = 0.0, ack_timeout: float = 0.5, lock_wait_timeout: float = 50.0):
        self.t = t
        self.lock_wait_timeout = lock_wait_timeout
        self.store: dict[str, Any] = {}
        self.db = ReferenceDb()
        self.mq = ReferenceMq(ack_timeout)
        self.tasks: list[Task] = []  # every task started, in start order
        self.log: list[Any] = []  # every op answered, in order
        self.errors = StrategyErrors()
        self.stopping = False
        self._order = itertools.count()
        self._parked: list[Task] = []  # tasks waiting for a row lock

    # --- observation ----------------------------------------------------------
    def read(self, key: str) -> Any:
        """What ``Strategy.inventory`` reads: ``db:`` keys from the database, others from the store."""
        return self.db.read(key) if key.startswith("db:") else self.store.get(key)

    def live(self, *kinds: TaskKind) -> list[Task]:
        """Unfinished tasks (of these kinds, if given), in start order."""
        return [t for t in self.tasks if not t.finished and (not kinds or t.kind in kinds)]

    # --- tasks ------------------------------------------------------------------
    def start(self, gen: Gen, kind: TaskKind = TaskKind.REQUEST, tag: Any = None, at: float | None = None) -> Task:
        """Add a task that may run from time ``at`` (default: now); nothing runs yet."""
        task = Task(gen, kind, tag, self.t if at is None else at, next(self._order))
        self.tasks.append(task)
        return task

    def step(self, task: Task) -> Any:
        """Run ``task`` up to and including its next op; returns that op (None once it has finished).

        The clock first moves to the task's wake time if that is later.
        """
        if task.finished:
            raise ValueError(f"{task!r} has finished")
        if task.wake > self.t:
            self.t = task.wake
        if self.stopping and task.kind.ends_when_stopped:  # the stop rule
            task.gen.close()
            task.finished = True
            return None
        if task.waiting is not None:  # a statement parked for a row lock: ask again
            op, task.waiting = task.waiting, None
            self._answer(task, op)
            task.order = next(self._order)
            return op
        reply, error = task.reply, task.error
        task.reply = task.error = None
        try:
            op = task.gen.send(reply) if error is None else task.gen.throw(error)
        except StopIteration as stop:
            task.finished = True
            task.value = stop.value
            return None
        except Exception as err:  # the failure rule
            task.finished = True
            task.exception = err
            if task.kind is not TaskKind.REQUEST:
                raise TaskFailed(task.kind, err) from err
            self.errors.record(err)
            task.value = Outcome.ERROR
            return None
        task.trace.append(op)
        self.log.append(op)
        self._answer(task, op)
        task.order = next(self._order)
        return op

    def _answer(self, task: Task, op: Any) -> None:
        if isinstance(op, Eval):
            task.ops += 1
            slots = {key_slot(key) for key in op.keys}
            if len(slots) > 1:
                task.error = CrossSlot(f"CROSSSLOT: keys of {op.script} in slots {sorted(slots)}: {op.keys}")
            else:
                task.reply = scripts.get(op.script).twin(self.store, op.keys, op.args)
        elif isinstance(op, Now):
            task.reply = self.t
        elif isinstance(op, Sleep):
            task.wake = self.t + op.seconds
        elif isinstance(op, Spawn):  # local: not a round trip
            self.start(op.gen, TaskKind.SPAWN)
        elif isinstance(op, SQL_OPS):
            self._sql(task, op)
        elif isinstance(op, MQ_OPS):
            task.ops += 1
            task.reply = self.mq.answer(op, self.t)
            if isinstance(op, Consume) and task.reply is None:
                task.wake = self.t + op.block  # nothing came while it blocked
        else:
            raise TypeError(f"the reference interpreter has no meaning for op {op!r}")

    def _sql(self, task: Task, op: Any) -> None:
        reply = self.db.answer(op)
        if isinstance(reply, Locked):
            if task.lock_deadline == math.inf:
                task.lock_deadline = self.t + self.lock_wait_timeout
            if self.t < task.lock_deadline:  # park until a transaction ends or the wait times out
                task.waiting = op
                task.wake = task.lock_deadline
                self._parked.append(task)
                return
            reply = DbError(LOCK_WAIT_TIMEOUT, f"waited {self.lock_wait_timeout:g} s for {reply.row}")
        task.lock_deadline = math.inf
        task.ops += 1
        task.reply = reply
        if self._parked and isinstance(op, (DbCommit, DbRollback)):  # locks came free: the waiters ask again
            parked, self._parked = self._parked, []
            for waiter in parked:
                if not waiter.finished:
                    waiter.wake = self.t
                    waiter.order = next(self._order)

    def run(self, gen: Gen | Task, kind: TaskKind = TaskKind.REQUEST, limit: int = 100_000) -> Any:
        """Run one generator (or task) alone to its end; what it spawns is queued, not run. Returns its value."""
        task = gen if isinstance(gen, Task) else self.start(gen, kind)
        for _ in range(limit):
            if task.finished:
                return task.value
            self.step(task)
        raise RuntimeError(f"{task!r} did not finish within {limit} ops")

    def run_until(self, task: Task, op_class: type, limit: int = 100_000) -> Any:
        """Step ``task`` until it yields an op of ``op_class`` (answered as usual); returns that op."""
        for _ in range(limit):
            op = self.step(task)
            if isinstance(op, op_class):
                return op
            if task.finished:
                raise AssertionError(f"{task!r} finished before yielding {op_class.__name__}")
        raise RuntimeError(f"{task!r} yielded no {op_class.__name__} within {limit} ops")

    def run_spawned(self, limit: int | None = None) -> int:
        """Run spawned tasks to their end, oldest first (and those they spawn), at most ``limit``; returns how many."""
        done = 0
        while limit is None or done < limit:
            waiting = self.live(TaskKind.SPAWN)
            if not waiting:
                break
            self.run(waiting[0])
            done += 1
        return done

    def settle(self, kinds: tuple[TaskKind, ...], limit: int = 10_000) -> None:
        """Step every live task of these kinds round robin until all have finished."""
        for _ in range(limit):
            live = self.live(*kinds)
            if not live:
                return
            for task in live:  # round robin: a task waiting for another must not starve it
                if not task.finished:
                    self.step(task)
        raise AssertionError(f"tasks of kinds {[k.value for k in kinds]} did not finish: {self.live(*kinds)}")

    def abandon(self, task: Task) -> None:
        """Drop ``task`` mid-way, as when its client gives up: it never runs again."""
        task.gen.close()
        task.finished = True

    def stop(self) -> None:
        """The sale is over: background and spawned tasks end now (the stop rule)."""
        self.stopping = True
        for task in self.live():
            if task.kind.ends_when_stopped:
                self.step(task)

    # --- a whole sale --------------------------------------------------------------
    def run_scheduled(self, done: Callable[[], bool], limit: int = 1_000_000) -> None:
        """Step live tasks by wake time (FIFO at equal times) until ``done()``; ops take no time."""
        for _ in range(limit):
            if done():
                return
            live = self.live()
            if not live:
                raise RuntimeError("nothing left to run, and still not done")
            self.step(min(live, key=lambda k: (k.wake, k.order)))
        raise RuntimeError(f"not done within {limit} ops")

    def sale(self, strategy: Strategy, requests: Iterable[Request]) -> Sale:
        """One sale, as the simulator runs it but with free ops.

        Setup runs alone, then what it spawned (the sale waits for it); the
        background tasks start; request ``r`` starts at ``t0 + r.t_intended``;
        once every request has finished the drain runs (background tasks still
        running), then :meth:`stop`. The strategy gets :meth:`read` as its oracle.
        """
        strategy.oracle = self.read
        setup = self.start(strategy.setup(), TaskKind.SETUP)
        self.run(setup)
        self.run_spawned()
        setup_spawned = [k for k in self.tasks if k.kind is TaskKind.SPAWN]
        t0 = self.t
        background = [self.start(gen, TaskKind.BACKGROUND) for gen in strategy.background()]
        tasks = [self.start(strategy.deduct(r), TaskKind.REQUEST, tag=r.id, at=t0 + r.t_intended) for r in requests]
        self.run_scheduled(lambda: all(task.finished for task in tasks))
        drain = self.start(strategy.drain(), TaskKind.DRAIN)
        self.run_scheduled(lambda: drain.finished)
        self.stop()
        spawned = [k for k in self.tasks if k.kind is TaskKind.SPAWN]
        return Sale(t0, tasks, setup, drain, background, setup_spawned, spawned)


def drive(gen: Gen, replies: Iterable[Any]) -> tuple[list[Any], Any]:
    """Run ``gen`` answering each op it yields from ``replies`` (scripted); return (ops, return value).

    For asserting exact op sequences against hand-written replies, as h11's tests
    pass bytes between peers. Fails if the generator asks for more ops than there are replies.
    """
    ops = []
    try:
        op = next(gen)
        for reply in replies:
            ops.append(op)
            op = gen.send(reply)
        raise AssertionError(f"generator wanted more: {op}")
    except StopIteration as stop:
        return ops, stop.value
