"""The research bench on top of the simulator: sweeps, statistics, plots, capacity planning.

Public API::

    from sim.bench import load_sweep, run_sweep, plot_results
    result = run_sweep(load_sweep("experiments/sweeps/single_redis_ceiling.toml"), workers=2)
    result.runs      # one row per run: parameters, seed, metrics
    result.points    # one row per point: <metric>_mean, _ci, _low, _high
    plot_results(result.path)

The CLI front ends are ``flashsim sweep``, ``flashsim plot`` and ``flashsim plan``.
"""

from sim.bench.plan import Plan, plan
from sim.bench.plots import plot_results
from sim.bench.runner import SweepResult, run_sweep, sweep_dir
from sim.bench.stats import Interval, confidence_interval, replicate_until, summarize_points, t_quantile
from sim.bench.sweep import RunSpec, Sweep, expand, grid_points, load_sweep, point_scenario, run_seed, sweep_from_dict

__all__ = [
    "Interval", "Plan", "RunSpec", "Sweep", "SweepResult", "confidence_interval", "expand", "grid_points",
    "load_sweep", "plan", "plot_results", "point_scenario", "replicate_until", "run_seed", "run_sweep",
    "summarize_points", "sweep_dir", "sweep_from_dict", "t_quantile",
]
