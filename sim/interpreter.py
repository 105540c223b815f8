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
"""

from __future__ import annotations

import math
from collections.abc import Callable
from heapq import heappush
from typing import Any

import simpy
from simpy.events import NORMAL

from engine.model import Outcome
from engine.ops import Eval, Now, Sleep

Done = Callable[["Task", Any], object]


class Task:
    """One running engine generator."""

    __slots__ = ("gen", "done", "deadline", "node", "ops", "reply", "tag", "finished")

    def __init__(self, gen: Any, done: Done, deadline: float = math.inf, tag: Any = None):
        self.gen = gen
        self.done = done
        self.deadline = deadline
        self.node = -1  # last Redis node this task talked to
        self.ops = 0  # ops that left the app (server round trips)
        self.reply: Any = None
        self.tag = tag  # the owner's bookkeeping (e.g. request index)
        self.finished = False


class Interpreter:
    """Runs engine generators in a SimPy environment.

    ``handlers`` maps op classes beyond Eval/Now/Sleep (SQL, MQ, ...) to
    callables ``handler(task, op)`` that must eventually call :meth:`wake`.
    """

    def __init__(self, env: simpy.Environment, cluster: Any):
        self.env = env
        self.cluster = cluster
        self.handlers: dict[type, Callable[[Task, Any], None]] = {}
        self.stopping = False  # set when the sale is over: background tasks end at their next wake

    def start(self, gen: Any, done: Done, deadline: float = math.inf, tag: Any = None) -> Task:
        task = Task(gen, done, deadline, tag)
        self.resume(task, None)
        return task

    def resume(self, task: Task, value: Any) -> None:
        send = task.gen.send
        env = self.env
        try:
            while True:
                op = send(value)
                kind = op.__class__
                if kind is Eval:
                    task.ops += 1
                    self.cluster.submit(op, task)
                    return
                if kind is Now:
                    value = env._now
                    continue
                if kind is Sleep:
                    self.wake_after(op.seconds, task, None)
                    return
                handler = self.handlers.get(kind)
                if handler is None:
                    raise TypeError(f"the simulator has no handler for op {op!r}")
                task.ops += 1
                handler(task, op)
                return
        except StopIteration as stop:
            task.finished = True
            task.done(task, stop.value)

    def wake_after(self, delay: float, task: Task, reply: Any) -> None:
        """Resume ``task`` with ``reply`` after ``delay`` simulated seconds."""
        task.reply = reply
        schedule_call(self.env, delay, self._on_wake, task)

    def wake(self, task: Task, reply: Any) -> None:
        """Resume ``task`` with ``reply`` now (from inside an event callback)."""
        task.reply = reply
        self.resume_checked(task)

    def _on_wake(self, event: simpy.Event) -> None:
        self.resume_checked(event._value)

    def resume_checked(self, task: Task) -> None:
        if task.finished:  # abandoned earlier (closed-loop timer)
            return
        if self.env._now > task.deadline:
            task.gen.close()
            task.finished = True
            task.done(task, Outcome.TIMEOUT)
            return
        if self.stopping and task.deadline == math.inf and task.tag == "background":
            task.gen.close()
            task.finished = True
            task.done(task, None)
            return
        self.resume(task, task.reply)


class _Call(simpy.Event):
    """A pre-triggered event carrying one callback: the cheapest timer SimPy can process."""

    def __init__(self, env: simpy.Environment, callback: Callable[[simpy.Event], None], value: Any):
        self.env = env
        self.callbacks = [callback]
        self._value = value
        self._ok = True


def schedule_call(env: simpy.Environment, delay: float, callback: Callable[[simpy.Event], None], value: Any = None) -> None:
    """Run ``callback(event)`` after ``delay`` (>= 0); ``event.value`` is ``value``.

    Same ordering as ``env.schedule(event, NORMAL, delay)``, without its call overhead.
    """
    heappush(env._queue, (env._now + delay, NORMAL, next(env._eid), _Call(env, callback, value)))  # type: ignore[attr-defined]
