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

import copy
import itertools
import math
from collections import deque
from collections.abc import Callable
from typing import Any, cast

import numpy as np
import simpy

from engine import scripts
from engine.distributions import sampler
from engine.ops import Eval
from engine.scenario import Dist, RedisConfig
from engine.slots import SlotMap
from engine.tasks import TaskKind
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


# --- faults and replication (only built when the scenario has faults or WAIT: see sim.faults) -------------

WAIT_SCRIPTS = frozenset({"deduct", "deduct_detail", "partition_deduct", "partition_deduct_detail"})
"""The deductions a ``redis.wait_replicas`` WAIT follows (the DB read cache's decrement is not one: the DB
is its authority)."""


RTO_MIN = 0.2  # seconds: Linux TCP_RTO_MIN (HZ/5), the first retransmission of a dropped segment
RTO_MAX = 120.0  # seconds: Linux TCP_RTO_MAX


class RedisFault(Exception):
    """A command failed because of an injected fault: the connection was reset by a crash, or no master
    serves the key's slots (CLUSTERDOWN). ``fault`` is the name of the fault that caused it."""

    def __init__(self, fault: str, message: str):
        super().__init__(message)
        self.fault = fault


class FaultyNode(RedisNode):
    """A master that can crash, fail over, pause or slow down, with an asynchronous replica.

    Replication: every script run on the master reaches the replica ``redis.replica_lag`` after it ends, in
    order (its arrival there is ``max(previous arrival, finish + lag)``); the replica applies it with the
    same twin to its own copy of the store. ``log`` holds the scripts the replica has not applied yet, so
    a promotion keeps exactly the writes that had reached the replica and loses the rest.
    """

    def __init__(self, index: int, config: RedisConfig, rng: np.random.Generator, lag_rng: np.random.Generator):
        super().__init__(index, config, rng)
        self.up = True  # a master serves the node's slots
        self.never_back = False  # crashed without replica and duration = inf
        self.replicas = config.replicas  # replicas left to promote
        self.replica: dict[str, Any] | None = {} if config.replicas else None
        self._lag = sampler(config.replica_lag, lag_rng)
        # per pending script, in FIFO order: its op id, its finish and its arrival at the replica
        self.meta: deque[tuple[int, float, float]] = deque()
        self.serving_until = 0.0  # finish of the last script that started
        self._last_arrival = 0.0
        self.log: deque[tuple[float, Eval, Task]] = deque()  # applied on the master, not yet on the replica
        self.applied = 0  # scripts applied on the master since it last started empty
        self.down_until = math.inf  # while down: when service is planned back (inf: not planned)
        self.fault = ""  # the fault that took the node down
        self.deferred: list[tuple[Eval, Task]] = []  # background ops waiting for the node to serve again

    def execute(self, t: float, op: Eval, task: Task, op_id: int = 0) -> float:  # type: ignore[override]
        finish = super().execute(t, op, task)
        arrival = math.inf
        if self.replica is not None:
            arrival = finish + self._lag()  # the write is propagated once the script has run
            if arrival < self._last_arrival:
                arrival = self._last_arrival
            self._last_arrival = arrival
        self.meta.append((op_id, finish, arrival))
        return finish

    def advance(self, now: float) -> None:
        pending, meta = self.pending, self.meta
        twins = self._twins
        replica = self.replica
        while pending and pending[0][0] <= now:
            _, op, task = pending.popleft()
            _, self.serving_until, arrival = meta.popleft()
            task.reply = twins[op.script](self.store, op.keys, op.args)
            self.applied += 1
            if replica is not None:
                self.log.append((arrival, op, task))
        if replica is not None:
            self.sync_replica(now)

    def sync_replica(self, now: float) -> None:
        """Apply on the replica every logged script that has reached it by ``now``."""
        log, replica, twins = self.log, self.replica, self._twins
        if replica is None:
            log.clear()
            return
        while log and log[0][0] <= now:
            _, op, _task = log.popleft()
            twins[op.script](replica, op.keys, op.args)

    def replicate_from_scratch(self) -> None:
        """A (re)joining replica's full sync: a copy of the master's store as it is now."""
        self.replica = copy.deepcopy(self.store)
        self.log.clear()
        meta = self.meta
        for k, (_start, _op, _task) in enumerate(self.pending):  # queued scripts replicate as they are applied
            self._last_arrival = max(self._last_arrival, meta[k][1] + self._lag())
            meta[k] = (meta[k][0], meta[k][1], self._last_arrival)

    def scale_service(self, factor: float) -> Callable[[], None]:
        """slow_node: multiply every service time by ``factor``; returns the undo."""
        saved = (self._default, self._service, self._fixed, self._fixed_constant, self._per_item)
        default, service, fixed = self._default, self._service, self._fixed
        self._default = _scaled(default, factor)
        self._service = {name: _scaled(draw, factor) for name, draw in service.items()}
        if fixed is not None:
            self._fixed = _scaled(fixed, factor)
        self._fixed_constant *= factor
        self._per_item = {name: (cost * factor, count) for name, (cost, count) in self._per_item.items()}

        def undo() -> None:
            self._default, self._service, self._fixed, self._fixed_constant, self._per_item = saved
        return undo


def _scaled(draw: Callable[[], float], factor: float) -> Callable[[], float]:
    return lambda: factor * draw()


class FaultyCluster(RedisCluster):
    """The cluster when faults or WAIT are configured: ops can be lost, refused or held.

    Every op has an id; its reply is delivered only if the id was not dropped by a crash. A request's
    op to a node that has no master fails fast (one round trip, CLUSTERDOWN / connection refused); a
    background task's op waits until a master serves again (the retry a trigger loop does), or fails
    when none ever will.
    """

    def __init__(self, env: simpy.Environment, config: RedisConfig, hop: Dist,
                 node_rngs: list[np.random.Generator], network_rng: np.random.Generator,
                 lag_rngs: list[np.random.Generator]):
        super().__init__(env, config, hop, node_rngs, network_rng)
        self.config = config
        self.nodes = [FaultyNode(i, config, rng, lag) for i, (rng, lag) in enumerate(zip(node_rngs, lag_rngs))]
        self._ids = itertools.count(1)
        self.outstanding: list[dict[int, tuple[float, Eval, Task]]] = [{} for _ in self.nodes]  # per node
        self.dropped: set[int] = set()
        self.wait = config.wait_replicas > 0
        # network partitions: (app instance, node, start, end); packets between them in [start, end) are
        # dropped and TCP retransmits them (see :meth:`through`)
        self.partitions: list[tuple[int, int, float, float]] = []
        self.uncovered: list[FaultyNode] = []  # failed masters with no replica: the cluster is down meanwhile
        self.on_error: Callable[[str, Task], None] = lambda _fault, _task: None  # a fault failed a task's op

    def _hop_draw(self) -> float:
        return self._hop_mean if self.hop_constant else self._hop()

    def submit(self, op: Eval, task: Task, cpu: float = 0.0) -> None:
        key = op.keys[0]
        node = self._route.get(key)
        if node is None:
            node = self._route[key] = self.nodes[self.slots.node_of(key)]
        task.node = node.index
        if self.hop_constant:
            self._send(node, op, task, self.env.now + cpu + self._hop_mean)  # type: ignore[arg-type]
        else:
            schedule_call(self.env, cpu + self._hop(), self._arrive, (node, op, task))

    def _arrive(self, event: Call) -> None:
        node, op, task = event.value
        self._send(node, op, task, self.env.now)

    def through(self, instance: int, node: int, t: float) -> float:
        """When a packet sent at ``t`` between app instance ``instance`` and ``node`` gets through: ``t``,
        or, if a partition drops it, its first TCP retransmission after the partition ends (Linux: the
        first after TCP_RTO_MIN = 200 ms, each next one twice as long after, at most TCP_RTO_MAX = 120 s)."""
        for cut_instance, cut_node, start, end in self.partitions:
            if cut_instance == instance and cut_node == node and start <= t < end:
                rto, sent = RTO_MIN, t
                while sent < end:
                    sent += rto
                    rto = min(2 * rto, RTO_MAX)
                t = sent
        return t

    def _send(self, node: FaultyNode, op: Eval, task: Task, t: float) -> None:
        """``op`` reaches ``node`` at ``t`` (>= now)."""
        now = self.env.now
        if self.partitions:
            hop = t - now
            sent = self.through(task.app, node.index, now)
            if sent > now:  # dropped: it reaches the node after a retransmission
                schedule_call(self.env, sent + hop - now, self._arrive, (node, op, task))
                return
        if not node.up or self.uncovered:
            self._refused(node, op, task, t)
            return
        op_id = next(self._ids)
        finish = node.execute(t, op, task, op_id)
        if self.wait and op.script in WAIT_SCRIPTS:
            finish = self._wait(node, finish, node.meta[-1][2])
            task.ops += 1
        self.outstanding[node.index][op_id] = (finish, op, task)
        reply = self.through(task.app, node.index, finish) if self.partitions else finish
        schedule_call(self.env, reply + self._hop_draw() - now, self._deliver_op, (node, op_id, task))

    def _wait(self, node: FaultyNode, finish: float, arrival: float) -> float:
        """``WAIT numreplicas timeout`` after a deduction that ends at ``finish``: sent once its reply is back,
        it reaches the node a hop later and returns when the replica acknowledges the write (its arrival
        there plus a hop back) or at the timeout. Returns when the WAIT's reply leaves the node."""
        at_node = finish + self._hop_draw() + self._hop_draw()
        acked = arrival + self._hop_draw()
        return max(at_node, min(acked, at_node + self.config.wait_timeout))

    def _deliver_op(self, event: Call) -> None:
        node, op_id, task = event.value
        if op_id in self.dropped:
            self.dropped.discard(op_id)
            return
        del self.outstanding[node.index][op_id]
        if node.pending:
            node.advance(self.env.now)
        self.interpreter.resume_checked(task)  # type: ignore[union-attr]

    def _refused(self, node: FaultyNode, op: Eval, task: Task, t: float) -> None:
        """An op reaches a node that has no master, or any node while the cluster is down (some slots
        uncovered): a request's fails fast, a background one waits."""
        if node.up:  # a live master of a cluster that has lost coverage
            down, message = self.uncovered[0], "CLUSTERDOWN: the cluster is down (some slots have no master)"
            never = self.uncovered[0].never_back
        else:
            down, message = node, f"CLUSTERDOWN: no master serves node {node.index}'s slots"
            never = node.never_back
        if task.kind is TaskKind.REQUEST or never:
            self.fail(task, RedisFault(down.fault, f"{message} (fault {down.fault!r})"),
                      t + self._hop_draw() - self.env.now)
        else:
            node.deferred.append((op, task))

    def lose_coverage(self, node: FaultyNode) -> None:
        """``node`` is marked failed with no replica to promote: with cluster-require-full-coverage (Redis's
        default, and flashsim's local cluster's) every node then refuses commands until it is back."""
        if not node.up and node not in self.uncovered:
            self.uncovered.append(node)

    def fail(self, task: Task, error: RedisFault, delay: float) -> None:
        schedule_call(self.env, max(0.0, delay), self._fail, (task, error))

    def _fail(self, event: Call) -> None:
        task, error = event.value
        # counted where the error reaches the task: a request past its deadline by then ends as a timeout
        if self.interpreter.fail(task, error):  # type: ignore[union-attr]
            self.on_error(error.fault, task)

    # --- what the faults do ---------------------------------------------------------------------------

    def lose_outstanding(self, node: FaultyNode, fault: str, now: float) -> int:
        """Drop every command the node holds at ``now`` (queued, in service, or a WAIT not yet answered):
        their clients see the connection reset one hop later; background ones are re-sent once a master
        serves again. Returns how many were lost."""
        node.advance(now)
        lost = [(op_id, op, task) for op_id, (finish, op, task) in self.outstanding[node.index].items()
                if finish > now]
        for op_id, op, task in lost:
            del self.outstanding[node.index][op_id]
            self.dropped.add(op_id)
            if task.kind is TaskKind.REQUEST or node.never_back:
                self.fail(task, RedisFault(fault, f"ConnectionError: node {node.index} went away with the "
                                                  f"command in flight (fault {fault!r})"), self._hop_draw())
            else:
                node.deferred.append((op, task))
        node.pending.clear()
        node.meta.clear()
        node.free_at = now
        return len(lost)

    def hold(self, node: FaultyNode, seconds: float) -> float:
        """The node serves nothing for ``seconds`` once the command in service ends, then its backlog
        (``DEBUG SLEEP``; a manual failover's pause): every queued command starts later by what the hold
        pushes it back, and its reply with it. Returns when the hold ends."""
        now = self.env.now
        node.advance(now)
        until = max(now, node.serving_until) + seconds
        prev = until
        pending, meta, outstanding = node.pending, node.meta, self.outstanding[node.index]
        last_arrival = -math.inf
        for k, (start, op, task) in enumerate(pending):
            op_id, finish, arrival = meta[k]
            new_start = max(start, prev)
            shift = new_start - start
            prev = finish + shift
            last_arrival = max(last_arrival, arrival + shift)
            if not shift:
                continue
            pending[k] = (new_start, op, task)
            new_id = next(self._ids)
            meta[k] = (new_id, finish + shift, last_arrival)
            reply_at, _, _ = outstanding.pop(op_id)
            self.dropped.add(op_id)
            outstanding[new_id] = (reply_at + shift, op, task)
            schedule_call(self.env, reply_at + shift + self._hop_draw() - now, self._deliver_op, (node, new_id, task))
        if meta and node.replica is not None:
            node._last_arrival = max(node._last_arrival, last_arrival)
        node.free_at = max(node.free_at, prev)
        return until

    def go_down(self, node: FaultyNode, fault: str) -> None:
        node.up = False
        node.fault = fault

    def come_up(self, node: FaultyNode) -> None:
        """A master serves the node's slots again: the background ops that waited are sent now."""
        node.up = True
        node.down_until = math.inf
        now = self.env.now
        if node.free_at < now:
            node.free_at = now
        if node in self.uncovered:
            self.uncovered.remove(node)
        for waiting in (cast(list[FaultyNode], self.nodes) if not self.uncovered else [node]):
            deferred, waiting.deferred = waiting.deferred, []
            for op, task in deferred:
                self.submit(op, task)
