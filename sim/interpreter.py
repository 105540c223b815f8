"""The SimPy interpreter of engine generators.

A :class:`Task` wraps one generator (a buyer's request, a background trigger,
a drain). :meth:`Interpreter.resume` sends it the result of its last op and
runs it until it yields an op that costs time; that op is handed to the
component that models it (a Redis node, the network, a sleep), which calls
:meth:`Interpreter.wake` when the result is ready. No SimPy ``Process`` per
request: a request costs one event per hop it really waits for.

With the app tier on (:mod:`sim.app`), a request's task runs on an app
instance: each stretch of generator work is a segment on the instance's CPU
and its end is folded into the hop that follows (the op's network delay, a
sleep, the response's client hop), so the tier adds no event to a Redis round
trip unless a segment has to wait for a worker.

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
from heapq import heapreplace
from typing import Any

import simpy

from engine.gate.admission import Gate
from engine.model import Outcome
from engine.ops import Eval, Now, Sleep, Spawn
from engine.pipeline.ops import Publish
from engine.tasks import StrategyErrors, TaskFailed, TaskKind
from sim.app import RECEIVE, SEND, AppTier, ClientHop, Instance
from sim.kernel import Call, schedule_call

Done = Callable[["Task", Any], object]


class Task:
    """One running engine generator."""

    __slots__ = ("gen", "done", "deadline", "node", "ops", "reply", "tag", "kind", "finished", "app", "cpu", "charge",
                 "lag")

    def __init__(self, gen: Any, done: Done, deadline: float = math.inf, tag: Any = None,
                 kind: TaskKind = TaskKind.REQUEST, app: int = 0, cpu: Instance | None = None, charge: float = 0.0):
        self.gen = gen
        self.done = done
        self.deadline = deadline
        self.node = -1  # last Redis node this task talked to
        self.ops = 0  # ops that left the app (server round trips)
        self.reply: Any = None
        self.tag = tag  # the owner's bookkeeping (e.g. request index)
        self.kind = kind
        self.finished = False
        self.app = app  # the app instance it runs on (the fleet's background: the pipeline service, index instances)
        self.cpu = cpu  # the app instance whose CPU runs it (None: CPU is free)
        self.charge = charge  # CPU owed, paid in the next segment
        self.lag = 0.0  # a finished request: seconds from now until the buyer has the answer


class Interpreter:
    """Runs engine generators in a SimPy environment.

    ``handlers`` maps op classes beyond Eval/Now/Sleep/Spawn (SQL, MQ, ...) to
    callables ``handler(task, op)`` that must eventually call :meth:`wake`.
    """

    def __init__(self, env: simpy.Environment, cluster: Any, app: AppTier | None = None,
                 client_hop: ClientHop | None = None, gates: list[Gate] | None = None):
        self.env = env
        self.gates = gates  # the gate of each app instance (None: no admission control)
        self.cluster = cluster
        self.handlers: dict[type, Callable[[Task, Any], None]] = {}
        self.stopping = False  # set when the sale is over: background and spawned tasks end at their next wake
        self.spawned = 0  # live tasks started by Spawn ops
        self.on_quiet: list[Callable[[], object]] = []  # called once when no spawned task is left
        self.errors = StrategyErrors()  # requests ended by an exception of their strategy
        self.app = app  # the app tier when its CPU costs anything (else requests run for free)
        self.client_hop = client_hop  # app -> buyer delay of a response (None: none)
        self._cpu_request = app.cpu_request if app is not None else None
        self._cpu_op = app.cpu_op if app is not None else None
        self._cpu_arg = app.config.cpu_arg if app is not None else 0.0  # per key and argument of an Eval
        self._respond_late = app is not None or client_hop is not None  # a request's answer is not instant
        # The fleet's background tasks (the pipeline's triggers and consumers) run on the pipeline
        # service's CPU, as in their own process in real mode; an instance's own background work
        # (world.py) on that instance; a spawned task on its spawner's. Half of app.cpu_record per
        # record is charged when a batch is published, half when it is delivered to a consumer.
        self._background_cpu = app.service if app is not None else None
        self.record_cost = app.config.cpu_record / 2 if app is not None else 0.0
        # Faults (sim.faults sets these when the scenario has any): the exception type a fault raises in
        # a task (a request it ends is an ``error``, not a strategy error; any other task it ends is
        # noted in ``fault_ended`` instead of stopping the run).
        # Once a fault has lost data (``data_lost``), an exception in a task other than a request (a
        # trigger, a refill, the drain, finding keys gone) is its consequence: noted, and the run goes on.
        self.fault_error: type[Exception] | None = None
        self.fault_ended: dict[str, list[float]] = {}  # what ended them -> [how many, first time]
        self.data_lost = False

    def start(self, gen: Any, done: Done, deadline: float = math.inf, tag: Any = None,
              kind: TaskKind = TaskKind.REQUEST, cpu: Instance | None = None) -> Task:
        if kind is TaskKind.BACKGROUND and cpu is None:
            cpu = self._background_cpu
        task = Task(gen, done, deadline, tag, kind, 0 if cpu is None else cpu.index, cpu)
        self.resume(task, None)
        return task

    def start_request(self, gen: Any, done: Done, deadline: float, tag: Any, instance: int) -> Task:
        """Start a buyer's request on app instance ``instance`` (it has just reached it).

        With a gate (``gate.rate``), the instance's gate decides first, at no server op: the
        strategy runs now, or once the buyer's wait in the room is over, or never (the buyer
        is refused by the gate now, or after waiting ``gate.max_wait``).
        """
        if self._cpu_request is None:
            task = Task(gen, done, deadline, tag, TaskKind.REQUEST, instance)
        else:
            task = Task(gen, done, deadline, tag, TaskKind.REQUEST, instance,
                        self.app.instances[instance], self._cpu_request())  # type: ignore[union-attr]
        if self.gates is not None:
            now = self.env.now
            ticket = self.gates[instance].arrive(now)
            if not ticket.admitted:
                if ticket.at > now:
                    schedule_call(self.env, ticket.at - now, self._gate_refused, task)
                else:
                    self._refuse(task)
                return task
            if ticket.at > now:  # in the waiting room: the strategy runs when its token comes
                self.wake_after(ticket.at - now, task, None)
                return task
        self.resume(task, None)
        return task

    def _gate_refused(self, event: Call) -> None:
        task = event.value
        if not task.finished:  # not abandoned by its buyer meanwhile (closed-loop timer)
            self._refuse(task)

    def _refuse(self, task: Task) -> None:
        """The gate refuses the request: answered by the app like a local refusal, no server op."""
        task.finished = True
        task.gen.close()
        if self._respond_late:
            self._respond(task, Outcome.GATED)
            return
        task.done(task, Outcome.TIMEOUT if self.env.now > task.deadline else Outcome.GATED)

    def resume(self, task: Task, value: Any) -> None:
        send = task.gen.send
        env = self.env
        while True:
            try:
                op = send(value)
            except StopIteration as stop:
                task.finished = True
                if self._respond_late and task.kind is TaskKind.REQUEST:
                    self._respond(task, stop.value)
                    return
                task.done(task, stop.value)
                return
            except Exception as err:  # the strategy raised (not the simulator: its errors propagate)
                self._crashed(task, err)
                return
            kind = op.__class__
            if kind is Eval:
                task.ops += 1
                cpu = task.cpu
                if cpu is None:
                    self.cluster.submit(op, task)
                    return
                cost = task.charge + self._cpu_op()  # type: ignore[misc]
                if self._cpu_arg:
                    cost += self._cpu_arg * (len(op.keys) + len(op.args))
                task.charge = 0.0
                now = env.now
                free = cpu.free
                if free[0] <= now and cpu.plain:  # a worker is idle: Instance.run inlined (the hot path)
                    cpu.segments += 1
                    if cost > 0.0:
                        heapreplace(free, now + cost)
                        cpu.busy += cost
                    self.cluster.submit(op, task, cost)  # sent ``cost`` from now: folded into the hop
                    return
                # it waits for a worker (or for one to wake): send it at the segment's end; it handled a reply
                # first unless it is the task's first op
                start = cpu.run(now, cost, SEND | RECEIVE if task.ops > 1 else SEND)
                if start == now:
                    self.cluster.submit(op, task, cpu.charged)
                else:
                    schedule_call(env, start + cpu.charged - now, self._submit, (op, task))
                return
            if kind is Now:
                value = env.now
                continue
            if kind is Sleep:
                delay = op.seconds
                if task.cpu is not None:
                    delay += self._segment(task, 0.0) - env.now
                self.wake_after(delay, task, None)
                return
            if kind is Spawn:  # local: no round trip, so not counted in ops; its CPU goes on the next segment
                self.spawn(op.gen, task.cpu)
                self.wake_after(0.0, task, None)
                return
            handler = self.handlers.get(kind)
            if handler is None:
                raise TypeError(f"the simulator has no handler for op {op!r}")
            task.ops += 1
            if task.cpu is not None:
                cost = self._cpu_op()  # type: ignore[misc]
                if self.record_cost and kind is Publish:  # the producer's half of the per-record CPU
                    cost += self.record_cost * op.records
                delay = self._segment(task, cost) - env.now
                if delay > 0.0:
                    schedule_call(env, delay, self._handle, (task, op))
                    return
            handler(task, op)
            return

    def _segment(self, task: Task, cost: float) -> float:
        """Run the task's CPU owed plus ``cost`` on its instance from now; return when it ends."""
        cost += task.charge
        task.charge = 0.0
        cpu = task.cpu
        return cpu.run(self.env.now, cost) + cpu.charged  # type: ignore[union-attr]

    def _submit(self, event: Call) -> None:
        op, task = event.value
        self.cluster.submit(op, task)

    def _respond(self, task: Task, outcome: Any) -> None:
        """A request's last segment (a local refusal's cost, if it never left the app) and the hop to the buyer."""
        now = self.env.now
        end = now
        cpu = task.cpu
        if cpu is not None:
            cost = task.charge + (self.app.cpu_refusal() if task.ops == 0 else 0.0)  # type: ignore[union-attr]
            if cost > 0.0 or cpu.free[0] > now or not cpu.plain:
                task.charge = 0.0
                end = cpu.run(now, cost, RECEIVE if task.ops > 0 else 0) + cpu.charged  # a local refusal does no I/O
            else:  # nothing to pay and a worker idle: the common case, kept cheap
                cpu.segments += 1
        hop = self.client_hop
        if hop is not None:
            end += hop.mean if hop.constant else hop.draw()
        if end > task.deadline:  # the buyer gave up before the answer reached it
            outcome = Outcome.TIMEOUT
        task.lag = end - now
        task.done(task, outcome)

    def _handle(self, event: Call) -> None:
        task, op = event.value
        self.handlers[op.__class__](task, op)

    def spawn(self, gen: Any, cpu: Instance | None = None) -> Task:
        """Start ``gen`` as a task of kind SPAWN (on ``cpu``, its spawner's instance); :attr:`on_quiet`
        fires when the last one ends."""
        self.spawned += 1
        return self.start(gen, self._spawn_done, math.inf, None, TaskKind.SPAWN, cpu)

    def _spawn_done(self, _task: Task, _value: Any) -> None:
        self.spawned -= 1
        if self.spawned == 0 and self.on_quiet:
            waiters, self.on_quiet = self.on_quiet, []
            for waiter in waiters:
                waiter()

    def _crashed(self, task: Task, err: Exception) -> None:
        """The failure rule of :mod:`engine.tasks`: a request errs, any other task stops the run."""
        task.finished = True
        if self.fault_error is not None:
            caused = isinstance(err, self.fault_error)
            if caused and task.kind is TaskKind.REQUEST:
                task.done(task, Outcome.ERROR)
                return
            if task.kind is not TaskKind.REQUEST and (caused or self.data_lost):
                seen = self.fault_ended.setdefault(f"{task.kind.name.lower()} task ended by "
                                                   f"{err.__class__.__name__}: {err}", [0, self.env.now])
                seen[0] += 1
                task.done(task, None)
                return
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

    def fail(self, task: Task, err: Exception) -> bool:
        """Raise ``err`` in ``task`` at its pending op, now (a fault: the op's connection failed).

        The same checks as :meth:`resume_checked` come first (abandoned, past its deadline, the sale over);
        returns whether ``err`` was raised (False: the task had ended, or ends otherwise, e.g. timed out).
        """
        if task.finished:
            return False
        if self.env.now > task.deadline or (self.stopping and task.kind.ends_when_stopped):
            self.resume_checked(task)
            return False
        task.gen = _Throw(task, err)
        self.resume(task, None)
        return True

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



class _Throw:
    """Stands in for a task's generator for one :meth:`Interpreter.resume`: its first ``send`` throws
    the error into the generator (and puts the generator back), later ones are plain sends."""

    __slots__ = ("task", "gen", "err")

    def __init__(self, task: Task, err: Exception):
        self.task = task
        self.gen = task.gen
        self.err: Exception | None = err

    def send(self, value: Any) -> Any:
        err = self.err
        if err is None:
            return self.gen.send(value)
        self.err = None
        self.task.gen = self.gen
        return self.gen.throw(err)

    def close(self) -> None:
        self.gen.close()
