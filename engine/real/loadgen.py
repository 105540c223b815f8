"""Buyers against real servers: one worker process's share of the load.

The coordinator (:mod:`engine.real.run`) forks ``workers`` processes after
setup, so each starts with the strategy's app state as setup left it (like app
servers started after a deploy). Worker ``k`` of ``W``:

- open loop: sends request ``i`` (for ``i % W == k``) of the scenario's own
  arrival schedule at ``t0 + times[i]`` on the shared monotonic clock, whatever
  happened before; latency runs from that intended instant;
- closed loop: runs users ``u % W == k``, each sending, waiting, thinking;
- each worker runs the background work of the app instances it hosts (a
  sharded registry's refreshers), and, once its buyers are done, waits for the
  tasks they spawned (refills, DB moves) before the barrier.

One more process, the pipeline service (:attr:`WorkerPlan.service`), runs the
fleet's background work (the async pipeline's triggers and consumers) and,
once every worker's buyers are done (the barrier), the strategy's drain.

Each worker process is the app tier's CPU for the instances it hosts
(:func:`hosted`): worker ``k`` plays instances ``k, k + W, ...`` and routes
its requests over them (``app.routing``), so with ``W`` dividing
``app.instances`` round robin sends request ``i`` to instance
``i % app.instances`` exactly as the simulator does.

Each worker returns columnar arrays (no object per request survives it).
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.distributions import sampler
from engine.gate.admission import Gate, GateStats, fleet, merged
from engine.model import Outcome, Request
from engine.real.interpreter import RealInterpreter, Task
from engine.real.target import TargetError
from engine.scenario import Scenario
from engine.streams import Streams
from engine.workload import QtyStream, Schedule


def hosted(worker: int, workers: int, instances: int) -> list[int]:
    """The app instances worker process ``worker`` of ``workers`` plays.

    Each instance lives in exactly one process while ``workers <= instances``;
    beyond that, worker ``k`` plays instance ``k % instances`` with its own copy
    of the state (more instances than the scenario declares).
    """
    return list(range(worker, instances, workers)) or [worker % instances]


class InstanceRouter:
    """Picks the instance of each request this worker sends: round robin or random over its own."""

    def __init__(self, plan: WorkerPlan):
        app = plan.scenario.app
        self.hosted = hosted(plan.index, plan.workers, app.instances)
        self.rng = np.random.default_rng([plan.seed, plan.index, 0xA99]) if app.routing == "random" else None
        self.sent = 0

    def __call__(self) -> int:
        if self.rng is not None:
            return self.hosted[int(self.rng.integers(len(self.hosted)))]
        k = self.hosted[self.sent % len(self.hosted)]
        self.sent += 1
        return k


class Admission:
    """The gate of each instance this worker hosts, in front of the strategy (``gate`` section).

    A buyer's request is started only once its instance's gate lets it through: at
    once, or when its wait in the waiting room is over (a loop timer: the room really
    waits); a refused buyer is answered "refused by the gate" (:attr:`Outcome.GATED`)
    without running the strategy. With the gate off it is ``interpreter.start``.
    """

    def __init__(self, interpreter: RealInterpreter, plan: WorkerPlan):
        self.interpreter = interpreter
        app = plan.scenario.app
        gates = fleet(plan.scenario.gate, app.instances)
        self.gates: dict[int, Gate] | None = (
            None if gates is None else {k: gates[k] for k in hosted(plan.index, plan.workers, app.instances)})

    def start(self, gen: Any, done: Callable, deadline: float, tag: Any, instance: int) -> Task:
        interpreter = self.interpreter
        if self.gates is None:
            return interpreter.start(gen, done, deadline, tag)
        loop = interpreter.loop
        now = loop.time()
        ticket = self.gates[instance].arrive(now)
        if ticket.admitted and ticket.at <= now:
            return interpreter.start(gen, done, deadline, tag)
        task = Task(gen, done, deadline, tag)  # not started: the strategy has not run yet
        if ticket.admitted:  # the room: wake() starts it, or times it out if its buyer has gone
            loop.call_at(ticket.at, interpreter.wake, task, None)
        elif ticket.at <= now:
            self._refuse(task)
        else:
            loop.call_at(ticket.at, self._refuse, task)
        return task

    def _refuse(self, task: Task) -> None:
        if task.finished:  # its buyer gave up first (closed-loop timer)
            return
        task.finished = True
        task.gen.close()
        task.done(task, Outcome.TIMEOUT if self.interpreter.loop.time() > task.deadline else Outcome.GATED)

    def stats(self) -> GateStats | None:
        return None if self.gates is None else merged(list(self.gates.values()))


YIELD_EVERY = 128  # arrivals released before letting the lanes write (when the sender is behind)
STUCK_AFTER = 60.0  # seconds past the last client deadline after which unanswered requests stop the run


async def wait_answered(interpreter: RealInterpreter, done: asyncio.Future[None], end: float, pending: Any) -> None:
    """Wait for every request's answer; a reply that never comes stops the run instead of hanging it."""
    limit = end + STUCK_AFTER - interpreter.loop.time()
    if not math.isfinite(limit):
        await interpreter.until(done)
        return
    try:
        await asyncio.wait_for(interpreter.until(done), max(limit, 1.0))
    except TimeoutError:
        raise TargetError(f"{pending()} request(s) still unanswered {STUCK_AFTER:g} s after their client "
                          f"deadline; a server stopped answering") from None


@dataclass
class WorkerPlan:
    """What one worker process does; built by the coordinator before the fork."""

    index: int
    workers: int
    scenario: Scenario
    seed: int
    origin: float  # loop time of Now() == 0
    t0: float  # loop time of the sale start
    schedule: Schedule | None  # open loop: the whole schedule (the worker takes its share)
    barrier: Any  # multiprocessing.Barrier shared by the workers and the pipeline service
    progress: Any  # multiprocessing.Array('q', workers): requests finished per worker
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def service(self) -> bool:
        """This process is the pipeline service (index ``workers``), not a load generator."""
        return self.index >= self.workers


@dataclass
class WorkerLog:
    """Per-request columns of one worker (open loop: indexed by schedule position)."""

    index: np.ndarray
    t_arrival: np.ndarray
    t_done: np.ndarray
    outcome: np.ndarray
    qty: np.ndarray
    node: np.ndarray
    ops: np.ndarray
    lag: np.ndarray | None = None  # open loop: seconds each request left after its intended instant


class OpenLoopSender:
    """Sends this worker's share of an arrival schedule at the intended instants."""

    def __init__(self, interpreter: RealInterpreter, deduct: Callable, plan: WorkerPlan):
        assert plan.schedule is not None
        self.interpreter = interpreter
        self.deduct = deduct
        self.plan = plan
        self.indices = np.arange(plan.index, len(plan.schedule), plan.workers)
        self.times = plan.schedule.times[self.indices].tolist()
        self.qtys = plan.schedule.qty[self.indices].tolist()
        n = len(self.indices)
        shared = plan.extra.get("shared")
        if shared is None:
            self.t_done = np.full(n, np.nan)
            self.outcome = np.full(n, -1, dtype=np.int8)
            self.node = np.full(n, -1, dtype=np.int16)
            self.ops = np.zeros(n, dtype=np.int32)
            self.lag = np.zeros(n)
        else:  # the coordinator's shared memory (engine.real.run.shared_columns): readable if this process dies
            self.t_done = np.frombuffer(shared["t_done"], dtype=np.float64)[:n]
            self.outcome = np.frombuffer(shared["outcome"], dtype=np.int8)[:n]
            self.node = np.frombuffer(shared["node"], dtype=np.int16)[:n]
            self.ops = np.frombuffer(shared["ops"], dtype=np.int32)[:n]
            self.lag = np.frombuffer(shared["lag"], dtype=np.float64)[:n]
        self.pending = 0
        self.finished = 0
        self.admission = Admission(interpreter, plan)
        self.all_done: asyncio.Future[None] = interpreter.loop.create_future()

    async def run(self) -> None:
        loop = self.interpreter.loop
        t0 = self.plan.t0
        timeout = self.plan.scenario.workload.timeout
        start = self.admission.start
        ids = self.indices.tolist()
        route = InstanceRouter(self.plan)
        lag = self.lag
        for j, t in enumerate(self.times):
            t_send = t0 + t
            if t_send > loop.time():
                await asyncio.sleep(t_send - loop.time())
            elif j % YIELD_EVERY == YIELD_EVERY - 1:
                await asyncio.sleep(0)
            lag[j] = loop.time() - t_send
            self.pending += 1
            app = route()
            start(self.deduct(Request(ids[j], self.qtys[j], t, app)), self._done, t_send + timeout, j, app)
        if self.pending == 0 and not self.all_done.done():
            self.all_done.set_result(None)
        end = t0 + (self.times[-1] if self.times else 0.0) + timeout
        await wait_answered(self.interpreter, self.all_done, end, lambda: self.pending)

    def _done(self, task: Task, outcome: Outcome) -> None:
        j = task.tag
        if outcome == Outcome.TIMEOUT:
            self.t_done[j] = self.times[j] + self.plan.scenario.workload.timeout
        else:
            self.t_done[j] = self.interpreter.loop.time() - self.plan.t0
        self.outcome[j] = outcome
        self.node[j] = task.node
        self.ops[j] = task.ops
        self.pending -= 1
        self.finished += 1
        if self.finished & 0xFF == 0:
            self.plan.progress[self.plan.index] = self.finished
        if self.pending == 0 and self.finished == len(self.times) and not self.all_done.done():
            self.all_done.set_result(None)

    def log(self) -> WorkerLog:
        return WorkerLog(self.indices, np.asarray(self.times), self.t_done, self.outcome,
                         np.asarray(self.qtys, dtype=np.int64), self.node, self.ops, self.lag)


class ClosedLoopUsers:
    """This worker's users: send, wait (or time out), think, send again until the end."""

    def __init__(self, interpreter: RealInterpreter, deduct: Callable, plan: WorkerPlan):
        self.interpreter = interpreter
        self.deduct = deduct
        self.plan = plan
        workload = plan.scenario.workload
        self.workload = workload
        streams = Streams(plan.seed)
        if plan.workers == 1:  # exactly the simulator's streams
            think_rng, qty_rng = streams.generator("think"), streams.generator("qty")
        else:
            think_rng = streams.generators("think", plan.workers)[plan.index]
            qty_rng = streams.generators("qty", plan.workers)[plan.index]
        self._think = sampler(workload.think, think_rng)
        self._next_qty = QtyStream(workload.qty, qty_rng)
        self._route = InstanceRouter(plan)
        self.admission = Admission(interpreter, plan)
        self.users = len(range(plan.index, workload.users, plan.workers))
        self.rows: list[tuple[float, float, int, int, int, int]] = []  # t_arrival, t_done, outcome, qty, node, ops
        self._sent: dict[int, tuple[float, int]] = {}
        self._count = 0
        self.active = 0
        self.end = plan.t0 + workload.duration
        self.all_done: asyncio.Future[None] = interpreter.loop.create_future()

    async def run(self) -> None:
        self.active = self.users
        for _ in range(self.users):
            self._send()
        if self.users == 0:
            self.all_done.set_result(None)
        await wait_answered(self.interpreter, self.all_done, self.end + self.workload.timeout, lambda: len(self._sent))

    @property
    def finished(self) -> int:
        """Requests answered (or given up) so far."""
        return len(self.rows)

    def _send(self) -> None:
        loop = self.interpreter.loop
        now = loop.time()
        if now >= self.end:
            self.active -= 1
            if self.active == 0 and not self.all_done.done():
                self.all_done.set_result(None)
            return
        request_id = self._count * self.plan.workers + self.plan.index  # unique over all workers
        self._count += 1
        t = now - self.plan.t0
        qty = self._next_qty()
        self._sent[request_id] = (t, qty)
        app = self._route()
        task = self.admission.start(self.deduct(Request(request_id, qty, t, app)), self._done,
                                    now + self.workload.timeout, request_id, app)
        if not task.finished and math.isfinite(self.workload.timeout):
            loop.call_later(self.workload.timeout, self._expire, task)

    def _expire(self, task: Task) -> None:
        if not task.finished:
            self.interpreter.abandon(task)
            self._done(task, Outcome.TIMEOUT)

    def _done(self, task: Task, outcome: Outcome) -> None:
        t, qty = self._sent.pop(task.tag)
        loop = self.interpreter.loop
        t_done = t + self.workload.timeout if outcome == Outcome.TIMEOUT else loop.time() - self.plan.t0
        self.rows.append((t, t_done, int(outcome), qty, task.node, task.ops))
        if len(self.rows) & 0xFF == 0:
            self.plan.progress[self.plan.index] = len(self.rows)
        loop.call_later(self._think(), self._send)

    def log(self) -> WorkerLog:
        rows = np.array(self.rows, dtype=float).reshape(-1, 6)
        return WorkerLog(np.arange(len(rows)), rows[:, 0], rows[:, 1], rows[:, 2].astype(np.int8),
                         rows[:, 3].astype(np.int64), rows[:, 4].astype(np.int16), rows[:, 5].astype(np.int32))


async def wait_barrier(barrier: Any, timeout: float) -> None:
    """Wait on a process barrier without blocking the event loop (replies keep flowing)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def settle(failure: Exception | None) -> None:
        if done.done():
            return
        if failure is None:
            done.set_result(None)
        else:
            done.set_exception(failure)

    def wait() -> None:
        try:
            barrier.wait(timeout)
            loop.call_soon_threadsafe(settle, None)
        except Exception as err:  # BrokenBarrierError: another worker failed
            loop.call_soon_threadsafe(settle, RuntimeError(f"another worker failed before the drain "
                                                           f"({err.__class__.__name__})"))

    threading.Thread(target=wait, daemon=True).start()
    await done
