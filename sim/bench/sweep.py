"""A sweep: a base scenario, parameters to vary, strategies and replications.

Defined in TOML (``experiments/sweeps/*.toml``)::

    [sweep]
    name = "single_redis_ceiling"
    seed = 7                       # the sweep seed: every run's seed derives from it
    replications = 3
    strategies = ["single_redis"]  # or ["all"]
    scenario = "../default.toml"   # optional base scenario file, relative to this file
    set = ["sale.stock=100000"]    # optional overrides of the base
    record = ["latency", "timeline"]   # optional per-run tables beyond the summary row

    [sweep.adaptive]               # optional: add replications until the CI is tight
    metric = "goodput"
    half_width = 0.02              # relative to the mean unless relative = false
    max_replications = 12

    [base]                         # optional inline scenario tables (over the file)
    workload.kind = "poisson"

    [grid]                         # product of these lists
    "workload.rate" = [20000, 60000, 100000]

    [[points]]                     # explicit points, combined with every grid point
    "redis.nodes" = 2

:func:`expand` turns a sweep into :class:`RunSpec` s (point x replication).
A run's seed depends only on the sweep seed, the point's parameters and the
replication index, never on the strategy (common random numbers across
strategies), the worker that runs it or the order runs finish in.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import runpy
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.profile import Profile, toml_value
from engine.scenario import Scenario, ScenarioError, load_scenario
from engine.strategies import STRATEGIES

RECORDS = ("latency", "timeline", "events")  # optional per-run tables a sweep may keep

Params = tuple[tuple[str, Any], ...]  # a point's varied keys, sorted; picklable (values may be tables)


@dataclass(frozen=True)
class Adaptive:
    """Add replications to a point until ``metric``'s CI half-width <= target, or the budget is spent."""

    metric: str
    half_width: float
    relative: bool = True
    max_replications: int = 20
    batch: int = 0  # replications added per round to an unfinished point (0: the initial count)

    def __post_init__(self) -> None:
        _require(self.half_width > 0, f"sweep.adaptive.half_width must be > 0 (got {self.half_width})")
        _require(self.max_replications >= 2, f"sweep.adaptive.max_replications must be >= 2 (got {self.max_replications})")
        _require(self.batch >= 0, f"sweep.adaptive.batch must be >= 0 (got {self.batch})")


@dataclass(frozen=True)
class Sweep:
    """A validated sweep definition (see the module docstring for the TOML form)."""

    name: str
    base: Scenario
    points: tuple[Params, ...]
    strategies: tuple[str, ...]
    replications: int = 3
    seed: int = 0
    record: tuple[str, ...] = ()
    adaptive: Adaptive | None = None
    description: str = ""
    source: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        _require(self.name != "" and "/" not in self.name, f"sweep.name must be non-empty without '/' (got {self.name!r})")
        _require(self.replications >= 1, f"sweep.replications must be >= 1 (got {self.replications})")
        _require(self.seed >= 0, f"sweep.seed must be >= 0 (got {self.seed})")
        _require(len(self.strategies) > 0, "sweep.strategies is empty")
        for name in self.strategies:
            _require(name in STRATEGIES, f"sweep.strategies: unknown strategy {name!r}; choose from: {', '.join(STRATEGIES)}")
        for item in self.record:
            _require(item in RECORDS, f"sweep.record: unknown table {item!r}; choose from: {', '.join(RECORDS)}")
        distinct = {json.dumps(p, sort_keys=True, default=str) for p in self.points}  # values may be tables
        _require(len(distinct) == len(self.points), "the sweep lists the same point twice")
        for params in self.points:  # fail now, with the key's name, not in a worker later
            point_scenario(self.base, params)

    @property
    def fingerprint(self) -> str:
        """Identifies the sweep's results folder: the resolved base scenario, seed and tables kept.

        Grid, strategies and replications are left out on purpose: growing a
        sweep reuses the runs it already has.
        """
        return _digest({"name": self.name, "base": self.base.to_dict(), "seed": self.seed,
                        "record": sorted(self.record)})[:10]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "seed": self.seed,
                "replications": self.replications, "strategies": list(self.strategies),
                "record": list(self.record), "points": [dict(p) for p in self.points],
                "adaptive": None if self.adaptive is None else vars(self.adaptive),
                "base": self.base.to_dict(), "source": self.source}


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: everything a worker needs, and nothing else."""

    key: str            # file name of its part; unique within a sweep folder
    point_id: str       # the point (strategy + parameters)
    strategy: str
    params: Params
    replication: int
    seed: int
    scenario: Scenario
    record: tuple[str, ...] = ()


def load_sweep(path: str | Path, profile: Profile | None = None) -> Sweep:
    """Read and validate a sweep file; problems raise :class:`ScenarioError` (one line).

    A ``.toml`` file holds the tables above. A ``.py`` file is run and must
    define ``SWEEP``: the same structure as a dict (handy when the grid is
    computed, e.g. ``[2 ** k for k in range(8)]``). ``profile`` (a calibration
    profile) applies to the base scenario before the sweep's ``set`` lines.
    """
    path = Path(path)
    if path.suffix == ".py":
        return _python_sweep(path, profile)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError(f"sweep file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ScenarioError(f"cannot read sweep file {path}: {err.__class__.__name__}") from None
    except tomllib.TOMLDecodeError as err:
        raise ScenarioError(f"{path}: malformed TOML: {err}") from None
    try:
        return sweep_from_dict(data, path.parent, source=str(path), profile=profile)
    except ScenarioError as err:
        raise ScenarioError(f"{path}: {err}") from None


def _python_sweep(path: Path, profile: Profile | None = None) -> Sweep:
    if not path.is_file():
        raise ScenarioError(f"sweep file not found: {path}")
    try:
        namespace = runpy.run_path(str(path))
    except Exception as err:  # the user's code: report it in one line
        raise ScenarioError(f"{path}: {err.__class__.__name__}: {err}") from None
    data = namespace.get("SWEEP")
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: define SWEEP = {{'sweep': {{...}}, 'grid': {{...}}, ...}}")
    try:
        return sweep_from_dict(data, path.parent, source=str(path), profile=profile)
    except ScenarioError as err:
        raise ScenarioError(f"{path}: {err}") from None


def sweep_from_dict(data: dict[str, Any], root: Path | None = None, source: str | None = None,
                    profile: Profile | None = None) -> Sweep:
    """Build a :class:`Sweep` from the TOML structure (``root``: where relative paths start)."""
    unknown = set(data) - {"sweep", "base", "grid", "points"}
    _require(not unknown, f"unknown table(s) {', '.join(sorted(unknown))}: expected sweep, base, grid, points")
    head = dict(data.get("sweep", {}))
    known = {"name", "description", "seed", "replications", "strategies", "scenario", "set", "record", "adaptive"}
    _require(not set(head) - known, f"unknown key(s) under sweep: {', '.join(sorted(set(head) - known))}; "
                                    f"valid: {', '.join(sorted(known))}")
    _require("name" in head, "sweep.name is required")
    base = _base_scenario(head, data.get("base", {}), root or Path("."), profile)
    strategies = head.get("strategies", [base.strategy])
    if isinstance(strategies, str):
        strategies = [strategies]
    if list(strategies) == ["all"]:
        strategies = list(STRATEGIES)
    adaptive = head.get("adaptive")
    if adaptive is not None:
        _require(isinstance(adaptive, dict), "sweep.adaptive must be a table")
        try:
            adaptive = Adaptive(**adaptive)
        except TypeError as err:
            raise ScenarioError(f"sweep.adaptive: {err}") from None
    return Sweep(
        name=str(head["name"]), description=str(head.get("description", "")), base=base,
        points=grid_points(data.get("grid", {}), data.get("points", [{}])),
        strategies=tuple(strategies), replications=int(head.get("replications", 3)),
        seed=int(head.get("seed", 0)), record=tuple(head.get("record", ())), adaptive=adaptive, source=source,
    )


def grid_points(grid: dict[str, list[Any]], points: list[dict[str, Any]] | None = None) -> tuple[Params, ...]:
    """Every explicit point combined with every point of the grid's product, in file order."""
    _require(isinstance(grid, dict), "grid must be a table of key = [values]")
    grid = _flatten(grid, deep=True)  # workload.rate = [...] unquoted is a nested table in TOML
    for key, values in grid.items():
        _require(isinstance(values, list) and len(values) > 0, f"grid.{key} must be a non-empty list")
    points = points or [{}]
    _require(isinstance(points, list) and all(isinstance(p, dict) for p in points), "points must be [[points]] tables")
    out = []
    for explicit in points:
        for combo in itertools.product(*grid.values()):
            params = {**_flatten(explicit), **dict(zip(grid, combo))}
            _require("strategy" not in params, "vary strategies with sweep.strategies, not as a parameter")
            out.append(tuple(sorted(params.items())))
    return tuple(out)


def expand(sweep: Sweep, replications: dict[str, int] | None = None) -> list[RunSpec]:
    """Every point x strategy x replication, in a fixed order.

    ``replications`` maps a point id to its replication count (adaptive rounds);
    other points get ``sweep.replications``.
    """
    specs = []
    for params in sweep.points:
        scenario = point_scenario(sweep.base, params)
        for strategy in sweep.strategies:
            pid = point_id(strategy, params)
            count = (replications or {}).get(pid, sweep.replications)
            for rep in range(count):
                specs.append(RunSpec(key=f"{pid}-r{rep:03d}", point_id=pid, strategy=strategy, params=params,
                                     replication=rep, seed=run_seed(sweep.seed, params, rep), scenario=scenario,
                                     record=sweep.record))
    return specs


def point_id(strategy: str, params: Params) -> str:
    """A short stable name for a point: same strategy and parameters, same id."""
    return f"{strategy}-{_digest(dict(params))[:10]}"


def run_seed(sweep_seed: int, params: Params, replication: int) -> int:
    """The seed of one run, from the sweep seed, the point's parameters and the replication only.

    The strategy is not an input: every strategy at a point sees the same
    buyers (common random numbers). A hash, not a counter, so adding points
    never shifts the seeds of existing ones.
    """
    text = json.dumps([sweep_seed, [list(p) for p in params], replication], sort_keys=True, default=str)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1  # fits int64


def point_scenario(base: Scenario, params: Params) -> Scenario:
    """The base scenario with a point's parameters applied (validated like ``--set``)."""
    return base.with_overrides([f"{key}={toml_value(value)}" for key, value in params])


def _base_scenario(head: dict[str, Any], inline: dict[str, Any], root: Path, profile: Profile | None = None
                   ) -> Scenario:
    data: dict[str, Any] = {}
    if "scenario" in head:
        data = load_scenario(root / head["scenario"]).to_dict()
    _require(isinstance(inline, dict), "base must be a table")
    base = Scenario.from_dict(_merge(data, inline))
    if profile is not None:
        base, _skipped = profile.apply(base)
    overrides = head.get("set", [])
    _require(isinstance(overrides, list), "sweep.set must be a list of \"key=value\" strings")
    return base.with_overrides(overrides)


def _merge(into: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(into)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _flatten(table: dict[str, Any], prefix: str = "", deep: bool = False) -> dict[str, Any]:
    """``{"redis": {"nodes": 2}}`` -> ``{"redis.nodes": 2}`` (keys may be written either way).

    A point flattens one level only, so a table value (a ``Dist``) stays a value;
    a grid flattens down to its lists (``deep``).
    """
    flat: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and (deep or ("." not in key and not prefix)):
            flat.update(_flatten(value, name + ".", deep))
        else:
            flat[name] = value
    return flat


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ScenarioError(message)
