"""Running the validation grid in the simulator and against real servers, and writing the report.

:func:`plan_grid` measures the capacities (on the real servers, or in the
simulator) and builds the points; :func:`run_validation` runs every point and
seed with ``simulate`` and with ``run_real`` (same scenario, same seed, hence
the same arrivals), and writes ``results/validation/<run-id>/``::

    config.json   the points (scenario, capacity, offered load, hold-out flag) and settings
    meta.json     git sha, versions, targets used, wall time, failures
    runs.parquet  one row per point x seed x mode: the compared figures and their context
    errors.csv    one row per point x figure: sim, real, relative error ± CI, target, met, explanation
    errors.md     the same as markdown, calibration and hold-out parts separately
    figures/      sim_vs_real_<figure>.png, relative_errors.png

Order: the capacity runs (they size the grid), then every simulation, then
the real load points: nothing runs concurrently, so the simulator never
competes with the real servers for CPU. Real-mode modules are imported only
when the real side runs.
"""

from __future__ import annotations

import fnmatch
import math
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from engine.fields import ScenarioError
from engine.scenario import Scenario
from sim.output import meta, write_json
from sim.progress import RunProgress as Progress
from sim.validate import report
from sim.validate.errors import error_table
from sim.validate.figures import FIGURES, run_figures
from sim.validate.grid import (
    FULL,
    QUICK,
    QUICK_POINTS,
    Point,
    ScenarioTransform,
    Settings,
    base_scenario,
    capacity_key,
    capacity_points,
    load_points,
    with_capacity,
    with_duration,
)
from sim.world import simulate

RESULTS_ROOT = Path("results") / "validation"
FigureCache = dict[tuple[str, int, str], dict[str, Any]]  # (point, seed, mode) -> figures


@dataclass(frozen=True)
class RealSetup:
    """Where the real side runs. A node count without a URL gets a LocalCluster started for it."""

    redis_urls: dict[int, str] = field(default_factory=dict)  # Redis masters -> entry point
    db_url: str | None = None  # default: FLASHSIM_DB_URL or mysql://root@127.0.0.1:3306
    workers: int | None = None  # load-generator processes; None: the scenario's fleet (real_workers)
    lanes: int = 4


def real_workers(scenario: Scenario) -> int:
    """The real driver's processes for ``scenario``: one per simulated app CPU (instances x workers),
    when the app tier costs anything; else one (an app tier that costs nothing has no size to match)."""
    app = scenario.app
    return app.instances * app.workers if app.costs_cpu else 1


@dataclass
class Validation:
    """What :func:`run_validation` produced."""

    path: Path
    points: list[Point]
    runs: pd.DataFrame
    errors: pd.DataFrame
    figures: list[Path]
    failures: list[str]
    violations: list[str]
    wall_seconds: float


def all_point_names(settings: Settings = FULL) -> list[str]:
    """Every point of the grid, in grid order (no capacity needed to name them)."""
    base = base_scenario()
    caps = capacity_points(base, settings)
    return [p.name for p in caps] + [p.name for p in load_points(base, dict.fromkeys(
        [(p.strategy, p.nodes) for p in caps], 1.0), settings)]


def wanted_names(quick: bool, patterns: Sequence[str] | None, settings: Settings) -> list[str]:
    """The points to run: the quick subset, those matching ``patterns`` (fnmatch), or all."""
    names = all_point_names(settings)
    if quick and not patterns:
        return list(QUICK_POINTS)
    if patterns:
        chosen = [n for n in names if any(fnmatch.fnmatchcase(n, pat) for pat in patterns)]
        if not chosen:
            raise ScenarioError(f"no validation point matches {', '.join(patterns)}; points look like "
                                f"{names[0]} (strategy/load/arrival/nodes; load: capacity, light, medium, past)")
        return chosen
    return names


def plan_grid(transform: ScenarioTransform | None = None, settings: Settings = FULL,
              names: Iterable[str] | None = None, cache: FigureCache | None = None,
              progress: Progress | None = None, real: RealRunner | None = None) -> list[Point]:
    """Measure each needed capacity and build the named points (default: all), in grid order.

    The capacity of (strategy, nodes) is the mean goodput of its closed-loop
    capacity point over the seeds: on the real servers through ``real`` when
    ``settings.capacity == "real"``, else in the simulator. ``cache`` collects
    those runs' figures by (point, seed, mode), so they are not run twice.
    """
    if settings.capacity == "real" and real is None:
        raise ScenarioError("real capacity needs real servers (a RealRunner)")
    base = base_scenario(transform)
    wanted = list(names) if names is not None else all_point_names(settings)
    needed = {capacity_key(n) for n in wanted}
    cache = {} if cache is None else cache
    capacities: dict[tuple[str, int], float] = {}
    sim_capacities: dict[tuple[str, int], float] = {}  # the pilot's estimate, or the simulated capacity
    measured: list[Point] = []
    for point in capacity_points(base, settings):
        if (point.strategy, point.nodes) not in needed:
            continue
        pilot = _simulate(with_duration(point, settings.capacity_pilot), settings.seed)["goodput"]
        point = with_duration(point, settings.capacity_span(pilot))
        goodputs = []
        for seed in settings.seeds:
            if settings.capacity == "real":
                assert real is not None
                figures = real.run(point, seed)
            else:
                figures = _simulate(point, seed)
            cache[(point.name, seed, settings.capacity)] = figures
            goodputs.append(figures["goodput"])
            if progress is not None:
                progress.advance()
        capacity = _finite_mean(goodputs)
        if not capacity > 0 and settings.capacity == "real":
            # The span was sized from the simulator's estimate, which can be far above the real
            # system's rate (sharded: 20-70k/s simulated, 2-3k/s real): a real run that served
            # nothing in it is measured once more over a span four times the longest.
            assert real is not None
            point = with_duration(point, 4 * settings.capacity_duration)
            goodputs = []
            for seed in settings.seeds:
                figures = real.run(point, seed)
                cache[(point.name, seed, settings.capacity)] = figures
                goodputs.append(figures["goodput"])
            capacity = _finite_mean(goodputs)
        if not capacity > 0:
            why = f": {real.failures[-1]}" if settings.capacity == "real" and real and real.failures else ""
            raise ScenarioError(f"{point.name}: nothing served at saturation ({settings.capacity}), "
                                f"so the load levels cannot be scaled{why}")
        key = (point.strategy, point.nodes)
        capacities[key] = capacity
        sim_capacities[key] = capacity if settings.capacity == "sim" else pilot
        measured.append(with_capacity(point, capacity, sim_capacities[key]))
    points = measured + load_points(base, capacities, settings, sim_capacities)
    by_name = {p.name: p for p in points}
    return [by_name[n] for n in wanted]


def run_validation(transform: ScenarioTransform | None = None, *, quick: bool = False,
                   settings: Settings | None = None, patterns: Sequence[str] | None = None,
                   real: RealSetup = RealSetup(), out: str | Path | None = None, quiet: bool = False,
                   profile: str | None = None) -> Validation:
    """Run the grid (or the ``quick`` subset, or the points matching ``patterns``) in sim and real."""
    start = time.perf_counter()
    settings = settings or (QUICK if quick else FULL)
    names = wanted_names(quick, patterns, settings)
    path = Path(out) if out is not None else RESULTS_ROOT / (time.strftime("%Y%m%d-%H%M%S") + ("-quick" if quick else ""))
    path.mkdir(parents=True, exist_ok=True)
    cache: FigureCache = {}
    combos = len({capacity_key(n) for n in names})
    runs = len(names) * settings.replications
    with RealRunner(real, quiet) as runner:
        progress = Progress(f"validate: capacity ({settings.capacity})", combos * settings.replications, quiet=quiet)
        progress.note(f"{len(names)} point(s) x {settings.replications} seed(s) -> {path}; "
                      f"measuring {combos} capacit{'y' if combos == 1 else 'ies'} first")
        points = plan_grid(transform, settings, names, cache, progress, runner)
        progress.finish()
        rows = _side(points, settings, "sim", cache, _simulate, Progress("validate: simulator", runs, quiet=quiet))
        # every simulation is done before the real load points run: no competition for the CPU
        rows += _side(points, settings, "real", cache, runner.run, Progress("validate: real servers", runs, quiet=quiet))
    frame = pd.DataFrame(rows)
    errors = error_table(frame)
    violations = [f"{r.point} seed {r.seed} ({r.mode}): {int(r.violations)} invariant(s) broken"
                  for r in frame.itertuples() if r.violations > 0]
    wall = time.perf_counter() - start
    header = {"run": path.name, "profile": profile or "(none: scenario defaults)",
              "capacity measured": "on the real servers" if settings.capacity == "real" else "in the simulator",
              "points": f"{len(points)} ({sum(p.holdout for p in points)} hold-out)",
              "seeds": ", ".join(map(str, settings.seeds)), "quick": quick,
              "real": f"{real.workers or real_workers(points[0].scenario) if points else real.workers} "
                      f"load-generator worker(s); Redis: "
                      + ", ".join(f"{n} master(s) {'given' if n in real.redis_urls else 'started for the run'}"
                                  for n in sorted({p.nodes for p in points})),
              "wall time": f"{wall:.0f} s"}
    figures = _write(path, points, settings, frame, errors, header, runner.failures, violations, wall, profile)
    return Validation(path, points, frame, errors, figures, runner.failures, violations, wall)


def _side(points: list[Point], settings: Settings, mode: str, cache: FigureCache,
          run: Callable[[Point, int], dict[str, Any]], progress: Progress) -> list[dict[str, Any]]:
    """Every point and seed in one mode (figures measured for the capacities are reused)."""
    rows = []
    for point in points:
        for seed in settings.seeds:
            figures = cache.get((point.name, seed, mode))
            if figures is None:
                figures = run(point, seed)
            rows.append({**point.describe(), "capacity_source": settings.capacity, "seed": seed, "mode": mode,
                         **figures})
            progress.advance()
    progress.finish()
    return rows


def _simulate(point: Point, seed: int) -> dict[str, Any]:
    return {**run_figures(simulate(point.scenario, seed, point.strategy)), "failed": None}


def _finite_mean(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


class RealRunner:
    """Runs points on real servers: one Redis target per node count, started on first use unless given.

    A context manager: clusters it started are stopped on exit. A run that
    fails (``TargetError``: a server down, a worker dead) is recorded in
    ``failures`` and gives NaN figures; the grid goes on.
    """

    def __init__(self, setup: RealSetup, quiet: bool = False):
        self.setup = setup
        self.quiet = quiet
        self.failures: list[str] = []
        self._targets: dict[int, Any] = {}
        self._clusters: list[Any] = []

    def __enter__(self) -> RealRunner:
        return self

    def __exit__(self, *exc: Any) -> None:
        for cluster in self._clusters:
            cluster.stop()
        self._clusters = []

    def target(self, nodes: int) -> Any:
        from engine.real import RedisTarget
        from engine.real.cluster import LocalCluster

        if nodes not in self._targets:
            if nodes in self.setup.redis_urls:
                target = RedisTarget.from_options(self.setup.redis_urls[nodes])
            else:
                cluster = LocalCluster(nodes).start()
                self._clusters.append(cluster)
                target = RedisTarget(cluster.url)
            if not self.quiet:
                print(f"validate: {nodes} Redis master(s) at {target.describe()}", file=sys.stderr, flush=True)
            self._targets[nodes] = target
        return self._targets[nodes]

    def run(self, point: Point, seed: int) -> dict[str, Any]:
        from engine.real import RealOptions, TargetError, run_real

        workers = self.setup.workers or real_workers(point.scenario)
        options = RealOptions(target=self.target(point.nodes), workers=workers, lanes=self.setup.lanes,
                              db_url=self.setup.db_url)
        try:
            return {**run_figures(run_real(point.scenario, seed, point.strategy, options)), "failed": None}
        except TargetError as err:
            self.failures.append(f"{point.name} seed {seed}: {err}")
            return {**dict.fromkeys(FIGURES, math.nan), "violations": 0, "failed": str(err)}


def _write(path: Path, points: list[Point], settings: Settings, runs: pd.DataFrame, errors: pd.DataFrame,
           header: dict[str, Any], failures: list[str], violations: list[str], wall: float,
           profile: str | None) -> list[Path]:
    write_json(path / "config.json", {
        "settings": asdict(settings), "profile": profile,
        "points": [{**p.describe(), "scenario": p.scenario.to_dict()} for p in points],
    })
    runs.to_parquet(path / "runs.parquet", index=False)
    errors.to_csv(path / "errors.csv", index=False)
    (path / "errors.md").write_text(report.markdown(errors, header), encoding="utf-8")
    figures = report.plot_validation(errors, path / "figures")
    write_json(path / "meta.json", meta(settings.seed, wall, command="validate", profile=profile,
                                         targets={f: t.text for f, t in FIGURES.items()},
                                         failures=failures, violations=violations))
    return figures


def load_validation(path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(runs, errors) of a validation folder, e.g. for a notebook."""
    path = Path(path)
    if not (path / "runs.parquet").exists():
        raise ScenarioError(f"not a validation run folder (no runs.parquet): {path}")
    errors = pd.read_csv(path / "errors.csv")
    errors["met"] = errors["met"].map({True: True, False: False, "True": True, "False": False})
    return pd.read_parquet(path / "runs.parquet"), errors


