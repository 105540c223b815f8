"""The ``faults`` scenario section and the ``--fault`` spec: what goes wrong, when, and where.

A scenario's ``faults`` table holds named faults, each a :class:`Fault`::

    [faults.crash]
    kind = "redis_crash"
    at = 0.5          # seconds after the sale starts
    node = 0          # Redis node index (as in redis.nodes)
    duration = inf    # until the node comes back (inf: never)

``--set faults.crash.kind=redis_crash`` builds the same entry, and the real
driver's ``flashsim run --real --fault SPEC`` takes the short form parsed by
:func:`parse_fault_spec` (``redis_crash@0.5:node=0``), so one validation path
covers the three. A fault fires once at ``at``, or, when ``rate > 0``, at the
times of a Poisson process of that rate starting at ``at`` (drawn from the
reserved ``faults`` random stream).

The replication and failover settings the faults act on (``redis.replicas``,
``redis.replica_lag``, ``redis.node_timeout``, ``redis.wait_replicas``) live
in the ``redis`` section: they describe the servers, not the fault.
See docs/faults.md for what each kind does in the simulator and in real mode.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from engine.fields import ScenarioError, choice, doc, require

# kind -> what it means (docs and ``--help``); the order is the docs' order
KINDS: dict[str, str] = {
    "redis_crash": "Redis master `node` dies (kill -9): its queued and in-flight commands are lost; with "
                   "redis.replicas >= 1 a replica is promoted after redis.node_timeout, without the writes it had "
                   "not yet received (redis.replica_lag); the old master restarts after `duration` as a replica",
    "redis_failover": "manual failover of `node` (CLUSTER FAILOVER: the replica catches up first, nothing lost; "
                      "force = true: CLUSTER FAILOVER TAKEOVER, loses what the replica lacked)",
    "redis_pause": "node `node` answers nothing for `duration` seconds, then serves its backlog (DEBUG SLEEP)",
    "slow_node": "node `node`'s service times are multiplied by `factor` for `duration` seconds",
    "app_crash": "app instance `instance` dies: its in-memory state is gone and its in-flight requests are answered "
                 "with an error; it restarts empty after `duration` (real mode: kill -9 of the worker hosting it)",
    "mq_outage": "the MQ broker is down for `duration` seconds: publishes fail and are retried",
    "consumer_crash": "a pipeline consumer dies after its DB commit and before its ack (the batch is redelivered); "
                      "it restarts after `duration`",
    "db_outage": "the database is down for `duration` seconds (connections fail), then restarts",
    "partition": "the network between app instance `instance` and Redis node `node` drops everything for `duration` "
                 "seconds",
}


@dataclass(frozen=True)
class Fault:
    KINDS: ClassVar[tuple[str, ...]] = tuple(KINDS)

    kind: str = doc("redis_crash", " | ".join(KINDS))
    at: float = doc(0.0, "seconds after the sale starts when it fires (with rate > 0: when the random faults start)")
    rate: float = doc(0.0, "faults per second after `at`, Poisson (0: fire once, at `at`)")
    node: int = doc(0, "Redis node index (redis_*, slow_node, partition)")
    instance: int = doc(0, "app instance index (app_crash, partition) or consumer index (consumer_crash)")
    duration: float = doc(math.inf, "seconds until it is over: restart, end of outage, pause or partition "
                                    "(inf: never; redis_crash: the old master never returns)")
    factor: float = doc(10.0, "slow_node: service time multiplier")
    force: bool = doc(False, "redis_failover: TAKEOVER (no catch-up: the replica's lag is lost)")

    def __post_init__(self) -> None:
        choice("fault kind", self.kind, self.KINDS)
        require(math.isfinite(self.at) and self.at >= 0, f"fault at must be >= 0 seconds (got {self.at})")
        require(math.isfinite(self.rate) and self.rate >= 0, f"fault rate must be >= 0 (got {self.rate})")
        require(0 <= self.node <= 1023, f"fault node must be in 0..1023 (got {self.node})")
        require(0 <= self.instance <= 1023, f"fault instance must be in 0..1023 (got {self.instance})")
        require(not math.isnan(self.duration) and self.duration > 0,
                f"fault duration must be > 0 seconds or inf (got {self.duration})")
        require(math.isfinite(self.factor) and self.factor >= 1, f"fault factor must be >= 1 (got {self.factor})")
        if self.kind in ("redis_pause", "slow_node", "mq_outage", "db_outage", "partition"):
            require(math.isfinite(self.duration), f"a {self.kind} fault needs a finite duration (got inf)")

    @property
    def targets_node(self) -> bool:
        return self.kind in ("redis_crash", "redis_failover", "redis_pause", "slow_node", "partition")

    @property
    def targets_instance(self) -> bool:
        return self.kind in ("app_crash", "partition")


def check_targets(faults: dict[str, Fault], nodes: int, instances: int) -> None:
    """Every fault names a node and an instance the scenario has."""
    for name, fault in faults.items():
        if fault.targets_node:
            require(fault.node < nodes, f"faults.{name}.node = {fault.node} but the scenario has {nodes} Redis "
                                        f"node(s) (0..{nodes - 1})")
        if fault.targets_instance:
            require(fault.instance < instances, f"faults.{name}.instance = {fault.instance} but the scenario has "
                                                f"{instances} app instance(s) (0..{instances - 1})")


_FIELDS = {f.name for f in fields(Fault)} - {"kind", "at"}


def parse_fault_spec(spec: str) -> dict[str, Any]:
    """``kind[@at][:key=value,...]`` -> the TOML table of one fault (validated by building a :class:`Fault`).

    Examples: ``redis_crash@0.5:node=0``, ``slow_node@0.2:node=1,factor=20,duration=0.3``,
    ``redis_failover@1:force=true``. Values are TOML (numbers, ``inf``, ``true``).
    """
    text = spec.strip()
    head, _, rest = text.partition(":")
    kind, at_sep, at_text = head.partition("@")
    table: dict[str, Any] = {"kind": kind.strip()}
    if kind.strip() not in KINDS:
        raise ScenarioError(f"--fault {spec!r}: kind must be one of {', '.join(KINDS)} (got {kind.strip()!r}); "
                            "form: kind@seconds:key=value,...")
    if at_sep:
        table["at"] = _value(spec, "at", at_text)
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, eq, raw = item.partition("=")
        key = key.strip()
        if not eq or key not in _FIELDS:
            raise ScenarioError(f"--fault {spec!r}: expected key=value with key one of {', '.join(sorted(_FIELDS))} "
                                f"(got {item!r})")
        table[key] = _value(spec, key, raw)
    try:
        Fault(**{key: _typed(key, value) for key, value in table.items()})
    except ScenarioError as err:
        raise ScenarioError(f"--fault {spec!r}: {err}") from None
    return table


def _typed(key: str, value: Any) -> Any:
    """The scenario builder's type rule for one Fault field (engine.scenario imports this module)."""
    kind = _TYPES[key]
    if kind == "int":
        require(isinstance(value, int) and not isinstance(value, bool), f"{key}: expected an integer, got {value!r}")
    elif kind == "float":
        require(isinstance(value, (int, float)) and not isinstance(value, bool), f"{key}: expected a number, got {value!r}")
        return float(value)
    elif kind == "bool":
        require(isinstance(value, bool), f"{key}: expected true or false, got {value!r}")
    return value


_TYPES = {f.name: str(f.type) for f in fields(Fault)}


def _value(spec: str, key: str, raw: str) -> Any:
    raw = raw.strip()
    if raw in ("inf", "+inf"):
        return math.inf
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        raise ScenarioError(f"--fault {spec!r}: {key} = {raw!r} is not a number or true/false") from None
