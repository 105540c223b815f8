"""Scenario: everything a run needs except the seed, as frozen, validated dataclasses.

A scenario loads from TOML (:func:`load_scenario`) or a dict
(:meth:`Scenario.from_dict`), takes ``dotted.key=value`` overrides
(:meth:`Scenario.with_overrides`) and is varied with :func:`dataclasses.replace`,
never mutated. Every field carries its documentation (``metadata['doc']``);
:func:`reference_rows` turns that into the scenario reference in the README.

Bad input raises :class:`ScenarioError` with one line naming the problem and,
where there is a choice, the valid choices.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import tomllib
import typing
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any, ClassVar

from engine.faults.config import Fault, check_targets
from engine.fields import Dist, Qty, ScenarioError, Wake, choice, doc, require
from engine.gate.config import GateConfig
from engine.lockdb.config import DbConfig
from engine.pipeline.config import PipelineConfig
from engine.sharded.config import ShardedConfig

# Every integer field holds at most 2**53: the Lua scripts compute in doubles, which hold every
# integer up to 2**53 exactly (and numpy, Redis and MariaDB hold it too).
MAX_INT = 2**53

# Sanity bounds where a larger value would exhaust memory or hold a list per unit; (bound, why).
# Bytes per buyer measured here (`flashsim run`, single_redis, 20k vs 400k buyers: 179 vs 253 MB
# max RSS, ~200 B per buyer); the server-side bounds are MariaDB's own (max_connections <= 100000).
MAX_REQUESTS = 100_000_000
# A timeline row is ~380 B and ~30 us (report.timeline_interval=1e-5 over a 1 s sale: +38 MB, +3 s)
MAX_SAMPLES = 10_000_000
# A Dist is the duration of one step (service, hop, CPU, commit, delivery, think time). A longer one
# is a typo (1e9 for 1e-9), and it stretches the simulated sale: its periodic work (timeline
# samples, sync triggers, refreshes) grows with simulated time, so 1e99 s never ends.
MAX_STEP = 60.0
STEP_WHY = ("a longer step outlasts every server limit (Redis answers BUSY past a 5 s script, InnoDB gives "
            "up a lock wait after 50 s) and stretches the simulated sale without end")
# Plain numbers that are the duration of one step too (costs, per-step waits), bounded the same way
STEPS = frozenset({"app.cpu_record", "app.cpu_arg", "app.cpu_wakeup", "app.wake.base", "app.wake.cap",
                   "redis.wake.base", "redis.wake.cap", "redis.wait_timeout", "db.detect_cost", "db.grant_cost",
                   "db.group_member_cost", "db.batch_window", "db.retry_base", "db.retry_cap",
                   "db.optimistic_base", "pipeline.reorder_delay", "sharded.wait_step"})
# Random faults: one a millisecond at most. app_crash at 1e6/s took 71 s over a 10 ms sale here, and
# at 1e99/s the gaps vanish in the clock's resolution: simulated time stops advancing.
MAX_FAULT_RATE = 1_000.0
LIMITS: dict[str, tuple[int, str]] = {
    "workload.buyers": (MAX_REQUESTS, "every buyer is a row of the requests table (~200 B each: 100 million "
                                      "is ~20 GB)"),
    "workload.users": (1_000_000, "every closed-loop user is a live task with its own request log rows"),
    "db.pool_size": (100_000, "one connection each; MariaDB's max_connections is at most 100000"),
    "db.threads": (100_000, "one server thread each (a list entry per thread); MariaDB's max_connections is at "
                            "most 100000"),
    "pipeline.consumers": (4_096, "every consumer is a live task"),
    "workload.retry": (100, "every retry is one more request, and a buyer's deadline grows with each"),
}

@dataclass(frozen=True)
class Sale:
    sku: str = doc("sku42", "product id; part of every key's hash tag")
    stock: int = doc(10_000, "units on sale")
    soldout_flag: bool = doc(
        True, "each app instance remembers a sold-out answer (qty 1) and refuses its later buyers locally"
    )

    def __post_init__(self) -> None:
        require(self.stock >= 0, f"stock must be >= 0 (got {self.stock})")
        require(self.sku != "" and "{" not in self.sku and "}" not in self.sku,
                 f"sku must be non-empty without braces (got {self.sku!r})")


@dataclass(frozen=True)
class Workload:
    KINDS: ClassVar[tuple[str, ...]] = ("burst", "poisson", "closed")
    SHAPES: ClassVar[tuple[str, ...]] = ("uniform", "ramp")

    kind: str = doc("burst", "burst (N buyers over a window) | poisson (open loop) | closed (users with think time)")
    buyers: int = doc(500_000, "burst: number of buyers")
    window: float = doc(2.0, "burst: seconds over which they arrive")
    shape: str = doc("uniform", "burst: uniform | ramp (arrival density rising linearly)")
    rate: float = doc(100_000.0, "poisson: requests per second")
    duration: float = doc(1.0, "poisson, closed: seconds of load")
    users: int = doc(1_000, "closed: concurrent users")
    think: Dist = doc(lambda: Dist("exponential", 0.05), "closed: think time between a reply and the next request", factory=True)
    qty: Qty = doc(Qty, "units per request (integer, or {low, high})", factory=True)
    timeout: float = doc(1.0, "client timeout, seconds (inf: wait forever)")
    retry: int = doc(0, "retries of a request after a timeout or an error, with the same request id (an "
                        "idempotency key: a retried deduction gets the first outcome, never a second "
                        "deduction); 0: none. single_redis only")
    backoff: Dist = doc(lambda: Dist("exponential", 0.005),
                        "wait before each retry (random, so that buyers who timed out together do not all "
                        "come back together; mean as db.retry_base)", factory=True)

    def __post_init__(self) -> None:
        choice("workload.kind", self.kind, self.KINDS)
        choice("workload.shape", self.shape, self.SHAPES)
        require(self.buyers >= 1, f"workload.buyers must be >= 1 (got {self.buyers})")
        require(math.isfinite(self.window) and self.window > 0, f"workload.window must be > 0 (got {self.window})")
        require(math.isfinite(self.rate) and self.rate > 0, f"workload.rate must be > 0 (got {self.rate})")
        require(math.isfinite(self.duration) and self.duration > 0,
                 f"workload.duration must be > 0 (got {self.duration})")
        require(self.users >= 1, f"workload.users must be >= 1 (got {self.users})")
        require(self.timeout > 0, f"workload.timeout must be > 0 (got {self.timeout})")
        require(self.retry >= 0, f"workload.retry must be >= 0 (got {self.retry})")
        if self.kind == "poisson":
            require(self.rate * self.duration <= MAX_REQUESTS,
                    f"workload.rate x workload.duration must be <= {MAX_REQUESTS:,} requests (got "
                    f"{self.rate * self.duration:.3g}): every request is a row of the requests table")

    @property
    def horizon(self) -> float:
        """Seconds of load: the burst's window, or the duration."""
        return self.window if self.kind == "burst" else self.duration


@dataclass(frozen=True)
class Network:
    client: Dist = doc(lambda: Dist("deterministic", 0.0), "one-way delay buyer <-> app instance (paid on the way in and "
                                                       "on the way out; 0: the buyer sits next to the app)", factory=True)
    redis: Dist = doc(lambda: Dist("deterministic", 0.0001), "one-way delay app <-> Redis node (LAN: 0.1-0.25 ms)", factory=True)
    db: Dist = doc(lambda: Dist("deterministic", 0.00015), "one-way delay app <-> DB server (LAN round trip 0.2-0.5 ms)", factory=True)


@dataclass(frozen=True)
class AppConfig:
    """The app tier: instances that run the strategy, each a small multi-core CPU (see docs/app-tier.md)."""

    ROUTING: ClassVar[tuple[str, ...]] = ("round_robin", "random")

    instances: int = doc(
        4, "app instances; each keeps its own sold-out flag, sharded registry and DB pool "
           "(real mode: worker process k hosts instances k, k+workers, ...)")
    workers: int = doc(4, "cores (event loops) per instance; a request holds one only while its CPU runs, "
                          "never while it waits for a server")
    cpu_request: Dist = doc(lambda: Dist("deterministic", 0.0),
                            "app CPU per request: accept, parse, respond (charged when it reaches the instance)",
                            factory=True)
    cpu_op: Dist = doc(lambda: Dist("deterministic", 0.0),
                       "app CPU per server op: issue it and handle its reply, including the strategy's decision "
                       "before it (sharded: pick a partition, update the registry)", factory=True)
    cpu_refusal: Dist = doc(lambda: Dist("deterministic", 0.0),
                            "app CPU of a request answered without any server op (local sold-out), on top of "
                            "cpu_request", factory=True)
    routing: str = doc("round_robin", "how requests are spread over the instances: round_robin | random")
    cpu_record: float = doc(0.0, "app CPU (s) per detail record the async pipeline moves (collect, publish, "
                                 "consume, apply, mark): half charged when its batch is published, half when it is "
                                 "delivered to a consumer; the fleet's background work runs on the pipeline "
                                 "service, spawned work on its spawner's instance")
    cpu_arg: float = doc(0.0, "app CPU (s) per key and argument of a Redis op (the client packs and encodes each), "
                              "on top of cpu_op")
    cpu_wakeup: float = doc(0.0, "app CPU (s) of one event-loop turn (poll, callbacks, socket write), paid by a "
                                 "segment that finds its worker idle; segments queued behind a busy worker share "
                                 "the running turn: what makes a busy app cheaper per request")
    wake: Wake = doc(Wake, "idle wake-up of an instance's worker: the delay added to a segment that starts on a "
                           "worker idle for longer than wake.after (see docs/app-tier.md)", factory=True)

    def __post_init__(self) -> None:
        require(1 <= self.instances <= 1024, f"app.instances must be in 1..1024 (got {self.instances})")
        require(1 <= self.workers <= 4096, f"app.workers must be in 1..4096 (got {self.workers})")
        for name in ("cpu_record", "cpu_wakeup", "cpu_arg"):
            value = getattr(self, name)
            require(math.isfinite(value) and value >= 0, f"app.{name} must be >= 0 (got {value})")
        choice("app.routing", self.routing, self.ROUTING)

    @property
    def costs_cpu(self) -> bool:
        """True when some request step costs app CPU (else the tier never queues)."""
        return (any(d.mean > 0 for d in (self.cpu_request, self.cpu_op, self.cpu_refusal))
                or self.cpu_record > 0 or self.cpu_wakeup > 0 or self.cpu_arg > 0 or self.wake.costs)


def _default_service() -> dict[str, Dist]:
    return {"default": Dist("lognormal", 1.0e-5, 0.3)}


@dataclass(frozen=True)
class RedisConfig:
    # Scripts whose work grows with the records they walk (the simulator counts them: sim.servers.redis_node.ITEMS)
    PER_ITEM: ClassVar[tuple[str, ...]] = ("detail_collect", "detail_applied", "detail_stale", "detail_summary")

    nodes: int = doc(8, "Redis master nodes; slots split evenly as redis-cli --cluster create does (single_redis uses the one its key hashes to)")
    service: dict[str, Dist] = doc(
        _default_service,
        "service time per script name; 'default' covers the rest "
        "(10 us ~ 95k EVALSHA/s: redis-benchmark on this machine, 50 clients)",
        factory=True,
    )

    command: Dist = doc(
        lambda: Dist("deterministic", 0.0),
        "server time every command pays on top of its script's service time: parse, dispatch, reply "
        "(0: folded into redis.service; a calibration profile measures it with PING)",
        factory=True,
    )
    batch: Dist = doc(
        lambda: Dist("deterministic", 0.0),
        "server time per pipelined batch (the read and write system calls), shared by its commands: "
        "each pays batch / redis.pipeline",
        factory=True,
    )
    pipeline: float = doc(1.0, "mean commands per batch on the app's connections (1: no pipelining)")
    per_item: dict[str, float] = doc(
        dict,
        "extra server time per record a script handles, seconds, by script name "
        "(detail_collect, detail_applied, detail_stale, detail_summary)",
        factory=True,
    )
    wake: Wake = doc(Wake, "idle wake-up of a node: the delay before it starts a command that reaches it idle "
                           "for longer than wake.after", factory=True)
    replicas: int = doc(0, "asynchronous replicas per master (0: a crashed master's slots are gone until it "
                           "restarts; flashsim cluster up --replicas N)")
    replica_lag: Dist = doc(lambda: Dist("deterministic", 0.0001),
                            "how long a write takes to reach a master's replica (asynchronous replication): "
                            "what a crash loses (0.1 ms: a write visible on the replica after 91-131 us at the "
                            "median on loopback, experiments/real_faults.py lag; docs/faults.md)", factory=True)
    node_timeout: float = doc(15.0, "cluster-node-timeout, seconds: a crashed master's replica is promoted this "
                                    "long after the crash (redis.conf default 15000 ms)")
    wait_replicas: int = doc(0, "WAIT for this many replicas after each deduction (0: never; it narrows, never "
                                "closes, the window for losing acknowledged writes)")
    wait_timeout: float = doc(0.01, "WAIT timeout, seconds: the deduction is answered after it even if too few "
                                    "replicas acknowledged")

    def __post_init__(self) -> None:
        require(1 <= self.nodes <= 1024, f"redis.nodes must be in 1..1024 (got {self.nodes})")
        require(0 <= self.replicas <= 5, f"redis.replicas must be in 0..5 (got {self.replicas})")
        require(math.isfinite(self.node_timeout) and self.node_timeout > 0,
                f"redis.node_timeout must be > 0 seconds (got {self.node_timeout})")
        require(0 <= self.wait_replicas <= self.replicas,
                f"redis.wait_replicas must be in 0..redis.replicas ({self.replicas}) (got {self.wait_replicas})")
        require(math.isfinite(self.wait_timeout) and self.wait_timeout > 0,
                f"redis.wait_timeout must be > 0 seconds (got {self.wait_timeout})")
        if "default" not in self.service:  # a partial table adds to the defaults, never drops them
            object.__setattr__(self, "service", {**_default_service(), **self.service})
        require(math.isfinite(self.pipeline) and self.pipeline >= 1,
                f"redis.pipeline must be >= 1 (got {self.pipeline})")
        for script, cost in self.per_item.items():
            choice("redis.per_item: script", script, self.PER_ITEM)
            require(math.isfinite(cost) and cost >= 0, f"redis.per_item.{script} must be >= 0 (got {cost})")

    def service_of(self, script: str) -> Dist:
        return self.service.get(script, self.service["default"])

    @property
    def fixed_mean(self) -> float:
        """Mean server time a command pays besides its script's body: command + batch share."""
        return self.command.mean + self.batch.mean / self.pipeline


@dataclass(frozen=True)
class HostConfig:
    """The machine the servers run on (see docs/app-tier.md, "One host")."""

    cores: int = doc(0, "CPU cores shared by every server of the model (0: each Redis node, app instance, the "
                        "pipeline service and the DB has CPU of its own; N: every Redis command, app segment and "
                        "DB statement also needs one of N cores, first come first served: one machine running "
                        "everything, as real mode on a test box; flashsim calibrate measures it for local servers)")

    def __post_init__(self) -> None:
        require(0 <= self.cores <= 4096, f"host.cores must be in 0..4096 (got {self.cores})")


@dataclass(frozen=True)
class Report:
    timeline_interval: float = doc(0.01, "seconds between inventory samples in Result.timeline")
    warmup: float = doc(0.0, "seconds from sale start left out of the steady-state latency figures "
                             "(steady_requests, steady_p99, steady_ok_p99: requests that arrive later; "
                             "0: no such figures)")

    def __post_init__(self) -> None:
        require(self.timeline_interval > 0, f"report.timeline_interval must be > 0 (got {self.timeline_interval})")
        require(math.isfinite(self.warmup) and self.warmup >= 0, f"report.warmup must be >= 0 (got {self.warmup})")


@dataclass(frozen=True)
class Scenario:
    """One flash sale: stock, buyers, the world they hit, and the strategy under test."""

    name: str = doc("default", "label carried into results")
    strategy: str = doc("single_redis", "strategy under test (flashsim compare runs them all)")
    sale: Sale = doc(Sale, "", factory=True)
    workload: Workload = doc(Workload, "", factory=True)
    network: Network = doc(Network, "", factory=True)
    app: AppConfig = doc(AppConfig, "", factory=True)
    gate: GateConfig = doc(GateConfig, "", factory=True)
    redis: RedisConfig = doc(RedisConfig, "", factory=True)
    host: HostConfig = doc(HostConfig, "", factory=True)
    report: Report = doc(Report, "", factory=True)
    db: DbConfig = doc(DbConfig, "", factory=True)
    pipeline: PipelineConfig = doc(PipelineConfig, "", factory=True)
    sharded: ShardedConfig = doc(ShardedConfig, "", factory=True)
    faults: dict[str, Fault] = doc(dict, "named faults injected during the run ([faults.NAME] tables: kind, at, "
                                         "rate, node, instance, duration, factor, force; see docs/faults.md)",
                                   factory=True)

    def __post_init__(self) -> None:
        check_targets(self.faults, self.redis.nodes, self.app.instances)
        for name, fault in self.faults.items():
            require(fault.rate <= MAX_FAULT_RATE, f"faults.{name}.rate must be <= {MAX_FAULT_RATE:g} faults per "
                                                  f"second (got {fault.rate:g}): one a millisecond is already a storm")
        samples = self.workload.horizon / self.report.timeline_interval
        require(samples <= MAX_SAMPLES, f"report.timeline_interval = {self.report.timeline_interval:g} s takes "
                                        f"{samples:.3g} samples over the sale's {self.workload.horizon:g} s; at most "
                                        f"{MAX_SAMPLES:,} (each is a row of the timeline)")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scenario:
        """Build and validate a scenario; missing keys take their defaults."""
        return _build(cls, data, "")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def with_overrides(self, assignments: list[str] | tuple[str, ...]) -> Scenario:
        """Apply ``dotted.key=value`` strings (values parsed as TOML, else as text)."""
        data = self.to_dict()
        for assignment in assignments:
            path, sep, raw = assignment.partition("=")
            path = path.strip()
            require(sep == "=" and path != "", f"--set expects dotted.key=value (got {assignment!r})")
            _assign(data, type(self), path.split("."), _parse_value(raw.strip()), path)
        return Scenario.from_dict(data)


# Keys that moved: a scenario that still sets one hears where it went.
MOVED = {"sharded.apps": "app.instances (app instances now serve every strategy; each sharded instance keeps its "
                         "own registry)"}


def _unknown(full: str, where: str, valid: str) -> ScenarioError:
    if full in MOVED:
        return ScenarioError(f"{full!r} was removed: set {MOVED[full]}")
    return ScenarioError(f"unknown key {full!r}: valid keys under {where}: {valid}")


def _parse_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _field_types(cls: Any) -> dict[str, Any]:
    return _type_hints(cls)


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    # cached: get_type_hints re-evaluates every annotation string, most of building a scenario's cost
    return typing.get_type_hints(cls)


def _assign(data: dict, cls: Any, parts: list[str], value: Any, full: str) -> None:
    key = parts[0]
    types = _field_types(cls) if is_dataclass(cls) else None
    if types is not None:
        if key not in types or key not in data:
            valid = ", ".join(f.name for f in fields(cls))
            where = full[: len(full) - len(".".join(parts))].rstrip(".") or "the scenario"
            raise _unknown(full, where, valid)
        child_type = types[key]
    else:  # a dict[str, X] field: any key, values of type X
        child_type = typing.get_args(cls)[1]
        data.setdefault(key, dataclasses.asdict(child_type()) if isinstance(child_type, type) and is_dataclass(child_type) else None)
    if len(parts) == 1:
        data[key] = value
        return
    child = data[key]
    if is_dataclass(child_type) and not isinstance(child, dict):
        child = data[key] = dataclasses.asdict(_build(child_type, child, full))
    require(isinstance(child, dict), f"{'.'.join(full.split('.')[:-len(parts) + 1])} is not a table")
    _assign(child, child_type, parts[1:], value, full)


def _bounded(built: Any, where: str) -> Any:
    """``built``, unless it is a step duration (:class:`Dist`) longer than :data:`MAX_STEP`."""
    if isinstance(built, Dist):
        require(built.mean <= MAX_STEP, f"mean must be <= {MAX_STEP:g} s (got {built.mean:g}): {STEP_WHY}")
    return built


def _big(value: float) -> str:
    return f"{value:.3g}" if abs(value) > MAX_INT else str(value)


def _build(cls: Any, value: Any, path: str) -> Any:  # noqa: C901  (one branch per field type)
    where = path or "scenario"
    origin = typing.get_origin(cls)
    if origin is dict:
        require(isinstance(value, dict), f"{where}: expected a table, got {value!r}")
        item_type = typing.get_args(cls)[1]
        return {str(k): _build(item_type, v, f"{path}.{k}") for k, v in value.items()}
    if is_dataclass(cls):
        if not isinstance(value, dict):
            if hasattr(cls, "_from_scalar") and isinstance(value, (int, float)) and not isinstance(value, bool):
                # the shorthand number passes the checks of its type (Qty: an integer, Dist: a number)
                value = _build(typing.get_type_hints(cls._from_scalar)["value"], value, path)
                try:
                    return _bounded(cls._from_scalar(value), where)
                except ScenarioError as err:
                    raise ScenarioError(f"{where}: {err}") from None
            raise ScenarioError(f"{where}: expected a table, got {value!r}")
        types = _field_types(cls)
        names = [f.name for f in fields(cls)]
        kwargs = {}
        for key, item in value.items():
            if key not in names:
                raise _unknown((path + "." if path else "") + key, where, ", ".join(names))
            kwargs[key] = _build(types[key], item, f"{path}.{key}" if path else key)
        try:
            return _bounded(cls(**kwargs), where)  # type: ignore[operator]
        except ScenarioError as err:
            message = str(err)
            raise ScenarioError(message if message.startswith(path) or not path else f"{path}: {message}") from None
    if cls is bool:
        require(isinstance(value, bool), f"{where}: expected true or false, got {value!r}")
        return value
    if cls is int:
        if isinstance(value, float) and value.is_integer():  # 1e3; every float beyond 2**53 is one too
            value = int(value)
        require(isinstance(value, int) and not isinstance(value, bool), f"{where}: expected an integer, got {value!r}")
        require(abs(value) <= MAX_INT, f"{where}: {_big(value)} is out of range (integers are at most 2**53 "
                                        "= 9,007,199,254,740,992: the Lua scripts compute in doubles)")
        limit = LIMITS.get(path)
        if limit is not None:
            require(value <= limit[0], f"{where} must be <= {limit[0]:,} (got {_big(value)}): {limit[1]}")
        return value
    if cls is float:
        if isinstance(value, str) and value.strip().lower() in ("inf", "+inf"):
            return math.inf
        require(isinstance(value, (int, float)) and not isinstance(value, bool), f"{where}: expected a number, got {value!r}")
        if path in STEPS or path.startswith("redis.per_item."):
            require(not value > MAX_STEP, f"{where} must be <= {MAX_STEP:g} s (got {value:g}): {STEP_WHY}")
        return float(value)
    if cls is str:
        require(isinstance(value, str), f"{where}: expected text, got {value!r}")
        return value
    raise TypeError(f"{where}: unsupported field type {cls!r}")  # a bug in the scenario classes


def load_scenario(path: str | Path | None = None) -> Scenario:
    """Read a TOML scenario; ``None`` gives the embedded default."""
    if path is None:
        return Scenario()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(f"scenario file not found: {path}") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as err:
        raise ScenarioError(f"cannot read scenario file {path}: {err.__class__.__name__}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ScenarioError(f"{path}: malformed TOML: {err}") from None
    return Scenario.from_dict(data)


def reference_rows(cls: Any = Scenario, prefix: str = "") -> list[tuple[str, str, str]]:
    """``(dotted key, default, doc)`` for every leaf field: the scenario reference."""
    rows = []
    instance = cls()
    for f in fields(cls):
        key = f"{prefix}{f.name}"
        value = getattr(instance, f.name)
        if is_dataclass(value) and f.type not in ("Dist", "Qty", "Wake") and not isinstance(value, (Dist, Qty, Wake)):
            rows.extend(reference_rows(type(value), key + "."))
            continue
        rows.append((key, _show(value), f.metadata.get("doc", "")))
    return rows


def _show(value: Any) -> str:
    if isinstance(value, Dist):
        if value.kind == "deterministic":
            return f"{value.mean:g}"
        extra = f", cv={value.cv:g}" if value.kind == "lognormal" else ""
        return f"{value.kind}(mean={value.mean:g}{extra})"
    if isinstance(value, Qty):
        return str(value.low) if value.low == value.high else f"{{low={value.low}, high={value.high}}}"
    if isinstance(value, Wake):
        if not value.costs:
            return "none"
        return f"{{after={value.after:g}, base={value.base:g}, per_idle={value.per_idle:g}, cap={value.cap:g}}}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_show(v)}" for k, v in value.items())
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
