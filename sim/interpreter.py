"""The SimPy interpreter of engine generators.

A :class:`Task` wraps one generator (a buyer's request, a background trigger,
a drain). :meth:`Interpreter.resume` sends it the result of its last op and
runs it until it yields an op that costs time; that op is handed to the
component that models it (a Redis node, the network, a sleep), which calls
:meth:`Interpreter.wake` when the result is ready. No SimPy ``Process`` per
request: a request costs one event per hop it really waits for.

Client timeouts are detected lazily: a task whose reply arrives after its
deadline is abandoned there and then, and reported at its deadline. For an
open-loop client that is exact (nothing else depends on the abandoned
request); closed-loop users additionally arm a timer (see :mod:`sim.clients`).

``Spawn`` is handled here, in the core: the new task starts at once and the
spawner resumes at the same instant (no round trip, no ``ops``). The rules for
each :class:`~engine.tasks.TaskKind` (stop, setup quiet, failure) are the ones
of :mod:`engine.tasks`, shared with the real driver.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import simpy

from engine.model import Outcome
from engine.ops import Eval, Now, Sleep, Spawn
from engine.tasks import StrategyErrors, TaskFailed, TaskKind
from sim.kernel import Call, schedule_call

Done = Callable[["Task", Any], object]


class Task:
    """One running engine generator."""

    __slots__ = ("gen", "done", "deadline", "node", "ops", "reply", "tag", "kind", "finished")

    def __init__(self, gen: Any, done: Done, deadline: float = math.inf, tag: Any = None,
                 kind: TaskKind = TaskKind.REQUEST):
        self.gen = gen
        self.done = done
        self.deadline = deadline
        self.node = -1  # last Redis node this task talked to
        self.ops = 0  # ops that left the app (server round trips)
        self.reply: Any = None
        self.tag = tag  # the owner's bookkeeping (e.g. request index)
        self.kind = kind
        self.finished = False


class Interpreter:
    """Runs engine generators in a SimPy environment.

    ``handlers`` maps op classes beyond Eval/Now/Sleep/Spawn (SQL, MQ, ...) to
    callables ``handler(task, op)`` that must eventually call :meth:`wake`.
    """

    def __init__(self, env: simpy.Environment, cluster: Any):
        self.env = env
        self.cluster = cluster
        self.handlers: dict[type, Callable[[Task, Any], None]] = {}
        self.stopping = False  # set when the sale is over: background and spawned tasks end at their next wake
        self.spawned = 0  # live tasks started by Spawn ops
        self.on_quiet: list[Callable[[], object]] = []  # called once when no spawned task is left
        self.errors = StrategyErrors()  # requests ended by an exception of their strategy

    def start(self, gen: Any, done: Done, deadline: float = math.inf, tag: Any = None,
              kind: TaskKind = TaskKind.REQUEST) -> Task:
        task = Task(gen, done, deadline, tag, kind)
        self.resume(task, None)
        return task

    def resume(self, task: Task, value: Any) -> None:
        send = task.gen.send
        env = self.env
        while True:
            try:
                op = send(value)
            except StopIteration as stop:
                task.finished = True
                task.done(task, stop.value)
                return
            except Exception as err:  # the strategy raised (not the simulator: its errors propagate)
                self._crashed(task, err)
                return
            kind = op.__class__
            if kind is Eval:
                task.ops += 1
                self.cluster.submit(op, task)
                return
            if kind is Now:
                value = env.now
                continue
            if kind is Sleep:
                self.wake_after(op.seconds, task, None)
                return
            if kind is Spawn:  # local: no round trip, so not counted in ops
                self.spawn(op.gen)
                self.wake_after(0.0, task, None)
                return
            handler = self.handlers.get(kind)
            if handler is None:
                raise TypeError(f"the simulator has no handler for op {op!r}")
            task.ops += 1
            handler(task, op)
            return

    def spawn(self, gen: Any) -> Task:
        """Start ``gen`` as a task of kind SPAWN; :attr:`on_quiet` fires when the last one ends."""
        self.spawned += 1
        return self.start(gen, self._spawn_done, math.inf, None, TaskKind.SPAWN)

    def _spawn_done(self, _task: Task, _value: Any) -> None:
        self.spawned -= 1
        if self.spawned == 0 and self.on_quiet:
            waiters, self.on_quiet = self.on_quiet, []
            for waiter in waiters:
                waiter()

    def _crashed(self, task: Task, err: Exception) -> None:
        """The failure rule of :mod:`engine.tasks`: a request errs, any other task stops the run."""
        task.finished = True
        if task.kind is TaskKind.REQUEST:
            self.errors.record(err)
            task.done(task, Outcome.ERROR)
            return
        raise TaskFailed(task.kind, err) from err

    def wake_after(self, delay: float, task: Task, reply: Any) -> None:
        """Resume ``task`` with ``reply`` after ``delay`` simulated seconds."""
        task.reply = reply
        schedule_call(self.env, delay, self._on_wake, task)

    def wake(self, task: Task, reply: Any) -> None:
        """Resume ``task`` with ``reply`` now (from inside an event callback)."""
        task.reply = reply
        self.resume_checked(task)

    def _on_wake(self, event: Call) -> None:
        self.resume_checked(event.value)

    def resume_checked(self, task: Task) -> None:
        if task.finished:  # abandoned earlier (closed-loop timer)
            return
        if self.env.now > task.deadline:
            task.gen.close()
            task.finished = True
            task.done(task, Outcome.TIMEOUT)
            return
        if self.stopping and task.kind.ends_when_stopped:
            task.gen.close()
            task.finished = True
            task.done(task, None)
            return
        self.resume(task, task.reply)

