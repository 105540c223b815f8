"""The validation grid: named points (strategy x load x arrivals x nodes), each a Scenario.

A point is one small sale sized to run in about a second against real servers.
Load is stated relative to a *capacity* measured, not assumed: the goodput of
the point's closed-loop saturation run (``<strategy>/capacity/closed/n<N>``),
mean over the replications, measured once per validation run. By default
(``capacity = "real"``) it is measured on the real servers, so ``light`` is
light for the system the simulator is judged against and the latency targets
are judged where latency means something; ``capacity = "sim"`` takes it from
the simulator under the current profile instead (a grid that does not depend
on the machine's mood, but whose ``light`` points may saturate a slower real
system). The capacity points are grid points too: their error says how far the
simulator's capacity is from the real one.

Levels (offered load / capacity): ``light`` 0.25 (the issue's <= 30 %),
``medium`` 0.7 (60-80 %), ``past`` 3.0 (a burst well past capacity), and the
closed-loop ``capacity`` points themselves (``at``).

Arrivals: ``poisson`` (open loop at the level's rate, stock that never runs
out: steady goodput, latency, DB TPS) and ``burst`` (buyers arriving uniformly
over a window at the same mean rate, stock for one buyer in ten: a flash sale
that sells out, so time to sell-out is measured).

Nodes: 1 and 3 Redis masters for ``single_redis`` and ``sharded``; the DB
strategies never touch Redis, so they run once, at 1 node.

Hold-out: every ``medium`` x ``burst`` point (6 of the 42). It covers every
strategy and both node counts, and lies between levels calibration does see
(light and past bursts, medium Poisson), so it checks that a calibration
generalises rather than fits the points it was tuned on. The rule is fixed in
code (:func:`is_holdout`), so the hold-out never changes between runs;
:func:`calibration_points` is what a calibration may look at.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from engine.fields import Dist, ScenarioError
from engine.scenario import Scenario

ScenarioTransform = Callable[[Scenario], Scenario]  # e.g. a calibration profile's overrides

STRATEGIES = ("single_redis", "sharded", "db_conditional", "db_pessimistic")
REDIS_STRATEGIES = ("single_redis", "sharded")
NODES = (1, 3)
LEVELS = {"light": 0.25, "medium": 0.7, "past": 3.0}  # offered load / capacity
ARRIVALS = ("poisson", "burst")
CAPACITY = "capacity"  # the closed-loop saturation points' load level
SATURATION = ("below", "at", "past")
CAPACITY_SOURCES = ("real", "sim")

# Closed-loop saturation: enough users to keep every server busy (DB: 64 connections on one hot row,
# below the deadlock-detection collapse), no think time, stock that never runs out.
CAPACITY_USERS = {"redis": 256, "db": 64}
BURST_STOCK_SHARE = 0.1  # burst points: stock for one buyer in ten, so the sale sells out


@dataclass(frozen=True)
class Settings:
    """How big the grid's sales are and how many times each runs."""

    replications: int = 3
    seed: int = 0
    max_requests: int = 20_000  # buyers per open-loop run at most (the window shrinks above this rate)
    max_window: float = 1.0  # seconds of open-loop arrivals at most
    capacity_duration: float = 0.5  # seconds of closed-loop load in a capacity point, at most
    capacity_min_duration: float = 0.2  # ... and at least (the run is sized to about max_requests)
    capacity_pilot: float = 0.02  # seconds of the short simulated run that sizes a capacity point
    capacity: str = "real"  # where capacity is measured: real | sim

    def __post_init__(self) -> None:
        if self.replications < 1:
            raise ScenarioError(f"replications must be >= 1 (got {self.replications})")
        if self.seed < 0:
            raise ScenarioError(f"seed must be >= 0 (got {self.seed})")
        if self.max_requests < 10:
            raise ScenarioError(f"max_requests must be >= 10 (got {self.max_requests})")
        if self.capacity not in CAPACITY_SOURCES:
            raise ScenarioError(f"capacity must be one of {', '.join(CAPACITY_SOURCES)} (got {self.capacity!r})")
        if not (self.max_window > 0 and self.capacity_pilot > 0
                and 0 < self.capacity_min_duration <= self.capacity_duration):
            raise ScenarioError("need max_window > 0 and 0 < capacity_min_duration <= capacity_duration, "
                                "capacity_pilot > 0")

    def capacity_span(self, estimate: float) -> float:
        """Seconds of closed-loop load for a capacity point whose pilot served ``estimate`` requests/s."""
        wanted = self.max_requests / estimate if estimate > 0 else self.capacity_duration
        return min(self.capacity_duration, max(self.capacity_min_duration, wanted))

    @property
    def seeds(self) -> list[int]:
        """The replications' seeds, the same in sim and real (same seed => same arrivals)."""
        return [self.seed + r for r in range(self.replications)]


FULL = Settings()
QUICK = Settings(replications=1, max_requests=3_000, max_window=0.5, capacity_duration=0.3)
# The --quick subset: below, at and past saturation, a hold-out point, DB TPS, 1 and 3 nodes.
QUICK_POINTS = ("single_redis/light/poisson/n1", "db_conditional/capacity/closed/n1",
                "single_redis/medium/burst/n1", "sharded/past/burst/n3")


@dataclass(frozen=True)
class Point:
    """One grid point: a scenario with its place in the grid."""

    strategy: str
    load: str  # light | medium | past | capacity
    arrival: str  # poisson | burst | closed
    nodes: int
    scenario: Scenario
    capacity: float  # requests/s served at saturation (this strategy and node count): what the levels scale
    offered: float  # requests/s offered (the capacity itself for a closed-loop point)
    sim_capacity: float = math.nan  # the simulator's own capacity (estimate), to explain errors

    @property
    def name(self) -> str:
        return point_name(self.strategy, self.load, self.arrival, self.nodes)

    @property
    def holdout(self) -> bool:
        return is_holdout(self.load, self.arrival)

    @property
    def rho(self) -> float:
        """Offered load over capacity."""
        return self.offered / self.capacity if self.capacity > 0 else math.inf

    @property
    def saturation(self) -> str:
        """below (rho < 0.9), at (0.9-1.1, and every closed-loop capacity point) or past."""
        if self.load == CAPACITY:
            return "at"
        return "below" if self.rho < 0.9 else "at" if self.rho <= 1.1 else "past"

    def describe(self) -> dict[str, object]:
        return {"point": self.name, "strategy": self.strategy, "load": self.load, "arrival": self.arrival,
                "nodes": self.nodes, "holdout": self.holdout, "saturation": self.saturation,
                "capacity": self.capacity, "sim_capacity": self.sim_capacity, "offered": self.offered,
                "rho": self.rho}


def point_name(strategy: str, load: str, arrival: str, nodes: int) -> str:
    return f"{strategy}/{load}/{arrival}/n{nodes}"


def capacity_key(name: str) -> tuple[str, int]:
    """(strategy, nodes) of a point name: whose capacity the point needs."""
    strategy, _load, _arrival, nodes = name.split("/")
    return strategy, int(nodes.removeprefix("n"))


def is_holdout(load: str, arrival: str) -> bool:
    """The hold-out rule: medium load with burst arrivals (see the module docstring)."""
    return load == "medium" and arrival == "burst"


def calibration_points(points: Iterable[Point]) -> list[Point]:
    """The points a calibration may see: everything but the hold-out."""
    return [p for p in points if not p.holdout]


def node_counts(strategy: str) -> tuple[int, ...]:
    return NODES if strategy in REDIS_STRATEGIES else (1,)


def _family(strategy: str) -> str:
    return "redis" if strategy in REDIS_STRATEGIES else "db"


def _with(scenario: Scenario, **sections: dict[str, object]) -> Scenario:
    """``scenario`` with fields of its sections replaced (dataclasses.replace, never mutation)."""
    changes = {name: dataclasses.replace(getattr(scenario, name), **fields) for name, fields in sections.items()}
    return dataclasses.replace(scenario, **changes)  # type: ignore[arg-type]


def base_scenario(transform: ScenarioTransform | None = None) -> Scenario:
    """The small sale every point varies, after the profile's overrides (``transform``)."""
    base = Scenario(name="validate")
    return transform(base) if transform is not None else base


def capacity_points(base: Scenario, settings: Settings = FULL,
                    strategies: Sequence[str] = STRATEGIES) -> list[Point]:
    """The closed-loop saturation points (their capacity is not known yet: NaN)."""
    points = []
    for strategy in strategies:
        for nodes in node_counts(strategy):
            users = CAPACITY_USERS[_family(strategy)]
            scenario = _with(base, sale={"stock": 1_000_000_000},
                             workload={"kind": "closed", "users": users, "think": Dist("deterministic", 0.0),
                                       "duration": settings.capacity_duration},
                             redis={"nodes": nodes})
            scenario = dataclasses.replace(scenario, strategy=strategy,
                                           name=point_name(strategy, CAPACITY, "closed", nodes))
            points.append(Point(strategy, CAPACITY, "closed", nodes, scenario, math.nan, math.nan))
    return points


def load_points(base: Scenario, capacities: dict[tuple[str, int], float], settings: Settings = FULL,
                sim_capacities: dict[tuple[str, int], float] | None = None) -> list[Point]:
    """Open-loop points at each level, for each (strategy, nodes) whose capacity is given (grid order)."""
    points = []
    sim_capacities = sim_capacities or {}
    for strategy in STRATEGIES:
        for nodes in node_counts(strategy):
            if (strategy, nodes) not in capacities:
                continue
            capacity = capacities[(strategy, nodes)]
            if not capacity > 0:
                raise ScenarioError(f"capacity of {strategy} on {nodes} node(s) is {capacity}: nothing to scale by")
            for level, share in LEVELS.items():
                rate = share * capacity
                span = min(settings.max_window, settings.max_requests / rate)
                for arrival in ARRIVALS:
                    name = point_name(strategy, level, arrival, nodes)
                    if arrival == "poisson":
                        workload = {"kind": "poisson", "rate": rate, "duration": span}
                        stock = 2 * settings.max_requests + 1000  # never sells out
                    else:
                        buyers = max(10, round(rate * span))
                        workload = {"kind": "burst", "buyers": buyers, "window": buyers / rate, "shape": "uniform"}
                        stock = max(1, round(BURST_STOCK_SHARE * buyers))
                    scenario = _with(base, sale={"stock": stock}, workload=workload, redis={"nodes": nodes})
                    scenario = dataclasses.replace(scenario, strategy=strategy, name=name)
                    points.append(Point(strategy, level, arrival, nodes, scenario, capacity, rate,
                                        sim_capacities.get((strategy, nodes), math.nan)))
    return points


def with_capacity(point: Point, capacity: float, sim_capacity: float = math.nan) -> Point:
    """A capacity point once its capacity is measured (offered = capacity: rho 1)."""
    return dataclasses.replace(point, capacity=capacity, offered=capacity, sim_capacity=sim_capacity)


def with_duration(point: Point, duration: float) -> Point:
    """A closed-loop point with ``duration`` seconds of load."""
    return dataclasses.replace(point, scenario=_with(point.scenario, workload={"duration": duration}))


def select(points: Sequence[Point], names: Iterable[str]) -> list[Point]:
    """The points named (in grid order); an unknown name is an error naming the valid ones."""
    wanted = list(names)
    known = {p.name for p in points}
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise ScenarioError(f"unknown validation point {unknown[0]!r}; points: {', '.join(sorted(known))}")
    return [p for p in points if p.name in wanted]
