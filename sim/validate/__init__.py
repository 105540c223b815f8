"""``flashsim validate``: the simulator judged against real servers on one grid.

    from sim.validate import run_validation
    validation = run_validation(quick=True)          # starts its own Redis, uses the local MariaDB
    validation.errors                                # one row per point x figure
    validation.path                                  # results/validation/<run-id>/

The grid (:mod:`sim.validate.grid`) is engine-free: building it imports no
real-mode module; only running the real side does.
"""

from sim.validate.errors import error_table, scorecard, worst
from sim.validate.figures import FIGURES, run_figures
from sim.validate.grid import (
    QUICK,
    QUICK_POINTS,
    Point,
    ScenarioTransform,
    Settings,
    calibration_points,
    capacity_points,
    is_holdout,
    load_points,
)
from sim.validate.run import RealSetup, Validation, all_point_names, load_validation, plan_grid, run_validation

__all__ = [
    "FIGURES", "QUICK", "QUICK_POINTS", "Point", "RealSetup", "ScenarioTransform", "Settings", "Validation",
    "all_point_names", "calibration_points", "capacity_points", "error_table", "is_holdout", "load_points",
    "load_validation", "plan_grid", "run_figures", "run_validation", "scorecard", "worst",
]
