"""Fault injection in real mode: the scenario's ``faults`` acted out on servers flashsim started.

The injector is a task of the coordinator process (:func:`engine.real.run.run_real`),
timed from the sale start on the shared monotonic clock. It acts only on a
:class:`~engine.real.cluster.LocalCluster` (``flashsim cluster up``, or one a
test or script started) whose nodes serve the run's target; anything else is
refused before the run starts (:func:`check_faults`), as is a fault real mode
cannot act out honestly:

- ``redis_crash``: ``kill -9`` of the process of the master that owns node
  ``node``'s slots now (its pid from the cluster's state); the cluster promotes
  its replica after ``cluster-node-timeout``. With a finite ``duration`` the
  node is started again (same port, same cluster config) ``duration`` seconds
  after the crash, but not before the promotion was seen, so it rejoins as a
  replica (as in the simulator). Needs a replica.
- ``redis_failover``: ``CLUSTER FAILOVER`` (``force``: ``CLUSTER FAILOVER
  TAKEOVER``) sent to a replica of that master. Needs a replica.
- ``redis_pause``: ``DEBUG SLEEP duration`` on that master (the nodes run with
  ``--enable-debug-command local``): it answers nothing meanwhile, then serves
  its backlog.
- ``app_crash``: ``kill -9`` of the load-generator worker process hosting app
  instance ``instance`` (open-loop workloads; the pipeline service, which runs
  the fleet's background work and the drain, is another process). Its requests still
  unanswered at the crash end as ``error`` at the crash instant; its buyers due
  after the crash meet a dead app: ``error`` at their intended instant. The
  worker is not restarted (``duration`` is ignored; real mode says so).

Refused in real mode: ``slow_node`` (Redis has no knob that multiplies its own
service times; a ``DEBUG SLEEP 0`` loop would add commands of its own, not slow
the node's; use ``redis_pause``), and ``mq_outage``, ``consumer_crash``,
``db_outage``, ``partition`` (not acted out yet).

Every action is an event of the run (``Result.events``, kind ``fault``): when
it fired, which process or address it hit, and when the cluster recovered
(``promoted``: another process owns the node's slots; ``restarted``;
``resumed``).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import math
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.faults.config import Fault
from engine.real.cluster import LocalCluster
from engine.real.loadgen import hosted
from engine.real.target import RedisTarget, TargetError
from engine.slots import even_slot_ranges

ACTED = ("redis_crash", "redis_failover", "redis_pause", "app_crash")
PROMOTION_WAIT = 30.0  # seconds the injector watches for a promotion beyond cluster-node-timeout
POLL = 0.02  # seconds between the injector's looks at the cluster while it waits for a promotion


class FaultRefused(TargetError):
    """A fault real mode will not inject (not our server, no replica, no real equivalent)."""


@dataclass(frozen=True)
class Firing:
    """One fault to fire, ``t`` seconds after the sale start."""

    t: float
    name: str
    fault: Fault


def fault_times(faults: dict[str, Fault], rng: np.random.Generator, horizon: float) -> list[Firing]:
    """When each fault fires: once at ``at``, or (``rate > 0``) at Poisson times from ``at`` on, before ``horizon``.

    The gaps are drawn from ``rng`` (the reserved ``faults`` stream) as the faults fire, in time order.
    """
    heap: list[tuple[float, int, str]] = []
    for order, (name, fault) in enumerate(faults.items()):
        first = fault.at + (float(rng.exponential(1.0 / fault.rate)) if fault.rate > 0 else 0.0)
        heapq.heappush(heap, (first, order, name))
    out: list[Firing] = []
    while heap:
        t, order, name = heapq.heappop(heap)
        fault = faults[name]
        if fault.rate > 0 and t >= horizon:
            continue
        out.append(Firing(t, name, fault))
        if fault.rate > 0:
            heapq.heappush(heap, (t + float(rng.exponential(1.0 / fault.rate)), order, name))
    return out


def check_faults(faults: dict[str, Fault], cluster: LocalCluster | None, target: RedisTarget, workers: int,
                 instances: int, open_loop: bool) -> None:
    """Refuse, before anything starts, faults real mode cannot inject here (one readable sentence)."""
    if not faults:
        return
    if cluster is None or not cluster.ports:
        raise FaultRefused("fault injection acts only on servers flashsim started: run against the cluster of "
                           "`flashsim cluster up` (--redis-url local) or pass RealOptions(cluster=LocalCluster)")
    if not cluster.serves(target.url):
        raise FaultRefused(f"fault injection acts only on servers flashsim started: {target.describe()} is not a "
                           f"node of the local cluster in {cluster.directory}")
    for name, fault in faults.items():
        where = f"faults.{name} ({fault.kind})"
        if fault.kind == "slow_node":
            raise FaultRefused(f"{where}: slow_node has no real-mode equivalent (Redis cannot multiply its own "
                               "service times); use redis_pause (DEBUG SLEEP) in real mode")
        if fault.kind not in ACTED:
            raise FaultRefused(f"{where}: not injected in real mode yet (it injects: {', '.join(ACTED)})")
        if fault.targets_node:
            if not cluster.cluster:
                raise FaultRefused(f"{where}: needs a Redis Cluster (the local server is a single node)")
            if fault.node >= cluster.nodes:
                raise FaultRefused(f"{where}: node {fault.node} but the local cluster has {cluster.nodes} "
                                   f"master(s)")
            if fault.kind in ("redis_crash", "redis_failover") and cluster.replicas < 1:
                raise FaultRefused(f"{where}: the local cluster has no replica to take over; start it with "
                                   "`flashsim cluster up --replicas 1`")
        if fault.kind == "app_crash" and not open_loop:
            raise FaultRefused(f"{where}: real mode crashes an app worker only under an open-loop workload")


def worker_of(instance: int, workers: int, instances: int) -> int:
    """The worker process hosting app ``instance`` (the first one, when several play it)."""
    for worker in range(workers):
        if instance in hosted(worker, workers, instances):
            return worker
    return instance % workers


class Injector:
    """Fires the faults of one run; a task of the coordinator's event loop."""

    def __init__(self, firings: list[Firing], cluster: LocalCluster, t0: float, origin: float,
                 kill_worker: Callable[[int], None], workers: int, instances: int):
        self.firings = firings
        self.cluster = cluster
        self.t0 = t0  # monotonic time of the sale start
        self.origin = origin  # monotonic time Now() reports as 0 (events are on that clock, as the strategy's)
        self.kill_worker = kill_worker
        self.workers = workers
        self.instances = instances
        self.events: list[dict[str, Any]] = []
        self.crashed_workers: dict[int, float] = {}  # worker -> seconds after the sale start it was killed
        self._tasks: list[asyncio.Task[None]] = []
        self.finished = False  # finish() was called

    def note(self, name: str, fault: Fault, what: str, **fields: Any) -> None:
        self.events.append({"t": time.monotonic() - self.origin, "kind": "fault", "name": name,
                            "fault": fault.kind, "what": what, **fields})

    async def run(self) -> None:
        """Fire each fault at its time; return when every one has fired (its actions may still run)."""
        loop = asyncio.get_running_loop()
        for firing in self.firings:
            delay = self.t0 + firing.t - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self._tasks.append(loop.create_task(self._fire(firing)))

    async def finish(self, runner: asyncio.Task[None]) -> None:
        """The buyers are done: faults not yet fired never will (noted); wait for those under way."""
        self.finished = True
        if not runner.done():
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
            fired = len(self._tasks)
            for firing in self.firings[fired:]:
                self.note(firing.name, firing.fault, "not fired", at=firing.t)
        if self._tasks:
            await asyncio.gather(*self._tasks)

    async def _fire(self, firing: Firing) -> None:
        name, fault = firing.name, firing.fault
        try:
            if fault.kind == "app_crash":
                self._app_crash(name, fault)
            elif fault.kind == "redis_crash":
                await self._redis_crash(name, fault)
            elif fault.kind == "redis_failover":
                await self._redis_failover(name, fault)
            elif fault.kind == "redis_pause":
                await self._redis_pause(name, fault)
        except Exception as err:  # a fault that could not be acted out is an event, not a crash of the run
            self.note(name, fault, "failed", error=f"{err.__class__.__name__}: {err}")

    # ------------------------------------------------------------ app
    def _app_crash(self, name: str, fault: Fault) -> None:
        worker = worker_of(fault.instance, self.workers, self.instances)
        if worker in self.crashed_workers:
            self.note(name, fault, "skipped", worker=worker, reason="already dead")
            return
        self.crashed_workers[worker] = time.monotonic() - self.t0
        self.kill_worker(worker)
        self.note(name, fault, "killed", worker=worker, instance=fault.instance)

    # ------------------------------------------------------------ Redis
    async def _redis_crash(self, name: str, fault: Fault) -> None:
        master = await asyncio.to_thread(self._master, fault.node)
        pid = await asyncio.to_thread(self.cluster.kill, master.port)
        killed = time.monotonic()
        self.note(name, fault, "killed", node=fault.node, address=f"127.0.0.1:{master.port}", pid=pid)
        promoted = await self._wait_promotion(fault.node, master.port)
        if promoted is not None:
            self.note(name, fault, "promoted", node=fault.node, address=f"127.0.0.1:{promoted}",
                      after=time.monotonic() - killed)
        if math.isfinite(fault.duration):  # back after `duration`, not before the promotion: it rejoins as a replica
            wait = killed + fault.duration - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            pid = await asyncio.to_thread(self.cluster.restart, master.port)
            self.note(name, fault, "restarted", node=fault.node, address=f"127.0.0.1:{master.port}", pid=pid)

    async def _redis_failover(self, name: str, fault: Fault) -> None:
        master = await asyncio.to_thread(self._master, fault.node)
        if not master.replicas:
            raise FaultRefused(f"master 127.0.0.1:{master.port} has no live replica")
        replica = master.replicas[0]
        words = ["CLUSTER", "FAILOVER"] + (["TAKEOVER"] if fault.force else [])
        await asyncio.to_thread(_command, replica, *words)
        self.note(name, fault, "sent", node=fault.node, address=f"127.0.0.1:{replica}", command=" ".join(words))
        promoted = await self._wait_promotion(fault.node, master.port)
        if promoted is not None:
            self.note(name, fault, "promoted", node=fault.node, address=f"127.0.0.1:{promoted}")

    async def _redis_pause(self, name: str, fault: Fault) -> None:
        master = await asyncio.to_thread(self._master, fault.node)
        self.note(name, fault, "paused", node=fault.node, address=f"127.0.0.1:{master.port}")
        # DEBUG SLEEP blocks the whole server, so its reply comes when the pause is over
        await asyncio.to_thread(_command, master.port, "DEBUG", "SLEEP", f"{fault.duration:g}",
                                timeout=fault.duration + 10)
        self.note(name, fault, "resumed", node=fault.node, address=f"127.0.0.1:{master.port}")

    def _master(self, node: int) -> Master:
        """The master that owns node ``node``'s first slot now, and its live replicas (CLUSTER NODES)."""
        return master_of(self.cluster, node)

    async def _wait_promotion(self, node: int, old_port: int) -> int | None:
        """Wait until a master other than ``old_port`` owns the node's slots (and says so); its port."""
        deadline = time.monotonic() + self.cluster.node_timeout + PROMOTION_WAIT
        while time.monotonic() < deadline:
            try:
                now = await asyncio.to_thread(self._master, node)
                if now.port != old_port:
                    return now.port
            except Exception:
                pass
            await asyncio.sleep(POLL)
        return None


@dataclass(frozen=True)
class Master:
    port: int
    replicas: tuple[int, ...]  # ports of its live replicas


def master_of(cluster: LocalCluster, node: int) -> Master:
    """Who owns node ``node``'s first slot now, asked of the live nodes (the first that answers and agrees)."""
    first = even_slot_ranges(cluster.nodes)[node][0]
    failure: Exception | None = None
    for port in cluster.ports:
        try:
            text = _command(port, "CLUSTER", "NODES", timeout=1.0)
        except Exception as err:
            failure = failure or err
            continue
        found = _owner(str(text), first)
        if found is not None:
            return found
    raise TargetError(f"no node of the local cluster says who owns slot {first} ({failure})")


def _owner(nodes: str, slot: int) -> Master | None:
    rows = [line.split() for line in nodes.splitlines() if line.strip()]
    by_id = {row[0]: row for row in rows}
    for row in rows:
        flags = row[2].split(",")
        if "master" not in flags or "fail" in flags:
            continue
        for item in row[8:]:
            if item.startswith("["):
                continue
            first, _, last = item.partition("-")
            if int(first) <= slot <= int(last or first):
                port = _port(row[1])
                replicas = tuple(_port(r[1]) for r in by_id.values()
                                 if r[3] == row[0] and "fail" not in r[2].split(",")
                                 and "slave" in r[2].split(","))
                return Master(port, replicas)
    return None


def _port(address: str) -> int:
    return int(address.split("@")[0].rsplit(":", 1)[1])


def _command(port: int, *words: str, timeout: float = 5.0) -> Any:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # no retries: redis-py 8 defaults to 10, with backoff up to 1 s each: seconds spent on a node a fault killed
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=timeout, socket_connect_timeout=1.0,
                         decode_responses=True, retry=Retry(NoBackoff(), 0))
    try:
        return client.execute_command(*words)
    finally:
        client.close()


def kill_process(pid: int) -> None:
    """kill -9 of a load-generator worker (a child of the coordinator)."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
