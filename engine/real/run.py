"""run_real(scenario, seed, ...) -> Result: one flash sale against real servers.

The real twin of ``sim.world.simulate``: the same strategy class, the same
arrival schedule (same seed => the same intended send times), the same
``Result`` shape (requests frame, summary, timeline, inventory, events), with
``mode = "real"``. Steps:

1. discover the target (single node or cluster), refuse a namespace that
   already exists, load the scripts, run the strategy's ``setup``;
2. fork ``workers`` load-generator processes (:mod:`engine.real.loadgen`),
   the app instances, and one more, the *pipeline service*, which runs the
   fleet's background work (the async pipeline's triggers and consumers: in
   production a service of its own, not the app servers that answer buyers)
   and, once every worker's buyers are done, the strategy's drain; sample the
   inventory from the servers every ``report.timeline_interval`` meanwhile;
3. read the final inventory back from the servers, check the invariants,
   delete the namespace (unless ``keep``).

With faults in the scenario (``faults`` section, ``flashsim run --real --fault``)
the coordinator also runs the injector of :mod:`engine.real.faults` during step 2,
on the cluster ``RealOptions.cluster`` names (one flashsim started), and the
summary gains the loss figures of :mod:`engine.real.losses`, read back from the
servers after the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from engine.gate.admission import GateStats
from engine.model import Inventory, Outcome
from engine.real import drivers, mq, sql  # noqa: F401  (mq and sql register their drivers)
from engine.real.eventloop import run_precise
from engine.real.faults import PROMOTION_WAIT, Injector, check_faults, fault_times
from engine.real.interpreter import RealInterpreter
from engine.real.links import RedisLinks
from engine.real.loadgen import ClosedLoopUsers, OpenLoopSender, WorkerLog, WorkerPlan, hosted, wait_barrier
from engine.real.losses import real_loss_figures
from engine.real.servers import NamespaceInUse, Servers
from engine.real.sql import MAX_POOL_PER_PROCESS
from engine.real.target import RedisTarget, TargetError, Topology, discover, rediscover
from engine.result import (
    Result,
    gated,
    requests_frame,
    soldout_figures,
    stranded_unit_seconds,
    stranded_units,
    summarize,
)
from engine.scenario import Scenario
from engine.strategies import STRATEGIES, Strategy, strategy_class
from engine.streams import Streams
from engine.tasks import StrategyErrors, TaskKind
from engine.workload import open_loop_schedule

Progress = Callable[[int, int | None], None]
START_MARGIN = 0.3  # seconds between the fork and the sale start: workers connect meanwhile
DRAIN_BARRIER_TIMEOUT = 600.0


# Each sample reads every inventory key from Redis and, with the async pipeline on, the DB's cells
# too: load the simulator does not have. Measured on the 2-core machine of the shipped profile
# (single_redis, 3,000 Poisson buyers/s, pipeline on, 1 worker): sampling every 10 ms gave a
# median latency of 1.95 ms, every 1 s 0.58 ms. Real runs sample at most every 0.1 s by default.
MIN_SAMPLE_INTERVAL = 0.1


@dataclass(frozen=True)
class RealOptions:
    """How to run for real (everything but the scenario and seed)."""

    target: RedisTarget = RedisTarget()
    namespace: str | None = None  # default: a fresh "fsreal-<hex>"
    workers: int = 1
    lanes: int = 4  # connections per master per worker
    keep: bool = False  # leave the run's keys (and scratch DB) in place for inspection
    db_url: str | None = None  # MariaDB/MySQL server (default: FLASHSIM_DB_URL or mysql://root@127.0.0.1:3306)
    # Seconds between the coordinator's inventory samples (Result.timeline); None: the scenario's
    # report.timeline_interval, but not under MIN_SAMPLE_INTERVAL (sampling is load; see there).
    sample_interval: float | None = None
    # The LocalCluster serving ``target`` when flashsim started it: the only servers the scenario's
    # faults may be injected into (engine.real.faults); None refuses every fault.
    cluster: Any = None


def run_real(scenario: Scenario, seed: int = 0, strategy: str | None = None,
             options: RealOptions | None = None, progress: Progress | None = None) -> Result:
    """Run one sale of ``scenario`` against real servers; same ``Result`` shape as ``simulate``."""
    options = options or RealOptions()
    if options.workers < 1:
        raise TargetError(f"workers must be >= 1 (got {options.workers})")
    if options.sample_interval is not None and not options.sample_interval > 0:
        raise TargetError(f"sample interval must be > 0 s (got {options.sample_interval})")
    wall = time.perf_counter()
    name = strategy or scenario.strategy
    if name not in STRATEGIES:
        raise TargetError(f"unknown strategy {name!r}; choose from: {', '.join(STRATEGIES)}")
    cls = strategy_class(name)
    namespace = options.namespace or f"fsreal-{uuid.uuid4().hex[:10]}"
    streams = Streams(seed)
    strat = cls(scenario, streams.generator("strategy"), namespace=namespace)
    check_faults(scenario.faults, options.cluster, options.target, options.workers, scenario.app.instances,
                 scenario.workload.kind != "closed")
    owned = False
    restore = _interrupt_on_sigterm()
    context = drivers.Context(options.target, namespace, options.keep, scenario=scenario,
                              options={"db_url": options.db_url} if options.db_url else {})
    try:
        topology, origin, cpu_before = asyncio.run(_prepare(strat, options.target, context))
        owned = True
        load = _load(strat, scenario, seed, options, topology, origin, progress, context)
        inventory, checks, topology = asyncio.run(_final(strat, options.target, topology, context))
    finally:
        try:
            if owned and not options.keep:
                asyncio.run(_cleanup(options.target, namespace, context, topology if owned else None))
        finally:
            restore()
    requests = _merge(load.logs, scenario)
    node_busy = [after - before for before, after in zip(cpu_before, load.cpu)]
    summary = summarize(cls.name, requests, inventory, node_busy, load.t_clients - (load.t0 - origin), load.counters,
                        scenario.report.warmup)
    summary.update(load.errors.figures())
    if load.crashed:
        summary["app_crash_errors"] = load.crashed
    if scenario.faults:
        summary.update(real_loss_figures(requests, inventory))
    summary.update(send_lag_figures(load.logs))
    summary["redis_cpu_s"] = sum(node_busy)  # the masters' CPU over the run (INFO cpu, before and after)
    summary["driver_cpu_s"] = sum(load.process_cpu[:-1])  # the load generators' (app instances') CPU
    summary["service_cpu_s"] = load.process_cpu[-1]  # the pipeline service's
    if load.gate is not None:
        summary.update(load.gate.figures(gated(requests)))
    # No exact global state at the instant of a refusal or a timeout on real servers: NaN, not a guess.
    summary.update(soldout_figures(requests, checked=False))
    timeline_frame = pd.DataFrame(load.timeline)
    summary["stranded_unit_s"] = stranded_unit_seconds(timeline_frame)  # from the coordinator's samples
    summary.setdefault("stranded_end", 0)  # sharded: read from the servers by the drain
    if load.errors.warning():
        print(load.errors.warning(), file=sys.stderr)
    violations = inventory.violations() + checks + load.reconciliation
    summary["violations"] = len(violations)
    events_frame = pd.DataFrame(load.events + load.fault_events)
    if not events_frame.empty:
        events_frame["t"] = events_frame["t"] - (load.t0 - origin)
        events_frame = events_frame.sort_values("t", kind="stable").reset_index(drop=True)
    return Result(scenario=scenario, strategy=cls.name, seed=streams.seed, mode="real", requests=requests,
                  timeline=timeline_frame, summary=summary, inventory=inventory, violations=violations,
                  events=events_frame, wall_seconds=time.perf_counter() - wall)


def _interrupt_on_sigterm() -> Callable[[], None]:
    """While a run is on, SIGTERM raises KeyboardInterrupt, so the cleanup still runs; returns the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def interrupt(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt("SIGTERM")

    previous = signal.signal(signal.SIGTERM, interrupt)

    def undo() -> None:
        signal.signal(signal.SIGTERM, previous)

    return undo


async def _prepare(strat: Strategy, target: RedisTarget, context: drivers.Context
                   ) -> tuple[Topology, float, list[float]]:
    topology = await discover(target)
    servers = Servers(target, topology)
    try:
        declared = [key for key in tuple(strat.keys()) if not drivers.answers(key)]
        foreign = [key for key in declared if not key.startswith(strat.namespace + ":")]
        if foreign:
            raise TargetError(f"strategy {strat.name} declares keys outside its namespace "
                              f"{strat.namespace!r} (e.g. {foreign[0]!r}); refusing to run")
        found = await servers.existing(strat.namespace)
        if found:
            raise NamespaceInUse(f"namespace {strat.namespace!r} already exists on {target.describe()} "
                                 f"(e.g. {found[0]!r}); pick another or delete it yourself")
        await drivers.check(context)
        loop = asyncio.get_running_loop()
        origin = loop.time()
        async with connected(target, context, origin, topology=topology) as interpreter:
            await interpreter.run_to_end(strat.setup(), TaskKind.SETUP)
            await interpreter.quiet()  # what setup spawned (e.g. DB pre-allocations) lands before the sale
        cpu = await servers.cpu_seconds()
    finally:
        await servers.close()
    return topology, origin, cpu


@contextlib.asynccontextmanager
async def connected(target: RedisTarget, context: drivers.Context, origin: float | None = None, lanes: int = 1,
                    topology: Topology | None = None) -> AsyncIterator[RealInterpreter]:
    """A real interpreter on the running loop: lanes to every master, every driver installed; closed after.

    ``origin`` is the loop time ``Now()`` reports as 0 (default: now). Setup, the
    workers and tests that run generators on the real servers all use it.
    """
    loop = asyncio.get_running_loop()
    interpreter = RealInterpreter(loop, loop.time() if origin is None else origin)
    links = RedisLinks(target, topology or await discover(target), interpreter, lanes)
    await links.open()
    interpreter.redis = links
    try:
        interpreter.drivers = await drivers.install(interpreter, context)
        yield interpreter
    finally:
        for driver in reversed(interpreter.drivers):
            await driver.close()
        await links.close()


@dataclass
class _Load:
    """What the workers of one run sent back, merged (and the coordinator's timeline)."""

    logs: list[WorkerLog]
    counters: dict[str, float]  # the strategy's and the servers' figures, summed over workers
    events: list[dict[str, Any]]
    errors: StrategyErrors
    t0: float  # loop time of the sale start
    t_clients: float  # seconds from the origin until the last worker's buyers were done
    cpu: list[float]  # Redis CPU seconds per master after the drain
    timeline: list[dict[str, float]]
    reconciliation: list[str]  # the pipeline's differences, as violations (the pipeline service drains)
    process_cpu: list[float]  # CPU seconds of each process since its fork: the workers', then the service's
    gate: GateStats | None = None  # the gates of every worker's instances, merged (None: no gate)
    fault_events: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # the injector's (origin clock)
    crashed: int = 0  # requests of app workers killed by an app_crash fault, answered as errors


def _load(strat: Strategy, scenario: Scenario, seed: int, options: RealOptions, topology: Topology,
          origin: float, progress: Progress | None, context: drivers.Context) -> _Load:
    """Fork the workers, sample the timeline (and inject the faults) while they run, gather their logs."""
    workers = options.workers
    ctx = multiprocessing.get_context("fork")
    service = workers  # the pipeline service's plan index: after the load generators'
    schedule = None if scenario.workload.kind == "closed" else open_loop_schedule(scenario.workload, Streams(seed))
    total = len(schedule) if schedule is not None else None
    barrier = ctx.Barrier(workers + 1)
    done_counts = ctx.Array("q", workers, lock=False)
    t0 = time.monotonic() + START_MARGIN + 0.05 * (workers + 1)
    plans = [WorkerPlan(k, workers, scenario, seed, origin, t0, schedule, barrier, done_counts)
             for k in range(workers + 1)]
    crashable = schedule is not None and any(f.kind == "app_crash" for f in scenario.faults.values())
    arrived = ctx.Array("b", workers + 1, lock=False)  # process k reached the drain barrier
    for plan in plans:
        plan.extra["arrived"] = arrived
        if crashable and not plan.service:  # a worker that may be killed keeps its outcomes where we can read them
            assert schedule is not None
            plan.extra["shared"] = shared_columns(ctx, len(range(plan.index, len(schedule), workers)))
    pipes, procs = [], []
    for plan in plans:
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_worker_main, args=(plan, strat, options, topology, context, child), daemon=True)
        proc.start()
        child.close()
        pipes.append(parent)
        procs.append(proc)
    injector = None
    if scenario.faults:
        horizon = (schedule.times[-1] if schedule is not None and len(schedule) else scenario.workload.duration)
        firings = fault_times(scenario.faults, Streams(seed).generator("faults"), float(horizon))

        def kill_worker(k: int) -> None:
            procs[k].kill()
            if not arrived[k]:  # it will never reach the drain barrier: reach it on its behalf
                threading.Thread(target=_stand_in, args=(barrier,), daemon=True).start()

        injector = Injector(firings, options.cluster, t0, origin, kill_worker, workers, scenario.app.instances)
    results: list[Any] = [None] * (workers + 1)
    timeline: list[dict[str, float]] = []
    try:
        asyncio.run(_watch(strat, options.target, topology, scenario, t0, pipes, procs, results,
                           timeline, done_counts, total, progress, context, sample_interval(options, scenario),
                           injector))
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
            proc.join(5)
    crashed_at = injector.crashed_workers if injector is not None else {}
    failures = [r[1] for r in results if r is not None and r[0] not in ("ok", "crashed")]
    if failures or not all(results):
        barrier.abort()
        raise TargetError(f"real run failed: {failures[0] if failures else 'a worker died'}")
    outs = []
    crashed = 0
    for k, result in enumerate(results):
        if result[0] == "ok":
            outs.append(result[1])
            continue
        assert schedule is not None
        log, unanswered = crashed_log(plans[k], crashed_at[k])
        crashed += unanswered
        outs.append({"log": log, "tally": None, "events": [], "errors": StrategyErrors(), "servers": {},
                     "gate": None, "t_clients": t0 - origin + crashed_at[k], "cpu": [], "recon": [],
                     "process_cpu": math.nan})  # what it counted died with it
    logs = [o["log"] for o in outs]
    # the strategy's figures, over processes (a worker an app_crash killed took its own with it)
    counters = strat.merge_tallies([out["tally"] for out in outs if out["tally"] is not None])
    for out in outs:  # the servers' side (DB statements, MQ deliveries), summed over workers
        for key, value in out["servers"].items():
            counters[key] = counters.get(key, 0.0) + value
    errors = StrategyErrors()
    for out in outs:
        errors.merge(out["errors"])
    gate: GateStats | None = None  # the gates of every worker's instances
    for out in outs:
        if out["gate"] is not None:
            gate = gate or GateStats()
            gate.merge(out["gate"])
    return _Load(logs=logs[:service], counters=counters, events=[e for out in outs for e in out["events"]],
                 errors=errors, t0=t0, t_clients=max(o["t_clients"] for o in outs[:service]),
                 cpu=outs[service]["cpu"], timeline=timeline, reconciliation=outs[service]["recon"], gate=gate,
                 process_cpu=[o["process_cpu"] for o in outs],
                 fault_events=injector.events if injector is not None else [], crashed=crashed)


SHARED_COLUMNS = (("t_done", "d"), ("outcome", "b"), ("node", "h"), ("ops", "i"), ("lag", "d"))


def shared_columns(ctx: Any, n: int) -> dict[str, Any]:
    """Per-request columns in shared memory (open loop), so a worker killed mid-run leaves its outcomes behind."""
    columns = {name: ctx.RawArray(code, max(1, n)) for name, code in SHARED_COLUMNS}
    np.frombuffer(columns["t_done"], dtype=np.float64)[:] = np.nan
    np.frombuffer(columns["outcome"], dtype=np.int8)[:] = -1
    np.frombuffer(columns["node"], dtype=np.int16)[:] = -1
    return columns


def crashed_log(plan: WorkerPlan, crash: float) -> tuple[WorkerLog, int]:
    """The log of a worker killed ``crash`` seconds after the sale start, from its shared columns.

    A request it had sent and not answered ends as ``error`` at the crash; one due after the crash
    meets a dead app and ends as ``error`` at its intended instant. Returns the log and how many
    requests ended so.
    """
    assert plan.schedule is not None
    indices = np.arange(plan.index, len(plan.schedule), plan.workers)
    n = len(indices)
    shared = plan.extra["shared"]
    times = plan.schedule.times[indices]
    t_done = np.frombuffer(shared["t_done"], dtype=np.float64)[:n].copy()
    outcome = np.frombuffer(shared["outcome"], dtype=np.int8)[:n].copy()
    node = np.frombuffer(shared["node"], dtype=np.int16)[:n].copy()
    ops = np.frombuffer(shared["ops"], dtype=np.int32)[:n].copy()
    lag = np.frombuffer(shared["lag"], dtype=np.float64)[:n].copy()
    unanswered = outcome < 0
    t_done[unanswered] = np.maximum(times[unanswered], crash)
    outcome[unanswered] = Outcome.ERROR
    return WorkerLog(indices, times, t_done, outcome, plan.schedule.qty[indices], node, ops, lag), int(unanswered.sum())


def _stand_in(barrier: Any) -> None:
    """Wait at the drain barrier for a worker that was killed (so the others drain)."""
    with contextlib.suppress(Exception):
        barrier.wait(DRAIN_BARRIER_TIMEOUT)


def _worker_main(plan: WorkerPlan, strat: Strategy, options: RealOptions, topology: Topology,
                 context: drivers.Context, pipe: Any) -> None:
    """Entry point of a forked worker process: run its share, send back its log."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the coordinator terminates workers on failure
    # Everything the worker inherited (numpy, pandas, the strategy) stays alive for good: move it out
    # of the collector's sight, so a full collection walks only what the sale allocates. Without
    # it, one gen-2 collection stalled every request of a busy worker for 170-200 ms (measured
    # here: single_redis, 256 closed-loop users, once per 0.5 s run).
    gc.freeze()
    try:
        if plan.index > 0:  # own random choices per process (in place: samplers keep their reference)
            fresh = np.random.default_rng(np.random.SeedSequence([plan.seed, plan.index, 0x5EA1]))
            strat.reseed(fresh)
        connections = len(topology.masters) * options.lanes + MAX_POOL_PER_PROCESS + 16
        work = _worker(plan, strat, options, topology, dataclasses.replace(context, worker=plan.index))
        if os.environ.get("FLASHSIM_PROFILE_WORKER"):  # cProfile of each worker, for finding the driver's costs
            import cProfile
            profiler = cProfile.Profile()
            out = profiler.runcall(run_precise, work, connections)
            profiler.dump_stats(f"{os.environ['FLASHSIM_PROFILE_WORKER']}.{plan.index}")
        else:
            out = run_precise(work, connections)
        out["process_cpu"] = time.process_time()  # a forked child's CPU clock starts at 0
        pipe.send(("ok", out))
    except BaseException as err:  # report every failure to the coordinator, then exit
        try:
            plan.barrier.abort()
        except Exception:
            pass
        pipe.send(("error", f"worker {plan.index}: {err.__class__.__name__}: {err}"))
    finally:
        pipe.close()
        os._exit(0)  # skip the parent's atexit handlers and inherited resources


async def _worker(plan: WorkerPlan, strat: Strategy, options: RealOptions, topology: Topology,
                  context: drivers.Context) -> dict[str, Any]:
    if plan.service:
        return await _service(plan, strat, options, topology, context)
    loop = asyncio.get_running_loop()
    async with connected(options.target, context, plan.origin, options.lanes, topology) as interpreter:
        clients: Any = (ClosedLoopUsers if plan.schedule is None else OpenLoopSender)(interpreter, strat.deduct, plan)
        if plan.t0 > loop.time():
            await asyncio.sleep(plan.t0 - loop.time())
        # at the sale start, as in the simulator (triggers keep their phase): each worker runs the
        # background work of the instances it hosts (their registries' refreshers)
        for owner in hosted(plan.index, plan.workers, strat.scenario.app.instances):
            for gen in strat.background_of(owner):
                interpreter.start(gen, lambda _task, _value: None, kind=TaskKind.BACKGROUND)
        await clients.run()
        t_clients = loop.time() - plan.origin
        plan.progress[plan.index] = clients.finished
        # what the buyers set off (refills, the DB moves they queued) finishes here: the drain runs elsewhere
        await asyncio.wait_for(interpreter.quiet(), DRAIN_BARRIER_TIMEOUT)
        plan.extra["arrived"][plan.index] = 1
        await wait_barrier(plan.barrier, DRAIN_BARRIER_TIMEOUT)
        interpreter.stopping = True
        servers_figures = drivers.figures(interpreter.drivers)
        if strat.scenario.faults:  # what the links did about the faults (redirects, reconnections, lost replies)
            servers_figures.update(interpreter.redis.figures())
        return {"log": clients.log(), "tally": strat.tally(), "events": strat.event_log,
                "errors": interpreter.errors, "t_clients": t_clients, "cpu": [], "recon": [],
                "servers": servers_figures, "gate": clients.admission.stats()}


async def cpu_now(target: RedisTarget, topology: Topology) -> list[float]:
    """Each master's CPU seconds now; NaN for a master that is no longer the process it was (a failover)."""
    now = await rediscover(target, topology)
    servers = Servers(target, now)
    try:
        cpu = await servers.cpu_seconds()
    finally:
        await servers.close()
    if now.masters != topology.masters:
        cpu = [value if len(now.masters) == len(topology.masters) and now.masters[i] == topology.masters[i]
               else math.nan for i, value in enumerate(cpu)]
    return cpu


async def _service(plan: WorkerPlan, strat: Strategy, options: RealOptions, topology: Topology,
                   context: drivers.Context) -> dict[str, Any]:
    """The pipeline service: the fleet's background work from the sale start, then the drain."""
    loop = asyncio.get_running_loop()
    async with connected(options.target, context, plan.origin, options.lanes, topology) as interpreter:
        if plan.t0 > loop.time():
            await asyncio.sleep(plan.t0 - loop.time())
        for gen in strat.background_of(None):
            interpreter.start(gen, lambda _task, _value: None, kind=TaskKind.BACKGROUND)
        await wait_barrier(plan.barrier, DRAIN_BARRIER_TIMEOUT)
        await interpreter.run_to_end(strat.drain(), TaskKind.DRAIN)
        interpreter.stopping = True
        cpu = await cpu_now(options.target, topology)
        servers_figures = drivers.figures(interpreter.drivers)
        if strat.scenario.faults:
            servers_figures.update(interpreter.redis.figures())
        return {"log": None, "tally": strat.tally(), "events": strat.event_log,
                "errors": interpreter.errors, "t_clients": 0.0, "cpu": cpu,
                "recon": strat.reconciliation_differences(),
                "servers": servers_figures, "gate": None}


async def _watch(strat: Strategy, target: RedisTarget, topology: Topology, scenario: Scenario, t0: float,
                 pipes: list[Any], procs: list[Any], results: list[Any], timeline: list[dict[str, float]],
                 done_counts: Any, total: int | None, progress: Progress | None, context: drivers.Context,
                 sample_interval: float, injector: Injector | None = None) -> None:
    """Coordinator: sample the inventory from the servers until every worker has reported; inject the faults."""
    loop = asyncio.get_running_loop()
    sampler = _Sampler(strat, target, topology, context, tolerant=injector is not None)
    interval = sample_interval
    next_sample = t0
    faults = loop.create_task(injector.run()) if injector is not None else None
    try:
        while True:
            for k, pipe in enumerate(pipes):
                if results[k] is not None:
                    continue
                if injector is not None and k in injector.crashed_workers:
                    results[k] = ("crashed", None)  # killed by an app_crash fault: its log is in shared memory
                    continue
                if pipe.poll():
                    try:
                        results[k] = pipe.recv()
                    except EOFError:  # it died without a word
                        results[k] = ("error", f"worker {k} died (exit code {procs[k].exitcode})")
                    if results[k][0] != "ok":
                        return
                elif not procs[k].is_alive() and not pipe.poll():
                    results[k] = ("error", f"worker {k} died (exit code {procs[k].exitcode})")
                    return
            if all(results):
                break
            if faults is not None and faults.done() and faults.exception() is not None:
                raise faults.exception()  # type: ignore[misc]
            now = loop.time()
            if now >= next_sample:
                inventory = await sampler.read()
                if inventory is not None:
                    timeline.append(_row(loop.time() - t0, inventory, strat, scenario))
                next_sample = max(next_sample + interval, loop.time())
                if progress is not None:
                    progress(int(sum(done_counts)), total)
            await asyncio.sleep(min(0.01, max(0.0, next_sample - loop.time())))
        if faults is not None:  # faults due after the buyers are done never fire; what is under way finishes
            await injector.finish(faults)  # type: ignore[union-attr]
        inventory = await sampler.read()
        if inventory is not None:
            timeline.append(_row(loop.time() - t0, inventory, strat, scenario))
        if progress is not None:
            progress(int(sum(done_counts)), total)
    finally:
        if faults is not None and injector is not None and not injector.finished:
            # the run failed: let what the faults set off settle (a promotion), so the cleanup finds the keys
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(injector.finish(faults), injector.cluster.node_timeout + PROMOTION_WAIT)
        await sampler.close()


class _Sampler:
    """The coordinator's inventory reads; under faults a failed read skips the sample and re-reads the topology."""

    def __init__(self, strat: Strategy, target: RedisTarget, topology: Topology, context: drivers.Context,
                 tolerant: bool):
        self.strat, self.target, self.topology, self.context = strat, target, topology, context
        self.tolerant = tolerant
        self.servers: Servers | None = Servers(target, topology)
        self.skipped = 0

    async def read(self) -> Inventory | None:
        if self.servers is None:
            try:
                self.topology = await rediscover(self.target, self.topology)
            except TargetError:
                return None
            self.servers = Servers(self.target, self.topology)
        try:
            if not self.tolerant:
                return await read_inventory(self.strat, self.servers, self.context)
            return await asyncio.wait_for(read_inventory(self.strat, self.servers, self.context), 1.0)
        except Exception:
            if not self.tolerant:
                raise
            self.skipped += 1
            await self.close()
            return None

    async def close(self) -> None:
        if self.servers is not None:
            servers, self.servers = self.servers, None
            with contextlib.suppress(Exception):
                await servers.close()


async def _final(strat: Strategy, target: RedisTarget, topology: Topology, context: drivers.Context
                 ) -> tuple[Inventory, list[str], Topology]:
    """The inventory read back from the servers, the real-only invariant checks, the topology now.

    The topology is read again first: a fault may have moved a master (a promoted replica).
    """
    topology = await rediscover(target, topology)
    servers = Servers(target, topology)
    try:
        inventory = await read_inventory(strat, servers, context)
        checks = await drivers.final_checks(context, strat, inventory)
    finally:
        await servers.close()
    return inventory, checks, topology


async def _cleanup(target: RedisTarget, namespace: str, context: drivers.Context,
                   known: Topology | None = None) -> None:
    try:
        topology = await (discover(target) if known is None else rediscover(target, known))
        servers = Servers(target, topology)
        try:
            await servers.delete_namespace(namespace)
        finally:
            await servers.close()
    finally:  # the scratch database goes even when a master a fault killed cannot be reached
        await drivers.cleanup(context)


async def read_inventory(strat: Strategy, servers: Servers, context: drivers.Context) -> Inventory:
    """``strat.inventory(read)`` answered from the servers.

    ``inventory`` reads synchronously; the keys it asks for beyond the declared
    ones (``db:`` cells, keys named by values just read) are fetched and it is
    asked again, until it asks for nothing new.
    """
    values: dict[str, Any] = {}
    fetched: set[str] = set()
    wanted = list(strat.keys())
    for _ in range(8):
        missing = [key for key in dict.fromkeys(wanted) if key not in fetched]
        if missing:
            fetched.update(missing)
            values.update(await servers.snapshot([k for k in missing if not drivers.answers(k)]))
            values.update(await drivers.read(context, [k for k in missing if drivers.answers(k)]))
        asked: list[str] = []

        def read(key: str, asked: list[str] = asked) -> Any:
            asked.append(key)
            return values.get(key)

        inventory = strat.inventory(read)
        wanted = [key for key in asked if key not in fetched]
        if not wanted:
            break
    return inventory


def _merge(logs: list[WorkerLog], scenario: Scenario) -> pd.DataFrame:
    """One requests table from the workers' logs (open loop: schedule order; closed: by send time)."""
    index = np.concatenate([log.index for log in logs])
    columns = {name: np.concatenate([getattr(log, name) for log in logs])
               for name in ("t_arrival", "t_done", "outcome", "qty", "node", "ops")}
    order = np.argsort(index, kind="stable") if scenario.workload.kind != "closed" else \
        np.argsort(columns["t_arrival"], kind="stable")
    return requests_frame(*(columns[name][order] for name in ("t_arrival", "t_done", "outcome", "qty", "node", "ops")))


def sample_interval(options: RealOptions, scenario: Scenario) -> float:
    """Seconds between the coordinator's inventory samples (see :data:`MIN_SAMPLE_INTERVAL`)."""
    if options.sample_interval is not None:
        return options.sample_interval
    return max(scenario.report.timeline_interval, MIN_SAMPLE_INTERVAL)


def send_lag_figures(logs: list[WorkerLog]) -> dict[str, float]:
    """How late the load generator released open-loop buyers (p50, p99, max; seconds): latency it added.

    Latency runs from each buyer's intended instant, so a late release counts in it;
    these figures say how much of a real latency is the load generator's own.
    """
    lags = [log.lag for log in logs if log.lag is not None and len(log.lag)]
    if not lags:
        return {}
    lag = np.concatenate(lags)
    p50, p99 = np.percentile(lag, [50, 99])
    return {"send_lag_p50": float(p50), "send_lag_p99": float(p99), "send_lag_max": float(lag.max())}


def _row(t: float, inventory: Inventory, strat: Strategy, scenario: Scenario) -> dict[str, float]:
    row = {"t": t, "sold": inventory.sold, "remaining": inventory.remaining}
    row.update(inventory.holders)
    row.update({f"in_flight:{k}": v for k, v in inventory.in_flight.items()})
    row["stranded"] = stranded_units(strat.pieces(inventory), scenario.workload.qty.low)
    return row
