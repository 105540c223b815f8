"""Redis nodes in simulated time: single-threaded FIFO servers behind a network hop.

A node serves one script at a time in arrival order. Because service is FIFO,
a script's start and finish follow from the node's ``free_at`` when it
arrives, so a node needs no queue object and no event of its own: the arrival
computes the finish time and the reply is scheduled once, at finish plus the
hop back. The script's reference semantics (its Python twin) is applied to the
node's in-memory store in that same FIFO order, at the instant its service
starts: queued scripts wait in ``pending`` and are applied by :meth:`advance`,
which runs before any reply is delivered and before any outside observer
(timeline sampler, invariant check) reads the store. So every script, and every
observer, sees exactly the state a real single-threaded Redis would have.

When the hop delay is constant, arrival order at a node equals send order and
the arrival is processed at send time: one event per round trip.

A script's service time is the sum of what a real Redis spends on it
(``redis.*`` in the scenario; a calibration profile measures each part):
the fixed per-command cost (``redis.command``: read, parse, dispatch, reply),
its share of the per-batch cost (``redis.batch / redis.pipeline``: the read and
write system calls, paid once per pipelined batch), the script's body
(``redis.service[script]``) and, for scripts that walk records, a cost per
record (``redis.per_item[script]`` times the count in :data:`ITEMS`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
import simpy

from engine import scripts
from engine.distributions import sampler
from engine.ops import Eval
from engine.scenario import Dist, RedisConfig
from engine.slots import SlotMap
from sim.host import Host
from sim.interpreter import Interpreter, Task
from sim.kernel import Call, schedule_call


def _batch_records(value: str | None) -> int:
    """Records in a batches-hash value ``"sent_time|seq,seq,..."``."""
    return value.count(",") + 1 if value else 0


ITEMS: dict[str, Callable[[dict[str, Any], tuple, tuple], int]] = {
    # What a script's per-record cost counts, read from the node's store when the script
    # arrives: exact when the node is idle; under a queue it does not yet see the effect of
    # the scripts queued ahead (their twins run at their service start).
    "detail_collect": lambda store, keys, args: min(int(args[1]), len(store.get(keys[1]) or ())),
    "detail_applied": lambda store, keys, args: _batch_records((store.get(keys[1]) or {}).get(str(args[0]))),
    "detail_stale": lambda store, keys, args: sum(map(_batch_records, (store.get(keys[1]) or {}).values())),
    "detail_summary": lambda store, keys, args: len(store.get(keys[0]) or ()),
}
"""Per script with a ``redis.per_item`` cost: how many records one call handles."""


class RedisNode:
    """One single-threaded Redis master: a store, a FIFO clock and its service times."""

    def __init__(self, index: int, config: RedisConfig, rng: np.random.Generator):
        self.index = index
        self.store: dict[str, Any] = {}
        self.free_at = 0.0  # when the node finishes the work already queued
        self.busy = 0.0  # total service time handed out
        self.ops = 0
        self.wait_total = 0.0
        self.wait_max = 0.0
        self._default = sampler(config.service_of("default"), rng)
        self._service = {name: sampler(dist, rng) for name, dist in config.service.items()}
        command, batch = config.command, config.batch
        if command.is_constant and batch.is_constant:  # the common case: one float, no draws
            self._fixed = None
            self._fixed_constant = command.mean + batch.mean / config.pipeline
        else:
            draw_command, draw_batch, depth = sampler(command, rng), sampler(batch, rng), config.pipeline
            self._fixed = lambda: draw_command() + draw_batch() / depth
            self._fixed_constant = 0.0
        self._per_item = {name: (cost, ITEMS[name]) for name, cost in config.per_item.items() if cost > 0}
        self._twins = {name: script.twin for name, script in scripts.REGISTRY.items()}
        self.pending: deque[tuple[float, Eval, Task]] = deque()  # queued, not yet started
        self._wake = config.wake if config.wake.costs else None  # idle wake-up (None: instant)
        self.host: Host | None = None  # the machine's cores it shares (host.cores; None: a CPU of its own)

    def execute(self, t: float, op: Eval, task: Task) -> float:
        """Queue ``op`` arriving at time ``t``; return when its service ends.

        Its reply is set on ``task`` by :meth:`advance` once service has started.
        """
        free_at = self.free_at
        if t > free_at:  # idle: it starts at once, or once awake
            start = t if self._wake is None else t + self._wake.delay(t - free_at)
        else:
            start = free_at
        service = self._service.get(op.script, self._default)() + (
            self._fixed_constant if self._fixed is None else self._fixed())
        if self._per_item:
            per_item = self._per_item.get(op.script)
            if per_item is not None:
                service += per_item[0] * per_item[1](self.store, op.keys, op.args)
        if self.host is not None:
            start = self.host.start(start, service)  # once a core of the machine is free too
        finish = start + service
        self.free_at = finish
        self.busy += service
        self.ops += 1
        if free_at > t:  # queueing (a wake-up is not)
            wait = free_at - t
            self.wait_total += wait
            if wait > self.wait_max:
                self.wait_max = wait
        self.pending.append((start, op, task))
        return finish

    def advance(self, now: float) -> None:
        """Apply, in FIFO order, every queued script whose service has started by ``now``."""
        pending = self.pending
        store = self.store
        twins = self._twins
        while pending and pending[0][0] <= now:
            _, op, task = pending.popleft()
            task.reply = twins[op.script](store, op.keys, op.args)

    def reset_counters(self) -> None:
        self.busy = 0.0
        self.ops = 0
        self.wait_total = 0.0
        self.wait_max = 0.0


class RedisCluster:
    """Nodes, the slot map that routes keys to them, and the app <-> Redis hop."""

    def __init__(self, env: simpy.Environment, config: RedisConfig, hop: Dist,
                 node_rngs: list[np.random.Generator], network_rng: np.random.Generator):
        self.env = env
        self.nodes = [RedisNode(i, config, rng) for i, rng in enumerate(node_rngs)]
        self.slots = SlotMap.even(config.nodes)
        self._route: dict[str, RedisNode] = {}  # key -> owning node, filled on first use
        self.hop_constant = hop.is_constant
        self._hop = sampler(hop, network_rng)
        self._hop_mean = float(hop.mean)
        self.interpreter: Interpreter | None = None

    def node_for(self, key: str) -> RedisNode:
        return self.nodes[self.slots.node_of(key)]

    def read(self, key: str) -> Any:
        """Peek at a key now, without simulated cost (inventory snapshots, invariants)."""
        node = self.node_for(key)
        node.advance(self.env.now)
        return node.store.get(key)

    def submit(self, op: Eval, task: Task, cpu: float = 0.0) -> None:
        """Send ``op`` now, or after ``cpu`` seconds of app CPU (its segment's end, queueing included)."""
        key = op.keys[0]
        node = self._route.get(key)
        if node is None:
            node = self._route[key] = self.nodes[self.slots.node_of(key)]
        task.node = node.index
        now = self.env.now
        if self.hop_constant:
            # Arrivals are queued at send time. With app CPU in front, two ops may reach the node
            # in an order other than the one they were sent in, by at most the difference of their
            # segments' costs (microseconds): the node serves them in send order.
            d = self._hop_mean
            finish = node.execute(now + cpu + d, op, task)
            schedule_call(self.env, finish + d - now, self._deliver, task)
        else:
            schedule_call(self.env, cpu + self._hop(), self._arrive, (node, op, task))

    def _arrive(self, event: Call) -> None:
        node, op, task = event.value
        now = self.env.now
        finish = node.execute(now, op, task)
        schedule_call(self.env, finish + self._hop() - now, self._deliver, task)

    def _deliver(self, event: Call) -> None:
        task: Task = event.value
        node = self.nodes[task.node]
        if node.pending:
            node.advance(self.env.now)
        self.interpreter.resume_checked(task)  # type: ignore[union-attr]
