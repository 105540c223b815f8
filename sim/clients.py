"""Buyers: open-loop arrivals (burst, Poisson) and closed-loop users, and their log.

Open-loop clients replay an arrival schedule drawn in advance from the
arrivals stream (:mod:`engine.workload`), so every strategy meets the same
buyers; latency runs from the intended send time, so a slow server cannot
hide its queue by slowing the senders (no coordinated omission).

Each request goes to an app instance chosen by the router (``app.routing``)
and reaches it one client hop (``network.client``) after it was sent; the
answer travels the hop back (added by the interpreter, :attr:`Task.lag`).

Given a ``servable(qty)`` check (exact state, see :meth:`engine.strategy.Strategy.servable`),
the clients record for every refused buyer whether its quantity could have been served at the
instant of the refusal, and for every buyer who times out, at the instant its patience ran
out (open loop: the deadlines, sorted like the arrivals, are merged into the event loop).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import simpy

from engine.distributions import sampler
from engine.model import Outcome, Request
from engine.scenario import AppConfig, Workload
from engine.streams import Streams
from engine.workload import QtyStream, Schedule
from sim.app import ClientHop, Router
from sim.interpreter import Interpreter, Task
from sim.kernel import Call, run_with_arrivals, schedule_call

TIMEOUT = Outcome.TIMEOUT
ERROR = Outcome.ERROR

Progress = Callable[[int, int | None], None]
Servable = Callable[[int], bool]
SOLD_OUT = Outcome.SOLD_OUT


class RequestLog:
    """Columnar per-request records (no object per request survives the request)."""

    def __init__(self, capacity: int = 1024):
        self.size = 0
        self._alloc(max(capacity, 16))

    def _alloc(self, capacity: int) -> None:
        def grow(name: str, dtype: str, fill: float = 0) -> np.ndarray:
            new = np.full(capacity, fill, dtype=dtype)
            old = getattr(self, name, None)
            if old is not None:
                new[: len(old)] = old
            return new

        self.t_arrival = grow("t_arrival", "f8", np.nan)
        self.t_done = grow("t_done", "f8", np.nan)
        self.qty = grow("qty", "i8")
        self.outcome = grow("outcome", "i1", -1)
        self.node = grow("node", "i2", -1)
        self.ops = grow("ops", "i4")
        self.servable = grow("servable", "i1", -1)  # refused / timed out while servable: 1, else 0; -1 n/a
        self.capacity = capacity

    def add(self, t_arrival: float, qty: int) -> int:
        i = self.size
        if i == self.capacity:
            self._alloc(self.capacity * 2)
        self.t_arrival[i] = t_arrival
        self.qty[i] = qty
        self.size = i + 1
        return i

    def finish(self, i: int, t_done: float, outcome: int, node: int, ops: int) -> None:
        self.t_done[i] = t_done
        self.outcome[i] = outcome
        self.node[i] = node
        self.ops[i] = ops


class Retries:
    """Client retries (``workload.retry``): after a timeout or an error, up to ``retry`` more attempts of
    the same request (same id: the strategy's idempotency key), each after a ``workload.backoff`` wait.

    Each attempt has the whole ``workload.timeout`` from its own send; the request's latency still runs
    from its first intended send. Only the last attempt's outcome is logged.
    """

    def __init__(self, workload: Workload, streams: Streams):
        self.limit = workload.retry
        self.timeout = workload.timeout
        self.backoff = sampler(workload.backoff, streams.generator("retry"))
        self.attempts: dict[int, int] = {}  # request -> retries so far
        self.deadlines: dict[int, float] = {}  # request -> its last attempt's deadline, from t0

    def again(self, i: int, outcome: Outcome) -> float | None:
        """The wait before retrying request ``i`` after ``outcome``, or None: it is over."""
        if outcome is not TIMEOUT and outcome is not ERROR:
            return None
        done = self.attempts.get(i, 0)
        if done >= self.limit:
            return None
        self.attempts[i] = done + 1
        return self.backoff()

    def figures(self) -> dict[str, float]:
        return {"client_retries": sum(self.attempts.values()), "retried_buyers": len(self.attempts)}


class OpenLoopClients:
    """Sends request i at ``t0 + schedule.times[i]``, whatever happened before."""

    def __init__(self, env: simpy.Environment, interpreter: Interpreter, deduct: Callable,
                 schedule: Schedule, timeout: float, on_all_done: Callable[[], object],
                 progress: Progress | None = None, routes: np.ndarray | None = None,
                 hop: ClientHop | None = None, servable: Servable | None = None, retries: Retries | None = None):
        self.env = env
        self.interpreter = interpreter
        self.deduct = deduct
        self.retries = retries
        self.times = schedule.times.tolist()
        self.qtys = schedule.qty.tolist()
        self.apps = routes.tolist() if routes is not None else [0] * len(self.times)  # instance per request
        # A constant client hop shifts every arrival at the app by the same amount (no event);
        # a random one delays each by its own draw (an event per request).
        self.hop = hop if hop is not None and not hop.constant else None
        self.shift = hop.mean if hop is not None and hop.constant else 0.0
        self.timeout = timeout
        self.on_all_done = on_all_done
        self.progress = progress
        self.log = RequestLog(0)
        self.log._alloc(max(len(self.times), 16))
        self.log.t_arrival[: len(self.times)] = schedule.times
        self.log.qty[: len(self.times)] = schedule.qty
        self.log.size = len(self.times)
        self.next = 0
        self.pending = 0
        self.t0 = 0.0
        self.servable = servable
        self._patience = timeout if servable is not None else math.inf

    def start(self) -> None:
        self.t0 = self.env.now
        if not self.times:
            self.on_all_done()

    def run(self, until: simpy.Event) -> None:
        """Run the environment until ``until`` fires, feeding arrivals as it goes.

        Arrivals are merged into the event loop straight from the sorted
        schedule instead of taking a heap entry each (see :func:`run_with_arrivals`);
        with a servable check, so are the requests' deadlines.
        """
        # arrivals at the app: one client hop after the intended send; deadlines stay
        # ``timeout`` after the intended send, hence the patience net of the shift
        run_with_arrivals(self.env, until, self.t0 + self.shift, self.times, self._arrive,
                          self._patience - self.shift, self._expire if self.servable is not None else None)

    def _arrive(self, i: int) -> None:
        n = len(self.times)
        self.next = i + 1
        if self.progress is not None and (i & 0x3FFF) == 0:
            self.progress(i, n)
        self.pending += 1
        if self.hop is not None:
            schedule_call(self.env, self.hop.draw(), self._reach, i)
            return
        t = self.times[i]
        app = self.apps[i]
        self.interpreter.start_request(self.deduct(Request(i, self.qtys[i], t, app)), self._done,
                                       self.t0 + t + self.timeout, i, app)

    def _reach(self, event: Call) -> None:
        """A request reaches its instance after a random client hop."""
        i = event.value
        t = self.times[i]
        app = self.apps[i]
        self.interpreter.start_request(self.deduct(Request(i, self.qtys[i], t, app)), self._done,
                                       self.t0 + t + self.timeout, i, app)

    def _expire(self, i: int) -> None:
        """Request ``i``'s patience runs out now: if it is still pending, it will time out."""
        if self.log.outcome[i] < 0 and self.servable is not None:
            self.log.servable[i] = self.servable(self.qtys[i])

    def figures(self) -> dict[str, float]:
        return self.retries.figures() if self.retries is not None else {}

    def _retry(self, i: int, wait: float) -> None:
        """Send request ``i`` again after ``wait``: same id, same instance, a new deadline."""
        assert self.retries is not None
        send = self.env.now + wait
        self.retries.deadlines[i] = send - self.t0 + self.timeout
        schedule_call(self.env, wait + (self.hop.draw() if self.hop is not None else self.shift), self._resend, i)

    def _resend(self, event: Call) -> None:
        i = event.value
        assert self.retries is not None
        app = self.apps[i]
        self.interpreter.start_request(self.deduct(Request(i, self.qtys[i], self.times[i], app)), self._done,
                                       self.t0 + self.retries.deadlines[i], i, app)

    def _done(self, task: Task, outcome: Outcome) -> None:
        i = task.tag
        if self.retries is not None:
            wait = self.retries.again(i, outcome)
            if wait is not None:
                self._retry(i, wait)
                return
        if outcome is TIMEOUT:
            t_done = self.times[i] + self.timeout
            if self.retries is not None:
                t_done = self.retries.deadlines.get(i, t_done)
        else:
            t_done = self.env.now + task.lag - self.t0
            if outcome is SOLD_OUT and self.servable is not None:
                self.log.servable[i] = self.servable(self.qtys[i])
        log = self.log
        log.t_done[i] = t_done
        log.outcome[i] = outcome._value_
        log.node[i] = task.node
        log.ops[i] = task.ops
        self.pending -= 1
        if self.pending == 0 and self.next == len(self.times):
            if self.progress is not None:
                self.progress(len(self.times), len(self.times))
            self.on_all_done()


class ClosedLoopUsers:
    """``users`` buyers, each sending, waiting (or timing out), thinking, sending again."""

    def __init__(self, env: simpy.Environment, interpreter: Interpreter, deduct: Callable,
                 workload: Workload, streams: Streams, on_all_done: Callable[[], object],
                 progress: Progress | None = None, app: AppConfig | None = None, hop: ClientHop | None = None,
                 servable: Servable | None = None, retries: Retries | None = None):
        self.env = env
        self.retries = retries
        self._requests: dict[int, Request] = {}  # with retries: each pending request, to send it again
        self.interpreter = interpreter
        self.deduct = deduct
        self.workload = workload
        self.timeout = workload.timeout
        self.on_all_done = on_all_done
        self.progress = progress
        self._think = sampler(workload.think, streams.generator("think"))
        self._next_qty = QtyStream(workload.qty, streams.generator("qty"))
        self._route = Router(app or AppConfig(instances=1), streams.generator("routing"))
        self.hop = hop
        self.log = RequestLog(workload.users * 8)
        self.servable = servable
        self.active = 0
        self.t0 = 0.0
        self.end = 0.0

    def start(self) -> None:
        self.t0 = self.env.now
        self.end = self.t0 + self.workload.duration
        self.active = self.workload.users
        for _ in range(self.workload.users):
            self._send()

    def _send(self, _event: simpy.Event | None = None) -> None:
        now = self.env.now
        if now >= self.end:
            self.active -= 1
            if self.active == 0:
                self.on_all_done()
            return
        t = now - self.t0
        i = self.log.add(t, self._next_qty())
        if self.progress is not None and (i & 0x3FFF) == 0:
            self.progress(i, None)
        app = self._route()
        request = Request(i, int(self.log.qty[i]), t, app)
        if self.hop is not None:  # the request reaches its instance one client hop later
            schedule_call(self.env, self.hop.draw(), self._reach, (request, now + self.timeout))
        else:
            self._start(request, now + self.timeout)

    def _reach(self, event: Call) -> None:
        self._start(*event.value)

    def _again(self, event: Call) -> None:
        i = event.value
        assert self.retries is not None
        self._start(self._requests[i], self.t0 + self.retries.deadlines[i])

    def figures(self) -> dict[str, float]:
        return self.retries.figures() if self.retries is not None else {}

    def _start(self, request: Request, deadline: float) -> None:
        if self.retries is not None:
            self._requests[request.id] = request
        task = self.interpreter.start_request(self.deduct(request), self._done, deadline, request.id, request.app)
        if not task.finished and math.isfinite(self.timeout):
            schedule_call(self.env, max(0.0, deadline - self.env.now), self._expire, task)

    def _expire(self, event: Call) -> None:
        task: Task = event.value
        if task.finished:
            return
        task.finished = True
        task.gen.close()
        if self.servable is not None:  # at the instant its patience ran out
            self.log.servable[task.tag] = self.servable(int(self.log.qty[task.tag]))
        self._done(task, Outcome.TIMEOUT)

    def _done(self, task: Task, outcome: Outcome) -> None:
        i = task.tag
        now = self.env.now
        if self.retries is not None:
            wait = self.retries.again(i, outcome)
            if wait is not None:  # the same request again after the backoff, with a deadline of its own
                send = now + wait
                self.retries.deadlines[i] = send - self.t0 + self.timeout
                if self.hop is not None:
                    schedule_call(self.env, wait + self.hop.draw(), self._reach, (self._requests[i], send + self.timeout))
                else:
                    schedule_call(self.env, wait, self._again, i)
                return
            self._requests.pop(i, None)
        t_done = self.log.t_arrival[i] + self.timeout if outcome == Outcome.TIMEOUT else now + task.lag - self.t0
        if outcome == Outcome.TIMEOUT and self.retries is not None:
            t_done = self.retries.deadlines.get(i, t_done)
        if outcome is SOLD_OUT and self.servable is not None:
            self.log.servable[i] = self.servable(int(self.log.qty[i]))
        self.log.finish(i, t_done, int(outcome), task.node, task.ops)
        # the user thinks once the answer (or its own timeout) has reached it
        schedule_call(self.env, self._think() + max(0.0, self.t0 + t_done - now), self._send)
