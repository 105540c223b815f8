"""``flashsim calibrate``: measure the target servers and the driver, and write a profile.

:func:`calibrate` runs its own microbenchmarks (never the validation runs it
will be judged on) and returns a profile (see :mod:`engine.profile`): the
machine and versions, the raw measurements, and the scenario values derived
from them. Measured:

- Redis (:mod:`.redis_costs`): fixed per-command and per-batch cost, every
  script's body, per-record costs of the detail scripts, the round trip, and a
  cross-check of the cost model against ``redis-benchmark EVALSHA``;
- the real driver (:mod:`.driver_cpu`): CPU per request, per op, per local
  refusal, and the pipeline depth it reaches;
- MariaDB/MySQL (:mod:`.db_costs`, when a database URL is given): the commit
  path settings, statement and commit costs, the round trip, and a hot row's
  TPS by concurrency (own client, and ``mariadb-slap`` when installed).

Derived values use the kinds of the scenario's defaults (a lognormal with
cv 0.3 for script and statement bodies: the counters give means, not spreads).
"""

from __future__ import annotations

import asyncio
import datetime
import importlib.metadata
import os
import platform
import socket
import statistics
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from engine.ops import Eval
from engine.profile import known_key
from engine.real import sql as real_sql
from engine.real.calibrate import db_costs, driver_cpu, redis_costs, wake
from engine.real.calibrate.redis_costs import Node
from engine.real.drivers import Context
from engine.real.target import RedisTarget, TargetError, discover
from engine.scenario import RedisConfig
from engine.slots import key_slot

CV = 0.3  # spread given to measured means (the kind and cv of the scenario's defaults)


@dataclass(frozen=True)
class Plan:
    """How much to measure: ``quick`` (tests, a first look) or the full set."""

    rtt: int
    cold: int
    ping_requests: int
    depths: tuple[int, ...]
    check_requests: int
    record_sizes: tuple[int, ...]
    record_repeats: int
    driver_buyers: int
    driver_seconds: float  # the shorter of each pair of closed-loop driver runs
    db_count: int
    concurrency: tuple[int, ...]
    db_seconds: float
    slap_at: tuple[int, ...]
    slap_queries: int
    wake_duration: float  # seconds of one closed-loop buyer per think time (engine.real.calibrate.wake)
    wake_rounds: int

    @classmethod
    def of(cls, quick: bool) -> Plan:
        if quick:
            return cls(300, 200, 20_000, (1, 16), 10_000, (1, 20, 100, 200), 2, 3_000, 0.2,
                       40, (1, 8, 32), 0.5, (8,), 800, 0.3, 1)
        return cls(5_000, 2_000, 200_000, (1, 4, 16, 64), 100_000, (1, 2, 5, 10, 20, 50, 100, 200, 500), 5, 20_000, 0.5,
                   400, (1, 8, 32, 128), 3.0, (1, 8, 32, 128), 5_000, 1.0, 3)


@dataclass(frozen=True)
class Options:
    target: RedisTarget
    traces: Callable[[], Sequence[Sequence[Eval]]]  # the Eval ops of simulated sales, replayed to time each script
    name: str = "calibrated"
    quick: bool = False
    db_url: str | None = None  # None: no database measurements
    workers: int = 1  # real-driver processes of the CPU runs (the fleet the profile describes)
    command: str = ""  # the command line, recorded in the profile
    owned: bool = False  # flashsim started the Redis server for this calibration
    extra: dict[str, Any] = field(default_factory=dict)
    repeat: int = 1  # full measurements; the profile takes each derived value's median over them


def calibrate(options: Options, log: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    """Measure, and return the profile as nested dicts ready for :func:`engine.profile.dumps`."""
    plan = Plan.of(options.quick)
    namespace = f"fscal-{uuid.uuid4().hex[:8]}"
    node = asyncio.run(_node(options.target, namespace))
    raw: dict[str, Any] = {"redis": {"server": _redis_server(node), "owned": options.owned}}
    server = None
    if options.db_url is not None:  # reachable and readable before anything is measured
        server = real_sql.server(Context(options.target, namespace, options={"db_url": options.db_url}))
        asyncio.run(db_costs.settings(server))
    log("recording the Redis calls of simulated sales")
    traces = options.traces()
    raws = []
    for round_ in range(max(1, options.repeat)):
        if options.repeat > 1:
            log(f"measurement {round_ + 1} of {options.repeat}")
        one: dict[str, Any] = {"redis": dict(raw["redis"])}
        versions = _measure(options, plan, node, namespace, server, traces, one, log, f"{namespace}-r{round_}")
        raws.append(one)
    raw = raws[0]
    derived = [derive(one) for one in raws]
    values = median_values(derived)
    if len(raws) > 1:
        raw["repeats"] = {"count": len(raws), "derived": derived}
    raw["host"] = host_cores(node.host, options.db_url)
    if raw["host"]["cores"]:
        values["host.cores"] = raw["host"]["cores"]
    scenario = {k: v for k, v in values.items() if known_key(k)}
    measured = {k: v for k, v in values.items() if not known_key(k)}
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    return {
        "profile": {"name": options.name, "date": now.isoformat().replace("+00:00", "Z"),
                    "command": options.command, "quick": options.quick},
        "machine": _machine(),
        "versions": versions,
        "scenario": scenario,
        "measured": measured,
        "raw": raw,
    }


def _measure(options: Options, plan: Plan, node: Node, namespace: str, server: Any,
             traces: Sequence[Sequence[Eval]], raw: dict[str, Any], log: Callable[[str], None],
             runs: str) -> dict[str, str]:
    """One full measurement into ``raw`` (``runs``: the prefix of its real runs' namespaces); returns the
    servers' versions."""
    log(f"redis: round trip ({plan.rtt} PINGs)")
    raw["redis"]["round_trip"] = redis_costs.round_trip(node, plan.rtt)
    log(f"redis: fixed costs (redis-benchmark PING, depths {', '.join(map(str, plan.depths))})")
    raw["redis"]["fixed"] = redis_costs.fixed_costs(node, plan.ping_requests, plan.depths)
    log("redis: cold start (deduct alone and in runs of 100)")
    raw["redis"]["cold_start"] = redis_costs.cold_start(node, namespace, plan.cold)
    cold = raw["redis"]["cold_start"]["cold"]
    log(f"redis: script bodies (replaying {sum(map(len, traces)):,} EVALSHAs of simulated sales)")
    raw["redis"]["scripts"] = redis_costs.script_bodies(node, traces, namespace, cold)
    log("redis: per-record costs of the detail scripts")
    raw["redis"]["records"] = redis_costs.record_costs(node, namespace, plan.record_sizes, plan.record_repeats, cold)
    fixed = raw["redis"]["fixed"]
    deduct = raw["redis"]["scripts"].get("deduct", {}).get("median", 0.0)
    log("redis: cross-check (redis-benchmark EVALSHA deduct, depths 1 and 16)")
    raw["redis"]["check"] = redis_costs.deduct_check(node, namespace, plan.check_requests, deduct,
                                                     fixed["command"], fixed["batch"])
    log(f"driver: CPU busy, single, refusing{', recording' if options.db_url else ''} "
        f"({plan.driver_seconds:g} s and {2 * plan.driver_seconds:g} s each), per op ({plan.driver_buyers:,} tasks)")
    raw["driver"] = driver_cpu.measure(options.target, node, runs, plan.driver_buyers, options.workers,
                                       plan.driver_seconds, options.db_url)
    log(f"driver: idle wake-up (one closed-loop buyer, think {', '.join(f'{g * 1e3:g}' for g in wake.THINKS)} ms)")
    raw["wake"] = wake.measure(options.target, runs, plan.wake_duration, plan.wake_rounds,
                               raw["driver"]["cpu_wakeup"])
    versions = {"python": platform.python_version(), "flashsim": _flashsim_version(),
                "redis": raw["redis"]["server"].get("redis_version", "?")}
    if server is not None:
        log(f"db: settings, statement costs, hot row at {', '.join(map(str, plan.concurrency))} connections")
        raw["db"] = asyncio.run(db_costs.measure(server, plan.db_count, plan.concurrency, plan.db_seconds,
                                                 plan.slap_at, plan.slap_queries))
        versions["mariadb"] = str(raw["db"]["settings"].get("version", "?"))
    return versions


def median_values(derived: list[dict[str, Any]]) -> dict[str, Any]:
    """Each key's median over repeated measurements (numbers; a Dist's mean; each field of a table)."""
    out: dict[str, Any] = {}
    for key, first in derived[0].items():
        values = [d[key] for d in derived if key in d]
        if isinstance(first, (bool, str)):
            out[key] = max(set(values), key=values.count)  # the most frequent (a commit path, a name)
        elif isinstance(first, (int, float)):
            out[key] = statistics.median(values)
        elif isinstance(first, dict):
            out[key] = {field: (statistics.median([v[field] for v in values])
                                if isinstance(value, (int, float)) and not isinstance(value, bool) else value)
                        for field, value in first.items()}
        else:
            out[key] = first
    return out


def derive(raw: dict[str, Any]) -> dict[str, Any]:
    """Scenario values (dotted keys) from the raw measurements."""
    out: dict[str, Any] = {}
    redis = raw["redis"]
    fixed = redis["fixed"]
    out["network.redis"] = max(0.0, (redis["round_trip"]["median"] - fixed["command"] - fixed["batch"]
                                     - fixed["ping_body"]) / 2)
    out["redis.command"] = fixed["command"]
    out["redis.batch"] = fixed["batch"]
    depth = raw.get("driver", {}).get("pipeline_depth", 1.0)
    out["redis.pipeline"] = max(1.0, depth) if depth == depth else 1.0
    bodies = {name: found["median"] for name, found in redis["scripts"].items() if "median" in found}
    for name, found in redis.get("records", {}).items():
        bodies[name] = found["body"]
    if "deduct" in bodies:
        out["redis.service.default"] = _lognormal(bodies["deduct"])
    for name in sorted(bodies):
        out[f"redis.service.{name}"] = _lognormal(bodies[name])
    for name, found in sorted(redis.get("records", {}).items()):
        if name in RedisConfig.PER_ITEM:
            out[f"redis.per_item.{name}"] = found["per_item"]
    if "driver" in raw:
        driver = raw["driver"]
        for name in ("cpu_request", "cpu_op", "cpu_refusal"):
            out[f"app.{name}"] = driver[name]
        for name in ("cpu_wakeup", "cpu_arg"):
            if name in driver:
                out[f"app.{name}"] = driver[name]
        out["app.instances"] = driver["workers"]  # the real driver: one app instance per worker process
        out["app.workers"] = 1  # one event loop per worker process
        out["network.client"] = 0.0  # the load generator runs inside the app process
        if driver.get("cpu_record") is not None:
            out["app.cpu_record"] = driver["cpu_record"]
    if "wake" in raw:
        fitted = raw["wake"]["fit"]
        out["app.wake"] = dict(fitted)  # split evenly: both the worker and the node slept (see calibrate.wake)
        out["redis.wake"] = dict(fitted)
    if "db" in raw:
        steps = raw["db"]["steps"]
        ping = steps["ping"]
        out["network.db"] = ping / 2
        out["db.begin"] = max(0.0, steps["begin"] - ping)
        out["db.commit"] = _lognormal(max(0.0, steps["commit"] - ping))
        out["db.rollback"] = max(0.0, steps["rollback"] - ping)
        out["db.service.default"] = _lognormal(max(0.0, steps["deduct_stock"] - ping))
        out["db.service.select_stock"] = _lognormal(max(0.0, steps["select_stock"] - ping))
        out["db.service.select_stock_for_update"] = _lognormal(max(0.0, steps["select_stock_for_update"] - ping))
        path = commit_path(raw["db"]["settings"])
        if path is not None:
            out["db.commit_path"] = path
    return out


def commit_path(settings: dict[str, Any]) -> str | None:
    """``binlog_sync`` (flush with row locks held: binary log on, sync_binlog=1) or ``group_commit``."""
    if "log_bin" not in settings:
        return None
    binlog = str(settings["log_bin"]) in ("1", "ON")
    return "binlog_sync" if binlog and str(settings.get("sync_binlog")) == "1" else "group_commit"


def _lognormal(mean: float) -> dict[str, Any]:
    return {"kind": "lognormal", "mean": mean, "cv": CV}


async def _node(target: RedisTarget, namespace: str) -> Node:
    """The master owning the slot of ``{namespace}`` (where every calibration key lives)."""
    topology = await discover(target)
    host, port = topology.masters[topology.owners()[key_slot(f"{{{namespace}}}")]]
    parts = urlsplit(target.url)
    if parts.scheme not in ("redis", "rediss"):
        raise TargetError(f"calibrate needs a TCP Redis (got {target.describe()})")
    if host is None:
        host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    return Node(host, int(port or 6379), target.password, parts.scheme == "rediss", dict(target.tls) or None)


def _redis_server(node: Node) -> dict[str, Any]:
    client = node.client()
    try:
        info = client.info("server")
    except Exception as err:
        raise TargetError(f"cannot reach Redis at {node.host}:{node.port}: {err}") from None
    finally:
        client.close()
    return {k: info[k] for k in ("redis_version", "io_threads_active", "multiplexing_api", "hz") if k in info}


LOOPBACK = ("127.", "::1", "localhost")


def host_cores(redis_host: str, db_url: str | None) -> dict[str, Any]:
    """``host.cores``: this machine's cores when the servers measured run on it (loopback), else 0.

    Then the load generator (the app tier), the Redis servers and the database share those cores,
    and the model must say so (sim/host.py); servers elsewhere have CPU of their own.
    """
    hosts = [redis_host] + ([urlsplit(db_url).hostname or "127.0.0.1"] if db_url else [])
    local = all(h.startswith(LOOPBACK) for h in hosts)
    return {"cores": (os.cpu_count() or 0) if local else 0, "servers": hosts,
            "why": "servers on loopback share this machine's cores with the load generator" if local
            else "a server is on another machine: each keeps CPU of its own"}


def _machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return {"hostname": socket.gethostname(), "cpu": cpu, "cores": os.cpu_count() or 0,
            "os": f"{platform.system()} {platform.release()}", "load_average": round(load, 2)}


def _flashsim_version() -> str:
    try:
        return importlib.metadata.version("flashsim")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
