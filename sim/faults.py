"""Faults in simulated time: the scenario's ``faults`` section, fired during the sale.

Built only when the scenario has faults (or ``redis.wait_replicas``): :class:`~sim.world.World` then
uses :class:`~sim.servers.redis_node.FaultyCluster` instead of the plain cluster, so a run without
faults takes exactly the code and the random draws it always did.

A fault fires ``at`` seconds after the sale starts, or at the times of a Poisson process of rate
``rate`` from ``at`` on (drawn from the reserved ``faults`` random stream); faults fire while the buyers
are still arriving or waiting, recoveries they scheduled happen whenever they are due, drain included.
Each fired fault is one row of :meth:`Faults.table` (``Result.faults``). What each kind does is in
docs/faults.md ("In the simulator").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from engine.faults.config import Fault
from engine.faults.losses import FaultLoss, acknowledged_units, broken_by_fault, inventory_losses
from engine.fields import ScenarioError
from engine.model import Inventory, Outcome
from engine.pipeline import SyncPipeline
from engine.pipeline.ops import Ack, Consume, Publish
from engine.strategy import Strategy
from engine.tasks import TaskKind
from sim.interpreter import Task
from sim.kernel import Call, schedule_call
from sim.servers.redis_node import FaultyCluster, FaultyNode, RedisFault

SIMULATED = ("redis_crash", "redis_failover", "redis_pause", "slow_node", "partition", "mq_outage", "consumer_crash",
             "app_crash")
"""The kinds the simulator injects so far; a scenario with another kind is refused (docs/faults.md)."""

TABLE_COLUMNS = ("name", "kind", "target", "t_fire", "t_recovered", "requests_errored", "commands_lost",
                 "writes_lost", "units_rolled_back", "units_restored", "units_vanished", "note")


@dataclass
class FaultRow:
    """One fired fault and what it did (times in seconds from sale start)."""

    name: str
    kind: str
    target: str
    t_fire: float
    t_recovered: float = math.nan  # service back (nan: never, within the run)
    requests_errored: int = 0  # requests whose op this fault failed (each ended with ``error``)
    commands_lost: int = 0  # commands the node held when it went away (queued, in service, WAIT pending)
    writes_lost: int = 0  # scripts applied on the master that the new master lacks (or that died with it)
    units_rolled_back: int = 0
    units_restored: int = 0
    units_vanished: int = 0
    note: str = ""

    def loss(self) -> FaultLoss:
        return FaultLoss(self.name, self.kind, self.writes_lost, self.units_rolled_back, self.units_restored,
                         self.units_vanished)


def check_strategy(faults: dict[str, Fault], strategy: Strategy) -> None:
    """Refuse, with a clear ScenarioError, a fault the simulator or the strategy cannot act on."""
    for name, fault in faults.items():
        if fault.kind not in SIMULATED:
            raise ScenarioError(f"faults.{name}: kind {fault.kind!r} is not simulated yet (the simulator injects "
                                f"{', '.join(SIMULATED)}; see docs/faults.md)")
        if fault.targets_node and not strategy.keys():
            raise ScenarioError(f"faults.{name}: a {fault.kind} fault acts on a Redis node, but strategy "
                                f"{strategy.name!r} uses no Redis here (db_* strategies use it only with "
                                f"db.read_cache = true)")
        if fault.kind in ("mq_outage", "consumer_crash") and not runs_pipeline(strategy):
            raise ScenarioError(f"faults.{name}: a {fault.kind} fault acts on the async pipeline's MQ, but strategy "
                                f"{strategy.name!r} does not run it here (pipeline.enabled, single_redis or sharded)")
        if fault.kind == "consumer_crash" and fault.instance >= strategy.scenario.pipeline.consumers:
            raise ScenarioError(f"faults.{name}.instance = {fault.instance}: the pipeline has "
                                f"{strategy.scenario.pipeline.consumers} consumer(s) (0..{strategy.scenario.pipeline.consumers - 1})")
        if fault.kind == "app_crash":
            app_crash_supported(name, fault, strategy)
        if fault.kind == "redis_failover" and strategy.scenario.redis.replicas < 1:
            raise ScenarioError(f"faults.{name}: a redis_failover needs a replica to fail over to "
                                f"(redis.replicas = 0)")


def app_crash_supported(name: str, fault: Fault, strategy: Strategy) -> None:
    """An app_crash is simulated where what the instance held in memory is its sold-out flag, its
    requests and the tasks they spawned; the rest is refused, naming what is not modelled."""
    if strategy.name.startswith("db_"):
        raise ScenarioError(f"faults.{name}: app_crash is not simulated for {strategy.name!r} yet (the DB "
                            f"rolling back a dead client's transaction and freeing its locks is not modelled)")
    if strategy.name == "sharded":
        raise ScenarioError(f"faults.{name}: app_crash is not simulated for 'sharded' yet (rebuilding an "
                            f"instance's registry from Redis after a restart is not modelled)")


def runs_pipeline(strategy: Strategy) -> bool:
    """Whether the strategy runs the async persistence pipeline (its figures include the sync ones)."""
    return "sync_records" in strategy.counters()


def _pipeline(strategy: Strategy) -> SyncPipeline:
    """The strategy's sync pipeline (a consumer_crash restarts one of its consumers)."""
    pipeline = getattr(strategy, "pipeline", None)
    if not isinstance(pipeline, SyncPipeline):
        raise ScenarioError(f"strategy {strategy.name!r} keeps no sync pipeline a consumer could restart from")
    return pipeline


class Faults:
    """Fires the scenario's faults in one simulated sale and keeps their table."""

    def __init__(self, world: Any, strategy: Strategy, t0: float):
        scenario = world.scenario
        check_strategy(scenario.faults, strategy)
        self.world = world
        self.env = world.env
        self.cluster: FaultyCluster = world.cluster
        self.strategy = strategy
        self.t0 = t0
        self.config = scenario.redis
        self.scenario_pipeline = scenario.pipeline
        self.rows: list[FaultRow] = []
        self.rolled_back: list[Task] = []  # tasks whose applied script a promotion rolled back
        self.running = True
        self._rows: dict[str, FaultRow] = {}  # the latest row of each fault (by name): where its errors count
        self._rng = world.streams.generator("faults")
        world.interpreter.fault_error = RedisFault
        self.cluster.on_error = self._errored
        kinds = {fault.kind for fault in scenario.faults.values()}
        self.mq_down_until = -math.inf  # mq_outage: the broker is unreachable until then
        self.consumer_dies: dict[str, FaultRow] = {}  # consumer_crash: consumer name -> its fault, armed
        self.consumers_gone: dict[str, FaultRow] = {}  # consumer_crash: consumer name -> the fault it died of
        self.apps_down: dict[int, FaultRow] = {}  # app_crash: instance -> the fault holding it down
        if "app_crash" in kinds:  # every task is tracked by the instance it runs on
            self.live: list[set[Task]] = [set() for _ in range(scenario.app.instances)]
            interpreter = world.interpreter
            self._start, self._start_request = interpreter.start, interpreter.start_request
            interpreter.start, interpreter.start_request = self._tracked_start, self._tracked_request
        if kinds & {"mq_outage", "consumer_crash"}:
            handlers = world.interpreter.handlers
            self._mq = (handlers[Publish], handlers[Consume], handlers[Ack])
            handlers[Publish], handlers[Consume], handlers[Ack] = self._publish, self._consume, self._ack
            self._consumers: dict[Task, str] = {}  # the consumer name each consumer task polls as
        for name, fault in scenario.faults.items():
            delay = fault.at + (self._gap(fault) if fault.rate > 0 else 0.0)
            schedule_call(self.env, delay, self._fire, (name, fault))

    def stop(self) -> None:
        """The buyers are done: no new fault fires (recoveries still happen)."""
        self.running = False

    def _gap(self, fault: Fault) -> float:
        return float(self._rng.exponential(1.0 / fault.rate))

    def _sale_time(self) -> float:
        return self.env.now - self.t0

    def _inventory(self) -> Inventory:
        return self.strategy.inventory(self.world.read)

    def _errored(self, fault: str, task: Task) -> None:
        row = self._rows.get(fault)
        if row is not None and task.kind is TaskKind.REQUEST:
            row.requests_errored += 1

    # --- firing ------------------------------------------------------------------------------------

    def _fire(self, event: Call) -> None:
        name, fault = event.value
        if not self.running:
            return
        if fault.rate > 0:
            schedule_call(self.env, self._gap(fault), self._fire, (name, fault))
        node = self.cluster.nodes[fault.node]
        row = FaultRow(name, fault.kind, f"node {fault.node}", self._sale_time())
        self.rows.append(row)
        if fault.kind in ("mq_outage", "consumer_crash"):
            row.target = "mq" if fault.kind == "mq_outage" else f"consumer {fault.instance}"
        elif fault.kind == "app_crash":
            row.target = f"instance {fault.instance}"
            if fault.instance in self.apps_down:
                row.note = f"instance {fault.instance} already down: nothing more to break"
                return
        elif fault.kind == "partition":
            row.target = f"instance {fault.instance} <-> node {fault.node}"
        elif not node.up:
            row.note = f"node {fault.node} already down (fault {node.fault!r}): nothing more to break"
            return
        self._rows[name] = row
        getattr(self, f"_{fault.kind}")(name, fault, node, row)
        if row.loss().lost_data:
            self.world.interpreter.data_lost = True

    def _redis_crash(self, name: str, fault: Fault, node: FaultyNode, row: FaultRow) -> None:
        now = self.env.now
        before = self._inventory()
        promote = node.replicas > 0
        node.never_back = not promote and math.isinf(fault.duration)
        self.cluster.go_down(node, name)
        row.commands_lost = self.cluster.lose_outstanding(node, name, now)
        if promote:
            row.writes_lost = self._roll_back(node)
            node.replicas -= 1
            node.replica = None
            after = self._inventory()
            self._count_rollback(row, before, after)
            schedule_call(self.env, self.config.node_timeout, self._promoted, (node, row))
            if math.isfinite(fault.duration):  # the old master rejoins as a replica of the new one (once there is one)
                schedule_call(self.env, max(fault.duration, self.config.node_timeout), self._rejoin, node)
            row.note = (f"replica promoted after redis.node_timeout = {self.config.node_timeout} s "
                        f"with the writes older than the replica lag")
        else:
            row.writes_lost = node.applied
            node.applied = 0
            node.store.clear()
            node.log.clear()
            after = self._inventory()
            row.units_rolled_back = max(0, before.sold - after.sold)  # sales the node forgot
            row.units_vanished = max(0, before.remaining - after.remaining)  # stock it took with it
            if math.isfinite(fault.duration):
                schedule_call(self.env, fault.duration, self._restarted, (node, row))
                row.note = "no replica: the node restarts empty (no persistence) after `duration`"
            else:
                row.note = "no replica: the node's slots are gone for the rest of the run"
            if len(self.cluster.nodes) > 1:  # once the failure is agreed on, the whole cluster is down
                schedule_call(self.env, self.config.node_timeout, self._uncovered, (node, row))

    def _redis_failover(self, name: str, fault: Fault, node: FaultyNode, row: FaultRow) -> None:
        now = self.env.now
        if node.replica is None:  # its replica was promoted earlier and none has rejoined yet
            row.note = f"node {fault.node} has no replica left: nothing to fail over to"
            return
        if not fault.force:
            # CLUSTER FAILOVER: clients are paused while the replica catches up with the master's
            # replication stream, then the replica is promoted: nothing is lost, the node (now the old
            # replica) serves what waited once the catch-up and the redirect are over.
            node.advance(now)
            catch_up = max(0.0, node._last_arrival - now) + self.cluster._hop_mean
            until = self.cluster.hold(node, catch_up)
            node.sync_replica(math.inf)
            row.t_recovered = until - self.t0
            row.note = f"manual failover: the node held {catch_up:.6f} s while the replica caught up"
            return
        # TAKEOVER: the replica is promoted at once, without the writes it lacked; the old master's
        # commands are lost and it rejoins as a replica.
        before = self._inventory()
        self.cluster.go_down(node, name)
        row.commands_lost = self.cluster.lose_outstanding(node, name, now)
        row.writes_lost = self._roll_back(node)
        self._count_rollback(row, before, self._inventory())
        node.replicate_from_scratch()
        self.cluster.come_up(node)
        row.t_recovered = self._sale_time()
        row.note = "forced failover (TAKEOVER): the replica's lag is lost"

    def _redis_pause(self, name: str, fault: Fault, node: FaultyNode, row: FaultRow) -> None:
        row.t_recovered = self.cluster.hold(node, fault.duration) - self.t0
        row.note = "DEBUG SLEEP: nothing served for `duration` after the command in service, then the backlog"

    def _slow_node(self, name: str, fault: Fault, node: FaultyNode, row: FaultRow) -> None:
        undo = node.scale_service(fault.factor)
        schedule_call(self.env, fault.duration, lambda _e: self._slow_over(undo, row), None)
        row.note = f"service times x {fault.factor} for {fault.duration} s"

    def _slow_over(self, undo: Any, row: FaultRow) -> None:
        undo()
        row.t_recovered = self._sale_time()

    def _partition(self, name: str, fault: Fault, node: FaultyNode, row: FaultRow) -> None:
        now = self.env.now
        self.cluster.partitions.append((fault.instance, fault.node, now, now + fault.duration))
        row.t_recovered = self._sale_time() + fault.duration
        row.note = ("packets dropped both ways; TCP retransmits them after 200 ms, doubling, so each gets "
                    "through at its first retransmission after the partition")

    def _mq_outage(self, name: str, fault: Fault, node: FaultyNode, row: FaultRow) -> None:
        self.mq_down_until = max(self.mq_down_until, self.env.now + fault.duration)
        row.t_recovered = self.mq_down_until - self.t0
        row.note = "publishes unconfirmed (retried), polls empty, acks lost (redelivered); stored messages kept"

    def _consumer_crash(self, name: str, fault: Fault, node: FaultyNode, row: FaultRow) -> None:
        self.consumer_dies[f"consumer-{fault.instance}"] = row
        row.note = "armed: dies after its next DB commit, before the ack"

    def _app_crash(self, name: str, fault: Fault, node: FaultyNode, row: FaultRow) -> None:
        k = fault.instance
        self.apps_down[k] = row
        self.strategy.sold_out[k] = False  # its memory: the sold-out flag it had learned
        ended = 0
        for task in list(self.live[k]):  # its requests get a connection reset; every other task just ends
            if task.finished:
                continue
            task.finished = True
            task.gen.close()
            if task.kind is TaskKind.REQUEST:
                row.requests_errored += 1
                task.done(task, Outcome.ERROR)
            else:
                ended += 1
                task.done(task, None)
        self.live[k].clear()
        row.note = f"in-flight requests answered error; {ended} spawned or background task(s) ended"
        if math.isfinite(fault.duration):
            schedule_call(self.env, fault.duration, self._app_back, (k, row))

    def _app_back(self, event: Call) -> None:
        k, row = event.value
        del self.apps_down[k]
        row.t_recovered = self._sale_time()
        if self.world.interpreter.stopping:
            return
        # a fresh copy of what the instance itself runs in the background (as simulate() starts it); the
        # fleet's runs on the pipeline service, which the crash did not touch
        if self.world.app is not None:
            cpu = self.world.app.instances[k]
            for gen in self.strategy.background_of(k):
                self.world.interpreter.start(gen, _ignore, math.inf, None, TaskKind.BACKGROUND, cpu)

    def _tracked_start(self, gen: Any, done: Any, deadline: float = math.inf, tag: Any = None,
                       kind: TaskKind = TaskKind.REQUEST, cpu: Any = None) -> Task:
        # Only a task on an app instance's CPU belongs to that instance: the fleet's background work runs
        # on the pipeline service, and with the app tier off (no CPU costs) a task a request spawned
        # cannot be told apart from the service's.
        instance = -1 if cpu is None else cpu.index
        if instance < 0 or instance >= len(self.live):
            return self._start(gen, done, deadline, tag, kind, cpu)
        if instance in self.apps_down:  # a dead instance starts nothing
            gen.close()
            task = Task(gen, done, deadline, tag, kind, instance, cpu)
            task.finished = True
            done(task, None)
            return task
        live = self.live[instance]
        task = self._start(gen, self._untrack(done, live), deadline, tag, kind, cpu)
        if not task.finished:
            live.add(task)
        return task

    def _tracked_request(self, gen: Any, done: Any, deadline: float, tag: Any, instance: int) -> Task:
        row = self.apps_down.get(instance)
        if row is not None:  # refused at once: connection refused
            gen.close()
            task = Task(gen, done, deadline, tag, TaskKind.REQUEST, instance)
            task.finished = True
            row.requests_errored += 1
            done(task, Outcome.ERROR)
            return task
        live = self.live[instance]
        task = self._start_request(gen, self._untrack(done, live), deadline, tag, instance)
        if not task.finished:
            live.add(task)
        return task

    @staticmethod
    def _untrack(done: Any, live: set[Task]) -> Any:
        def finished(task: Task, value: Any) -> object:
            live.discard(task)
            return done(task, value)
        return finished

    # --- the MQ's handlers, when an mq_outage or consumer_crash is configured ---------------------------

    def _publish(self, task: Task, op: Publish) -> None:
        if self.env.now < self.mq_down_until:  # no confirm: the producer publishes again after the timeout
            self.world.interpreter.wake_after(self.scenario_pipeline.confirm_timeout, task, None)
            return
        self._mq[0](task, op)

    def _consume(self, task: Task, op: Consume) -> None:
        self._consumers[task] = op.consumer
        now = self.env.now
        if now < self.mq_down_until:  # the poll fails; the consumer polls again
            self.world.interpreter.wake_after(min(op.block, self.mq_down_until - now), task, None)
            return
        self._mq[1](task, op)

    def _ack(self, task: Task, op: Ack) -> None:
        row = self.consumer_dies.pop(self._consumers.get(task, ""), None)
        if row is not None:  # the consumer dies between its DB commit and this ack
            name = self._consumers.pop(task)
            task.finished = True
            task.gen.close()
            row.commands_lost = 1
            row.note = f"{name} died before acknowledging message {op.msg_id}"
            self.consumers_gone[name] = row
            fault = self.world.scenario.faults[row.name]
            if math.isfinite(fault.duration):
                schedule_call(self.env, fault.duration, self._consumer_back, (name, row, task.cpu))
            return
        if self.env.now < self.mq_down_until:  # the ack is lost: the broker delivers the message again
            self.world.interpreter.wake_after(0.0, task, False)
            return
        self._mq[2](task, op)

    def _consumer_back(self, event: Call) -> None:
        name, row, cpu = event.value
        row.t_recovered = self._sale_time()
        if not self.world.interpreter.stopping:
            self.consumers_gone.pop(name, None)
            self.world.interpreter.start(_pipeline(self.strategy).consumer(name), _ignore, math.inf, None,
                                         TaskKind.BACKGROUND, cpu)

    # --- recoveries --------------------------------------------------------------------------------

    def _roll_back(self, node: FaultyNode) -> int:
        """Promote the replica's copy: the writes newer than the replica lag are lost. Returns how many."""
        node.sync_replica(self.env.now)
        lost = len(node.log)
        self.rolled_back.extend(task for _, _, task in node.log)
        node.log.clear()
        node.store = node.replica if node.replica is not None else {}
        node.replica = None
        # the promoted copy holds every write the replica had received: a later restart empty loses them
        node.applied = max(0, node.applied - lost)
        return lost

    def _count_rollback(self, row: FaultRow, before: Inventory, after: Inventory) -> None:
        row.units_rolled_back = max(0, before.sold - after.sold)
        row.units_restored = max(0, after.remaining - before.remaining)

    def _uncovered(self, event: Call) -> None:
        node, row = event.value
        if not node.up:
            self.cluster.lose_coverage(node)
            row.note += f"; the whole cluster down from t={self._sale_time():.6f} s (full coverage required)"

    def _promoted(self, event: Call) -> None:
        node, row = event.value
        if node.replicas > 0:  # another replica resyncs from the new master
            node.replicate_from_scratch()
        self.cluster.come_up(node)
        row.t_recovered = self._sale_time()

    def _restarted(self, event: Call) -> None:
        node, row = event.value
        self.cluster.come_up(node)
        row.t_recovered = self._sale_time()

    def _rejoin(self, event: Call) -> None:
        node = event.value
        node.advance(self.env.now)
        node.replicas += 1
        node.replicate_from_scratch()

    # --- the result ----------------------------------------------------------------------------------

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([row.__dict__ for row in self.rows], columns=list(TABLE_COLUMNS))

    def losses(self) -> list[FaultLoss]:
        return [row.loss() for row in self.rows]

    def restored(self) -> int:
        return sum(row.units_restored for row in self.rows)

    def rolled_back_requests(self) -> np.ndarray:
        """Indices of the requests whose applied deduction a promotion rolled back (the per-request check)."""
        return np.array(sorted({task.tag for task in self.rolled_back if task.kind is TaskKind.REQUEST}),
                        dtype=np.int64)

    def account(self, summary: dict[str, Any], requests: pd.DataFrame, inventory: Inventory,
                violations: list[str]) -> tuple[list[str], list[str]]:
        """Add the loss figures to ``summary``; split ``violations`` into (violations, broken by fault)."""
        codes = requests["outcome"].cat.codes.to_numpy()
        qty = requests["qty"].to_numpy()
        acknowledged = acknowledged_units(codes, qty)
        summary.update(inventory_losses(inventory, acknowledged, self.restored()))
        # the per-request check: acknowledged requests whose applied deduction a promotion rolled back
        rolled = self.rolled_back_requests()
        rolled = rolled[codes[rolled] == 0] if len(rolled) else rolled
        summary["lost_acknowledged_requests"] = int(len(rolled))
        summary["lost_acknowledged_checked"] = int(qty[rolled].sum()) if len(rolled) else 0
        summary["faults_fired"] = len(self.rows)
        summary["fault_errors"] = sum(row.requests_errored for row in self.rows)
        if summary["oversold_promised"] > 0:  # never oversell, as the buyers were told
            violations = [*violations, f"oversell: acknowledged {acknowledged} units > initial stock "
                                       f"{inventory.initial} (oversold_promised {summary['oversold_promised']})"]
        ended = {f"{int(count)} {what} (first at t={first - self.t0:.6f} s)":
                 "a fault failed its Redis op, or lost the data it needed"
                 for what, (count, first) in self.world.interpreter.fault_ended.items()}
        if self.consumers_gone and len(self.consumers_gone) >= self.scenario_pipeline.consumers:
            # every consumer died and none restarted: nothing applies the records left in the broker, so the
            # reconciliation cannot hold; that is the crash's doing (it lost no data: the records are kept)
            cause = "; ".join(f"consumer_crash {row.name!r}: {name} died and did not restart"
                              for name, row in self.consumers_gone.items()) + ": no consumer left to apply the records"
            ended.update({v: cause for v in violations if v.startswith("reconciliation:")})
            violations = [v for v in violations if not v.startswith("reconciliation:")]
        kept, broken = broken_by_fault(violations, self.losses(), ended)
        summary["broken_by_fault"] = len(broken)
        return kept, broken


def _ignore(_task: Task, _value: Any) -> None:
    pass
