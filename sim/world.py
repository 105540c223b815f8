"""simulate(scenario, seed) -> Result: one flash sale in simulated time."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import Any

import pandas as pd
import simpy

from engine.distributions import sampler
from engine.gate.admission import fleet, merged
from engine.model import Inventory
from engine.result import (
    Result,
    gated,
    requests_frame,
    soldout_figures,
    stranded_unit_seconds,
    stranded_units,
    summarize,
)
from engine.scenario import Scenario, ScenarioError
from engine.strategies import STRATEGIES, Strategy, strategy_class
from engine.streams import Streams
from engine.tasks import TaskKind
from engine.workload import Schedule, open_loop_schedule
from sim.app import AppTier, ClientHop, routes
from sim.clients import ClosedLoopUsers, OpenLoopClients, Progress, Retries
from sim.faults import Faults
from sim.host import Host
from sim.interpreter import Interpreter, Task
from sim.kernel import Environment, schedule_call
from sim.servers.redis_node import FaultyCluster, RedisCluster

# Servers beyond Redis (a database, a message queue) install themselves here: each
# installer is called with the new World and adds its component (an attribute)
# and the interpreter handlers for its ops. Keep the list order fixed.
COMPONENTS: list[Callable[[World], None]] = []


class World:
    """The simulated servers one strategy runs against."""

    def __init__(self, scenario: Scenario, streams: Streams):
        self.scenario = scenario
        self.streams = streams
        self.env = Environment()
        # Faults and WAIT need a cluster that can lose, refuse and hold commands (sim.faults); without
        # them the plain one runs, with exactly the code and the draws it always had.
        self.faulty = bool(scenario.faults) or scenario.redis.wait_replicas > 0
        cluster_class = FaultyCluster if self.faulty else RedisCluster
        self.cluster = cluster_class(
            self.env, scenario.redis, scenario.network.redis,
            streams.generators("nodes", scenario.redis.nodes), streams.generator("network"),
            *((streams.generators("faults", scenario.redis.nodes),) if self.faulty else ()),
        )
        # The app tier costs events only when its CPU costs anything; otherwise requests run
        # on their instance for free (its state still matters: flags, registries, pools).
        self.app = AppTier(scenario.app, streams.generator("app")) if scenario.app.costs_cpu else None
        # One machine under every server (host.cores > 0): their CPU work also takes one of its cores.
        self.host = Host(scenario.host.cores, self.env) if scenario.host.cores else None
        if self.host is not None:
            for node in self.cluster.nodes:
                node.host = self.host
            for instance in (*self.app.instances, self.app.service) if self.app is not None else ():
                instance.share(self.host)
        hop = scenario.network.client
        self.client_hop = ClientHop(hop, sampler(hop, streams.generator("client"))) if hop.mean > 0 else None
        self.gates = fleet(scenario.gate, scenario.app.instances)  # admission control (None: off)
        self.interpreter = Interpreter(self.env, self.cluster, self.app, self.client_hop, self.gates)
        self.cluster.interpreter = self.interpreter
        # Components answer reads of their own keys ("db:..." -> the DB) and add summary figures.
        self.readers: dict[str, Callable[[str], Any]] = {}
        self.summaries: list[Callable[[], dict[str, float]]] = []
        for install in COMPONENTS:
            install(self)

    def read(self, key: str) -> Any:
        reader = self.readers.get(key.partition(":")[0]) if self.readers else None
        return reader(key) if reader is not None else self.cluster.read(key)

    def run_to_end(self, gen: Any, kind: TaskKind = TaskKind.SETUP) -> Any:
        """Run one generator to completion (setup, drain), advancing simulated time."""
        finished = self.env.event()
        self.interpreter.start(gen, lambda _task, value: finished.succeed(value), kind=kind)  # type: ignore[arg-type]
        if not finished.triggered:
            self.env.run(until=finished)
        return finished.value

    def quiet(self) -> None:
        """Advance simulated time until every spawned task has finished (setup's DB moves, ...)."""
        if self.interpreter.spawned:
            quiet = self.env.event()
            self.interpreter.on_quiet.append(quiet.succeed)
            self.env.run(until=quiet)


def resolve_strategy(scenario: Scenario, strategy: str | None) -> type[Strategy]:
    name = strategy or scenario.strategy
    if name not in STRATEGIES:
        raise ScenarioError(f"unknown strategy {name!r}; choose from: {', '.join(STRATEGIES)}")
    return strategy_class(name)


def simulate(scenario: Scenario, seed: int = 0, strategy: str | None = None,
             progress: Progress | None = None, schedule: Schedule | None = None) -> Result:
    """Run one sale of ``scenario`` with ``strategy`` (default: ``scenario.strategy``).

    Same scenario and seed give identical results; the buyers' arrivals depend
    only on the workload and the seed, not on the strategy. ``schedule``
    replays given open-loop arrivals (e.g. a recorded trace) instead of
    drawing them from the workload section.
    """
    wall = time.perf_counter()
    cls = resolve_strategy(scenario, strategy)
    streams = Streams(seed)
    world = World(scenario, streams)
    env = world.env
    strat = cls(scenario, streams.generator("strategy"))
    strat.oracle = world.read  # exact, free reads for metrics only (false sold-outs), never decisions

    world.run_to_end(strat.setup(), TaskKind.SETUP)
    world.quiet()  # what setup spawned (e.g. DB pre-allocations) lands before the sale, as in real mode
    for node in world.cluster.nodes:
        node.reset_counters()
    if world.app is not None:
        world.app.reset_counters()
    if world.host is not None:
        world.host.reset_counters()
    t0 = env.now
    faults = Faults(world, strat, t0) if world.faulty else None

    clients_done = env.event()

    def servable(qty: int) -> bool:  # exact state at this instant: the sold-out metrics (docs/soldout.md)
        return strat.servable(qty, world.read)

    retries = Retries(scenario.workload, streams) if scenario.workload.retry > 0 else None
    if schedule is None and scenario.workload.kind == "closed":
        clients: Any = ClosedLoopUsers(env, world.interpreter, strat.deduct, scenario.workload, streams,
                                       lambda: clients_done.succeed(), progress, scenario.app, world.client_hop,
                                       servable, retries)
    else:
        if schedule is None:
            schedule = open_loop_schedule(scenario.workload, streams)
        clients = OpenLoopClients(env, world.interpreter, strat.deduct, schedule,
                                  scenario.workload.timeout, lambda: clients_done.succeed(), progress,
                                  routes(scenario.app, len(schedule), streams.generator("routing")),
                                  world.client_hop, servable, retries)

    timeline: list[dict[str, float]] = []
    smallest = int(schedule.qty.min()) if schedule is not None and len(schedule) else scenario.workload.qty.low
    sampler = _TimelineSampler(env, strat, world.read, scenario.report.timeline_interval, t0, timeline, smallest)
    if world.app is None:  # no CPU to run it on: the fixed order of Strategy.background()
        for gen in strat.background():
            world.interpreter.start(gen, _ignore, math.inf, None, TaskKind.BACKGROUND)
    else:  # each instance's on its own CPU; the fleet's on the pipeline service's (where the interpreter puts it)
        for owner in (None, *range(len(world.app.instances))):
            cpu = None if owner is None else world.app.instances[owner]
            for gen in strat.background_of(owner):
                world.interpreter.start(gen, _ignore, math.inf, None, TaskKind.BACKGROUND, cpu)
    clients.start()
    if isinstance(clients, OpenLoopClients):
        clients.run(until=clients_done)
    elif not clients_done.triggered:
        env.run(until=clients_done)
    horizon = env.now - t0
    if faults is not None:
        faults.stop()
    world.run_to_end(strat.drain(), TaskKind.DRAIN)
    world.interpreter.stopping = True
    sampler.stop()

    inventory = strat.inventory(world.read)
    log = clients.log
    n = log.size
    requests = requests_frame(log.t_arrival[:n], log.t_done[:n], log.outcome[:n], log.qty[:n],
                              log.node[:n], log.ops[:n], log.servable[:n])
    summary = summarize(cls.name, requests, inventory, [node.busy for node in world.cluster.nodes],
                        horizon, strat.counters(), scenario.report.warmup)
    summary.update(soldout_figures(requests, checked=True))
    timeline_frame = pd.DataFrame(timeline)
    summary["stranded_unit_s"] = stranded_unit_seconds(timeline_frame)
    summary.setdefault("stranded_end", 0)
    for figures in world.summaries:
        summary.update(figures())
    if world.app is not None:
        summary.update(world.app.figures(t0, t0 + horizon))
    if world.host is not None:
        summary.update(world.host.figures(t0, t0 + horizon))
    if world.gates is not None:
        summary.update(merged(world.gates).figures(gated(requests)))
    errors = world.interpreter.errors
    summary.update(errors.figures())
    summary.update(clients.figures())  # client retries, when workload.retry > 0
    if errors.warning():
        print(errors.warning(), file=sys.stderr)
    violations = inventory.violations() + strat.reconciliation_differences()
    broken: list[str] = []
    table = pd.DataFrame()
    if faults is not None:
        violations, broken = faults.account(summary, requests, inventory, violations)
        table = faults.table()
    summary["violations"] = len(violations)
    return Result(
        scenario=scenario, strategy=cls.name, seed=streams.seed, mode="sim", requests=requests,
        timeline=timeline_frame, summary=summary, inventory=inventory, violations=violations,
        events=_events_frame(strat.event_log, t0), wall_seconds=time.perf_counter() - wall,
        faults=table, broken_by_fault=broken,
    )


def _events_frame(log: list[dict[str, Any]], t0: float) -> pd.DataFrame:
    events = pd.DataFrame(log)
    if not events.empty:
        events["t"] = events["t"] - t0  # seconds from sale start, like every other table
    return events


def _ignore(_task: Task, _value: Any) -> None:
    pass


class _TimelineSampler:
    """Samples the strategy's inventory every ``interval`` simulated seconds."""

    def __init__(self, env: simpy.Environment, strategy: Strategy, read: Callable[[str], Any],
                 interval: float, t0: float, rows: list[dict[str, float]], smallest: int = 1):
        self.env = env
        self.smallest = smallest  # the smallest quantity a buyer asks: smaller pieces are stranded
        self.strategy = strategy
        self.read = read
        self.interval = interval
        self.t0 = t0
        self.rows = rows
        self.running = True
        self._sample(None)

    def _sample(self, _event: simpy.Event | None) -> None:
        if not self.running:
            return
        self._append()
        schedule_call(self.env, self.interval, self._sample)

    def stop(self) -> None:
        self.running = False
        self._append()

    def _append(self) -> None:
        inventory = self.strategy.inventory(self.read)
        row = _row(self.env.now - self.t0, inventory)
        row["stranded"] = stranded_units(self.strategy.pieces(inventory), self.smallest)
        self.rows.append(row)


def _row(t: float, inventory: Inventory) -> dict[str, float]:
    row = {"t": t, "sold": inventory.sold, "remaining": inventory.remaining}
    row.update(inventory.holders)
    row.update({f"in_flight:{k}": v for k, v in inventory.in_flight.items()})
    return row
