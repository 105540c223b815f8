"""The app tier in simulated time: instances whose workers are a c-server FIFO CPU.

An app instance runs the strategy for the requests routed to it. Like an
asyncio server, a request holds one of the instance's ``app.workers`` only
while its CPU runs, never while it waits for Redis or the DB: each stretch of
work between two waits is a *segment*, a job on the instance's workers —

- the first, when the request reaches the instance: ``cpu_request`` (accept,
  parse, respond) plus the cost of what the strategy does next;
- one per op that leaves the app: ``cpu_op`` (issue it, handle its reply, the
  decision before it), charged in the segment that issues it;
- ``cpu_refusal`` when the request ends without any server op (a local
  sold-out), on top of ``cpu_request``;
- the last one, when the strategy returns, before the response leaves.

As in :mod:`sim.servers.redis_node`, no queue object and no event of its own:
the workers are a heap of the times each comes free, a segment submitted at
``t`` starts at ``max(t, earliest free)`` and ends after its cost, and the
interpreter folds the end into the hop that follows (the op's network delay,
a sleep, the response's client hop). A segment that starts at once adds no
event to the request; one that waits for a worker sends its op from an event
at its end, so that ops reach a Redis node in the order they really arrive
(the node queues arrivals as they are sent: folding a long wait into the hop
would let that op hold up others sent after it but arriving before).

The strategy decides when the request reaches the instance (or its reply
does); the CPU that decision needs, queueing included, delays what it sends.
When the workers queue, a decision therefore sees state up to that queueing
delay older than a real server would (see docs/app-tier.md).
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heapreplace

import numpy as np

from engine.distributions import sampler
from engine.fields import Wake
from engine.scenario import AppConfig, Dist
from sim.host import Host

SEND, RECEIVE = 1, 2  # what a segment does: issue a server op, handle a reply (Instance.run's io)


class Instance:
    """One app instance's CPU: ``workers`` cores serving segments in arrival order."""

    __slots__ = ("index", "free", "busy", "segments", "wait_total", "wait_max", "wake", "cpu_wakeup", "plain",
                 "charged", "host", "half_turn", "paid")

    def __init__(self, index: int, workers: int, wake: Wake | None = None, cpu_wakeup: float = 0.0):
        self.index = index
        self.wake = wake if wake is not None and wake.costs else None  # idle wake-up (None: instant)
        self.cpu_wakeup = cpu_wakeup  # CPU of an event-loop turn, paid by a segment that wakes an idle worker
        self.plain = self.wake is None and cpu_wakeup == 0.0  # waking costs nothing: the interpreter's fast path
        self.charged = 0.0  # the CPU the last segment really cost (its cost, plus its part of a loop turn)
        self.half_turn = cpu_wakeup / 2  # writing or reading in a turn of the event loop
        self.paid = SEND | RECEIVE  # what the running turn has paid (a new turn starts with nothing paid)
        self.host: Host | None = None  # the machine's cores it shares (host.cores; None: cores of its own)
        self.free = [0.0] * workers  # a heap of the times each worker comes free
        self.busy = 0.0  # CPU time handed out
        self.segments = 0
        self.wait_total = 0.0
        self.wait_max = 0.0

    def share(self, host: Host) -> None:
        """Run on ``host``'s cores as well as on this instance's workers (no more inlined fast path)."""
        self.host = host
        self.plain = False

    def run(self, t: float, cost: float, io: int = SEND | RECEIVE) -> float:
        """Queue a segment of ``cost`` seconds submitted at ``t``; return when it starts (it ends ``cost`` later).

        Segments must be submitted in non-decreasing ``t`` (the interpreter submits at
        the current simulated time). A zero-cost segment still waits for a free worker:
        the continuation it stands for runs on the instance's CPU. A segment that finds
        its worker idle (free before ``t``) wakes it: the wake-up delay (``app.wake``)
        comes first, and it starts a new event-loop turn. A turn's CPU (``app.cpu_wakeup``:
        the poll, the socket calls, a lone command's packing and parsing) is half for
        writing (paid by the turn's first segment that issues a server op: ``io & SEND``)
        and half for reading (its first segment that handles a reply: ``io & RECEIVE``);
        segments queued behind a busy worker share the running turn and pay only a half
        it has not paid yet. One closed-loop user (a reply and the next send in one turn)
        pays a whole turn per request, as ``calibrate`` measures it; an open-loop request
        on an idle app pays half going out and half coming back. The segment ends
        :attr:`charged` seconds after it starts.
        """
        free = self.free
        start = free[0]
        self.segments += 1
        if start > t:  # every worker busy: wait for the first to come free
            wait = start - t
            self.wait_total += wait
            if wait > self.wait_max:
                self.wait_max = wait
        else:
            if start < t:  # idle: a new turn of the event loop
                if self.wake is not None:
                    t += self.wake.delay(t - start)
                self.paid = 0
            start = t
        unpaid = io & ~self.paid
        if unpaid:
            self.paid |= unpaid
            cost += self.half_turn * ((unpaid & SEND) + ((unpaid & RECEIVE) >> 1))
        if cost > 0.0:
            self.busy += cost
            if self.host is not None:
                start = self.host.start(start, cost)  # once a core of the machine is free too
            heapreplace(free, start + cost)
        self.charged = cost
        return start

    def reset_counters(self) -> None:
        self.busy = 0.0
        self.segments = 0
        self.wait_total = 0.0
        self.wait_max = 0.0


class AppTier:
    """The fleet: its instances, the samplers of their CPU costs, and the router."""

    def __init__(self, config: AppConfig, rng: np.random.Generator):
        self.config = config
        self.instances = [Instance(k, config.workers, config.wake, config.cpu_wakeup)
                          for k in range(config.instances)]
        # The pipeline service: the fleet's background work (the async pipeline's triggers and consumers)
        # on one event loop of its own, as real mode runs it in a process of its own (engine.real.run).
        self.service = Instance(config.instances, 1, config.wake, config.cpu_wakeup)
        self.cpu_request: Callable[[], float] = sampler(config.cpu_request, rng)
        self.cpu_op: Callable[[], float] = sampler(config.cpu_op, rng)
        self.cpu_refusal: Callable[[], float] = sampler(config.cpu_refusal, rng)

    def figures(self, t0: float, t_end: float) -> dict[str, float]:
        """The tier's side of the run from ``t0``: CPU utilisation (mean, busiest instance) and queueing.

        Utilisation is over the sale (to ``t_end``) or, for an overloaded tier, until its last
        segment ends: CPU work is handed out when a segment is queued, and buyers who gave up
        leave their backlog behind.
        """
        workers = self.config.workers
        segments = sum(i.segments for i in self.instances)
        span = max(t_end, *(max(i.free) for i in self.instances)) - t0
        util = [i.busy / (workers * span) if span > 0 else float("nan") for i in self.instances]
        return {
            "app_util": float(np.mean(util)),
            "app_util_max": float(max(util)),
            "app_wait_mean": sum(i.wait_total for i in self.instances) / segments if segments else 0.0,
            "app_wait_max": max(i.wait_max for i in self.instances),
            "service_util": self.service.busy / span if span > 0 else float("nan"),
        }

    def reset_counters(self) -> None:
        for instance in (*self.instances, self.service):
            instance.reset_counters()


def routes(config: AppConfig, count: int, rng: np.random.Generator) -> np.ndarray:
    """The instance of each of ``count`` requests, in sending order."""
    if config.routing == "round_robin":
        return np.arange(count, dtype=np.int64) % config.instances
    return rng.integers(0, config.instances, count, dtype=np.int64)


class Router:
    """Routes closed-loop requests one at a time (open loop draws them all with :func:`routes`)."""

    BLOCK = 4096

    def __init__(self, config: AppConfig, rng: np.random.Generator):
        self.config = config
        self.rng = rng
        self.sent = 0
        self._left: list[int] = []

    def __call__(self) -> int:
        if self.config.routing == "round_robin":
            k = self.sent % self.config.instances
            self.sent += 1
            return k
        if not self._left:
            self._left = routes(self.config, self.BLOCK, self.rng).tolist()[::-1]
        return self._left.pop()


class ClientHop:
    """The buyer <-> app one-way delay (``network.client``): constant, or drawn per crossing."""

    __slots__ = ("constant", "mean", "draw")

    def __init__(self, hop: Dist, draw: Callable[[], float]):
        self.constant = hop.is_constant
        self.mean = float(hop.mean)
        self.draw = draw
