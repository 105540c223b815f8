"""The asyncio interpreter of engine generators: the real twin of ``sim/interpreter.py``.

A :class:`Task` wraps one generator (a buyer's request, a background trigger,
setup, drain). :meth:`RealInterpreter.resume` sends it the result of its last
op and runs it until it yields an op that needs a server or the clock:

- ``Eval``  -> EVALSHA on the master owning ``keys[0]`` (:mod:`engine.real.links`);
- ``Now``   -> the event loop's clock, in seconds since the run's origin (the
  instant setup began, as simulated time starts at 0 before setup);
- ``Sleep`` -> a loop timer;
- ``Spawn`` -> a new task of kind SPAWN, started at once; the spawner resumes
  on the next loop turn (no round trip, so not counted in ``ops``);
- anything else -> ``handlers[type(op)](task, op)`` installed by the MQ and SQL
  drivers; an op nobody handles stops the run with a message naming it.

The rules for each :class:`~engine.tasks.TaskKind` (stop, setup quiet,
failure) are the ones of :mod:`engine.tasks`, shared with the simulator.

No asyncio Task per request: replies wake generators directly from the lane
that read them. Client timeouts are lazy, as in the simulator: a request
whose next wake comes after its deadline is abandoned and reported at it.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any

from engine.model import Outcome
from engine.ops import Eval, Now, Sleep, Spawn
from engine.real.target import TargetError
from engine.tasks import StrategyErrors, TaskFailed, TaskKind

Done = Callable[["Task", Any], None]


class UnsupportedOp(TargetError):
    """A strategy yielded an op the real driver cannot run yet."""


class Task:
    """One running engine generator."""

    __slots__ = ("gen", "done", "deadline", "node", "ops", "tag", "kind", "finished")

    def __init__(self, gen: Any, done: Done, deadline: float = math.inf, tag: Any = None,
                 kind: TaskKind = TaskKind.REQUEST):
        self.gen = gen
        self.done = done
        self.deadline = deadline  # loop time after which the client has given up
        self.node = -1  # last Redis master this task talked to
        self.ops = 0  # ops that left the app (server round trips)
        self.tag = tag  # the owner's bookkeeping (e.g. request index)
        self.kind = kind
        self.finished = False


class RealInterpreter:
    """Runs engine generators against real servers on one asyncio loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, origin: float):
        self.loop = loop
        self.origin = origin  # loop time that Now() reports as 0
        self.redis: Any = None  # RedisLinks, set once connected
        self.handlers: dict[type, Callable[[Task, Any], None]] = {}
        self.abandon_hooks: list[Callable[[Task], None]] = []  # called when a task is dropped mid-way
        self.drivers: list[Any] = []  # the servers beyond Redis installed on it (engine.real.drivers)
        self.spawned = 0  # live tasks started by Spawn ops
        self._quiet: list[asyncio.Future[None]] = []
        self.stopping = False  # the sale is over: background and spawned tasks end at their next wake
        self.failure: asyncio.Future[None] = loop.create_future()
        self.failure_error: Exception | None = None
        self.errors = StrategyErrors()  # requests ended by an exception (e.g. a server error reply not handled)

    def start(self, gen: Any, done: Done, deadline: float = math.inf, tag: Any = None,
              kind: TaskKind = TaskKind.REQUEST) -> Task:
        task = Task(gen, done, deadline, tag, kind)
        self.resume(task, None)
        return task

    def resume(self, task: Task, value: Any, error: Exception | None = None) -> None:
        """Send ``value`` (or throw ``error``) into the generator and run it to its next waiting op."""
        gen = task.gen
        while True:
            try:
                op = gen.send(value) if error is None else gen.throw(error)
            except StopIteration as stop:
                task.finished = True
                task.done(task, stop.value)
                return
            except Exception as err:  # the strategy raised: a request error, or a fatal failure of another task
                task.finished = True
                self._crashed(task, err)
                return
            error = None
            kind = op.__class__
            if kind is Now:
                value = self.loop.time() - self.origin
                continue
            try:
                self._dispatch(task, op, kind)
            except Exception as err:  # the driver failed (not the strategy): the run cannot go on
                gen.close()
                task.finished = True
                self.abort(err)
            return

    def _dispatch(self, task: Task, op: Any, kind: type) -> None:
        """Hand a waiting op to whoever answers it (Redis lanes, a timer, a driver)."""
        if kind is Eval:
            task.ops += 1
            self.redis.submit(op, task)
        elif kind is Sleep:
            self.loop.call_later(max(0.0, op.seconds), self.wake, task, None)
        elif kind is Spawn:  # local: no round trip, so not counted in ops
            self.spawn(op.gen)
            self.loop.call_soon(self.wake, task, None)
        else:
            handler = self.handlers.get(kind)
            if handler is None:
                task.gen.close()
                task.finished = True
                known = ", ".join(sorted(k.__name__ for k in (Eval, Now, Sleep, Spawn, *self.handlers)))
                self.abort(UnsupportedOp(f"the real driver cannot run op {kind.__name__} yet "
                                         f"(it runs: {known})"))
                return
            task.ops += 1
            handler(task, op)

    def wake(self, task: Task, reply: Any) -> None:
        """Resume ``task`` with ``reply`` (called by lanes, timers and other drivers)."""
        if task.finished:
            return
        if self.loop.time() > task.deadline:
            self.abandon(task)
            task.done(task, Outcome.TIMEOUT)
            return
        if self.stopping and task.kind.ends_when_stopped:
            self.abandon(task)
            task.done(task, None)
            return
        self.resume(task, reply)

    def spawn(self, gen: Any) -> Task:
        """Start ``gen`` as a task of kind SPAWN (a ``Spawn`` op); :meth:`quiet` waits for all of them."""
        self.spawned += 1
        return self.start(gen, self._spawn_done, math.inf, None, TaskKind.SPAWN)

    def _spawn_done(self, _task: Task, _value: Any) -> None:
        self.spawned -= 1
        if self.spawned == 0:
            for waiter in self._quiet:
                if not waiter.done():
                    waiter.set_result(None)
            self._quiet = []

    async def quiet(self) -> None:
        """Wait until every spawned task has finished (e.g. DB moves queued by setup)."""
        if self.spawned:
            waiter: asyncio.Future[None] = self.loop.create_future()
            self._quiet.append(waiter)
            await self.until(waiter)

    def abandon(self, task: Task) -> None:
        """Drop a task mid-way (its client gave up); drivers release what it held (open transactions)."""
        task.finished = True
        task.gen.close()
        for hook in self.abandon_hooks:
            hook(task)

    def fail(self, task: Task, err: Exception) -> None:
        """A server answered with an error: raise it inside the generator, where the strategy may handle it."""
        if not task.finished:
            self.resume(task, None, err)

    def _crashed(self, task: Task, err: Exception) -> None:
        """The failure rule of :mod:`engine.tasks`: a request errs, any other task stops the run."""
        if task.kind is TaskKind.SPAWN:
            self._spawn_done(task, None)
        if task.kind is TaskKind.REQUEST:  # a buyer's request: counted as an error, the run goes on
            self.errors.record(err)
            task.done(task, Outcome.ERROR)
        elif isinstance(err, TargetError):  # a server refused (e.g. a scratch schema exists): say so as is
            self.abort(err)
        else:  # setup, drain, a background or a spawned task: the run cannot be trusted
            self.abort(TaskFailed(task.kind, err))

    def abort(self, err: Exception) -> None:
        """Stop the run: whoever awaits :attr:`failure` gets ``err``."""
        if not self.failure.done():
            self.failure.set_result(None)
            self.failure_error = err

    async def run_to_end(self, gen: Any, kind: TaskKind | str = TaskKind.SETUP) -> Any:
        """Run one generator (setup, drain) to completion; raise if the run failed meanwhile."""
        finished: asyncio.Future[Any] = self.loop.create_future()
        def done(_task: Task, value: Any) -> None:
            if not finished.done():
                finished.set_result(value)

        self.start(gen, done, math.inf, None, TaskKind(kind))
        await self.until(finished)
        return finished.result()

    async def until(self, awaitable: asyncio.Future[Any]) -> None:
        """Wait for ``awaitable`` unless the run fails first (then raise the failure)."""
        await asyncio.wait([awaitable, self.failure], return_when=asyncio.FIRST_COMPLETED)
        if self.failure.done() and self.failure_error is not None:
            raise self.failure_error
