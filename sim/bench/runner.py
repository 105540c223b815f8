"""Running a sweep: in parallel processes or on a Dask cluster, resumable, one long table out.

Layout of a sweep's results folder (``results/<sweep>/<fingerprint>/``)::

    config.json     the sweep as run (resolved base scenario, points, strategies)
    meta.json       git sha, package versions, executor, runs executed / reused, wall time
    parts/          one <run>.parquet per finished run (+ <run>.<table>.parquet)
    runs.parquet    one row per run: parameters, seed, metrics (long format)
    points.csv      one row per point: mean and 95 % CI of every metric
    latency.parquet, timeline.parquet, events.parquet   when the sweep records them

A run's part is written (atomically) as soon as it finishes, by the driver
process, so an interrupted sweep resumes where it stopped and the tables are
the same whichever executor ran them.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pandas as pd

from engine.scenario import ScenarioError
from sim.bench.record import RunOutput, execute
from sim.bench.stats import confidence_interval, summarize_points
from sim.bench.sweep import RECORDS, RunSpec, Sweep, expand
from sim.output import meta, write_json
from sim.progress import RunProgress

RESULTS_ROOT = Path("results")


@dataclass
class SweepResult:
    """What :func:`run_sweep` produced."""

    path: Path
    runs: pd.DataFrame
    points: pd.DataFrame
    executed: int       # runs simulated by this call
    reused: int         # runs found already done (resume)
    wall_seconds: float


def default_workers() -> int:
    """Cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def sweep_dir(sweep: Sweep, results_root: str | Path = RESULTS_ROOT) -> Path:
    return Path(results_root) / sweep.name / sweep.fingerprint


def run_sweep(sweep: Sweep, out: str | Path | None = None, *, workers: int | None = None,
              dask: Any = None, quiet: bool = False, results_root: str | Path = RESULTS_ROOT) -> SweepResult:
    """Run every point x strategy x replication of ``sweep`` not already done in ``out``.

    ``workers``: local processes (default: every core; 1 runs in this process).
    ``dask``: a scheduler address (``tcp://host:8786``) or a ``distributed``
    cluster object; the runs then go to that cluster instead.
    """
    start = time.perf_counter()
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise ScenarioError(f"--workers must be >= 1 (got {workers})")
    path = Path(out) if out is not None else sweep_dir(sweep, results_root)
    parts = path / "parts"
    parts.mkdir(parents=True, exist_ok=True)
    write_json(path / "config.json", sweep.to_dict())

    executed = 0
    busy = 0.0
    counts: dict[str, int] = {}
    while True:
        specs = expand(sweep, counts)
        pending = [s for s in specs if not (parts / f"{s.key}.parquet").exists()]
        if pending:
            progress = RunProgress(f"sweep {sweep.name}", len(specs), len(specs) - len(pending), quiet)
            progress.note(f"{len(specs)} runs, {len(specs) - len(pending)} already done, "
                          f"{_executor_label(workers, dask)} -> {path}")
            for output in _execute(pending, workers, dask):
                write_part(parts, output)
                executed += 1
                busy += output.wall_seconds
                progress.advance()
            progress.finish()
        if sweep.adaptive is None:
            break
        more = _adaptive_counts(sweep, read_rows(parts, specs), counts)
        if more == counts:
            break
        counts = more

    reused = len(specs) - executed
    runs = read_rows(parts, specs)
    points = summarize_points(runs)
    runs.to_parquet(path / "runs.parquet", index=False)
    points.to_csv(path / "points.csv", index=False)
    for table in RECORDS:
        frame = read_tables(parts, specs, table)
        if frame is not None:
            frame.to_parquet(path / f"{table}.parquet", index=False)
    wall = time.perf_counter() - start
    write_json(path / "meta.json", meta(sweep.seed, wall, sweep=sweep.name, fingerprint=sweep.fingerprint,
                                         executor="dask" if dask is not None else "local",
                                         dask=str(dask) if dask is not None else None, workers=workers,
                                         runs=len(specs), executed=executed, reused=reused,
                                         run_seconds=busy))
    return SweepResult(path, runs, points, executed, reused, wall)


# ---------------------------------------------------------------- parts
def write_part(parts: Path, output: RunOutput) -> None:
    """Tables first, the row last: a run counts as done once its row exists."""
    for name, table in output.tables.items():
        _atomic_parquet(table, parts / f"{output.key}.{name}.parquet")
    _atomic_parquet(pd.DataFrame([output.row]), parts / f"{output.key}.parquet")


def read_rows(parts: Path, specs: Iterable[RunSpec]) -> pd.DataFrame:
    """The runs table, in expansion order (so it never depends on completion order)."""
    frames = [pd.read_parquet(parts / f"{s.key}.parquet") for s in specs
              if (parts / f"{s.key}.parquet").exists()]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def read_tables(parts: Path, specs: Iterable[RunSpec], name: str) -> pd.DataFrame | None:
    files = [parts / f"{s.key}.{name}.parquet" for s in specs]
    frames = [pd.read_parquet(f) for f in files if f.exists()]
    return pd.concat(frames, ignore_index=True) if frames else None


def _atomic_parquet(frame: pd.DataFrame, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, target)


# ---------------------------------------------------------------- executors
def _execute(specs: list[RunSpec], workers: int, dask: Any) -> Iterator[RunOutput]:
    """Results as they complete, from Dask, a process pool, or this process."""
    if dask is not None:
        yield from _on_dask(specs, dask)
    elif workers == 1 or len(specs) == 1:
        for spec in specs:
            yield execute(spec)
    else:
        yield from _on_processes(sorted(specs, key=expected_requests, reverse=True), workers)


def expected_requests(spec: RunSpec) -> float:
    """A run's rough cost, to hand out the longest runs first (so no worker idles at the end)."""
    w = spec.scenario.workload
    if w.kind == "burst":
        return float(w.buyers)
    if w.kind == "poisson":
        return w.rate * w.duration
    return w.users * w.duration / max(w.think.mean, 1e-3)


def _on_processes(specs: list[RunSpec], workers: int) -> Iterator[RunOutput]:
    # fork is the cheapest start; with other threads alive (Jupyter, Dask) it is unsafe, so spawn.
    context = get_context("fork" if threading.active_count() == 1 and sys.platform == "linux" else "spawn")
    pool = ProcessPoolExecutor(min(workers, len(specs)), mp_context=context)
    try:
        pending = {pool.submit(execute, spec) for spec in specs}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _on_dask(specs: list[RunSpec], target: Any) -> Iterator[RunOutput]:
    from distributed import Client, as_completed

    try:
        client = Client(target, set_as_default=False, timeout="10s")
    except OSError as err:
        raise ScenarioError(f"cannot reach the Dask scheduler at {target}: {err}") from None
    with client:
        futures = client.map(execute, specs, pure=False)
        try:
            for future in as_completed(futures, loop=client.loop):
                yield future.result()
        finally:
            client.cancel(futures)


def _executor_label(workers: int, dask: Any) -> str:
    if dask is not None:
        return f"on Dask {dask}"
    return "1 process" if workers == 1 else f"{workers} processes"


# ---------------------------------------------------------------- adaptive replications
def _adaptive_counts(sweep: Sweep, runs: pd.DataFrame, counts: dict[str, int]) -> dict[str, int]:
    """Next replication count per point: one more batch wherever the CI is still too wide."""
    rule = sweep.adaptive
    assert rule is not None
    if rule.metric not in runs.columns:
        numeric = [c for c in runs.columns if pd.api.types.is_numeric_dtype(runs[c])]
        raise ScenarioError(f"sweep.adaptive.metric {rule.metric!r} is not a run figure; choose from: {', '.join(numeric)}")
    batch = rule.batch or sweep.replications
    more = dict(counts)
    for pid, group in runs.groupby("point_id", sort=False):
        n = len(group)
        if n < rule.max_replications and not confidence_interval(group[rule.metric]).met(rule.half_width, rule.relative):
            more[str(pid)] = min(rule.max_replications, n + batch)
    return more
