"""The validation grid, error table and report, without servers (the real run: tests/real/test_validate.py)."""

from __future__ import annotations

import math
import subprocess
import sys

import pandas as pd
import pytest

from sim.cli import main
from sim.validate import (
    QUICK_POINTS,
    Settings,
    all_point_names,
    calibration_points,
    capacity_points,
    error_table,
    load_points,
    plan_grid,
)
from sim.validate.grid import FULL, LEVELS, STRATEGIES, base_scenario, node_counts
from sim.validate.report import markdown
from sim.validate.run import wanted_names


def grid(settings: Settings = FULL):
    base = base_scenario()
    caps = capacity_points(base, settings)
    capacities = {(p.strategy, p.nodes): 1000.0 * (i + 1) for i, p in enumerate(caps)}
    return caps, load_points(base, capacities, settings)


def test_grid_covers_strategies_loads_arrivals_and_nodes():
    caps, loads = grid()
    names = [p.name for p in caps + loads]
    assert len(names) == len(set(names)) == 42 == len(all_point_names())
    for strategy in STRATEGIES:
        for nodes in node_counts(strategy):
            mine = [p for p in loads if p.strategy == strategy and p.nodes == nodes]
            assert {(p.load, p.arrival) for p in mine} == {(lv, a) for lv in LEVELS for a in ("poisson", "burst")}
    assert {p.nodes for p in loads if p.strategy.startswith("db_")} == {1}
    assert {p.nodes for p in loads if p.strategy == "sharded"} == {1, 3}


def test_holdout_is_medium_bursts_for_every_strategy_and_never_offered_to_calibration():
    caps, loads = grid()
    points = caps + loads
    holdout = [p for p in points if p.holdout]
    assert {(p.load, p.arrival) for p in holdout} == {("medium", "burst")}
    assert {p.strategy for p in holdout} == set(STRATEGIES)
    assert {(p.strategy, p.nodes) for p in holdout} == {(p.strategy, p.nodes) for p in caps}
    seen = calibration_points(points)
    assert len(seen) == len(points) - len(holdout) and not any(p.holdout for p in seen)


def test_load_levels_scale_the_measured_capacity_and_stay_small():
    settings = Settings(max_requests=5000, max_window=1.0)
    _caps, loads = grid(settings)
    for p in loads:
        assert p.offered == pytest.approx(LEVELS[p.load] * p.capacity)
        w = p.scenario.workload
        assert p.scenario.strategy == p.strategy and p.scenario.redis.nodes == p.nodes
        if p.arrival == "poisson":
            assert w.kind == "poisson" and w.rate == pytest.approx(p.offered)
            assert w.rate * w.duration <= 5000 + 1e-6 and p.scenario.sale.stock > 2 * 5000  # never sells out
        else:
            assert w.kind == "burst" and w.buyers / w.window == pytest.approx(p.offered)
            assert w.buyers <= 5000 and p.scenario.sale.stock < w.buyers  # sells out
        assert p.saturation == ("past" if p.load == "past" else "below")
    assert {p.saturation for p in grid(settings)[0]} == {"at"}


def test_quick_subset_spans_saturation_holdout_db_and_both_node_counts():
    caps, loads = grid()
    by_name = {p.name: p for p in caps + loads}
    quick = [by_name[n] for n in wanted_names(True, None, Settings())]
    assert [p.name for p in quick] == list(QUICK_POINTS)
    assert {p.saturation for p in quick} == {"below", "at", "past"}
    assert any(p.holdout for p in quick) and any(p.strategy.startswith("db_") for p in quick)
    assert {p.nodes for p in quick} == {1, 3}
    assert wanted_names(False, ["db_*/light/*"], Settings()) == [
        "db_conditional/light/poisson/n1", "db_conditional/light/burst/n1",
        "db_pessimistic/light/poisson/n1", "db_pessimistic/light/burst/n1"]


def test_plan_grid_measures_capacity_in_the_simulator():
    settings = Settings(replications=2, capacity="sim", capacity_duration=0.3)
    points = plan_grid(settings=settings, names=["db_conditional/capacity/closed/n1", "db_conditional/light/poisson/n1"])
    capacity, light = points
    assert capacity.capacity > 100 and capacity.saturation == "at"
    assert light.capacity == capacity.capacity and light.offered == pytest.approx(0.25 * capacity.capacity)
    with pytest.raises(ValueError, match="real capacity needs real servers"):
        plan_grid(settings=Settings(), names=["db_conditional/light/poisson/n1"])


class SlowStart:
    """Stands in for the real servers' runner: serves nothing in a span shorter than ``needs`` seconds."""

    def __init__(self, needs: float):
        self.needs = needs
        self.failures: list[str] = []
        self.spans: list[float] = []

    def run(self, point, seed):
        span = point.scenario.workload.duration
        self.spans.append(span)
        return {"goodput": 1_000.0 if span >= self.needs else 0.0}


def test_a_real_capacity_run_that_served_nothing_is_measured_again_over_a_longer_span():
    settings = Settings(replications=1, capacity_duration=0.3)
    names = ["db_conditional/capacity/closed/n1"]
    runner = SlowStart(needs=1.0)
    (capacity,) = plan_grid(settings=settings, names=names, real=runner)  # type: ignore[arg-type]
    assert len(runner.spans) == 2 and runner.spans[0] <= 0.3 and runner.spans[1] == pytest.approx(1.2)
    assert capacity.capacity == 1_000.0
    with pytest.raises(ValueError, match="nothing served at saturation"):
        plan_grid(settings=settings, names=names, real=SlowStart(needs=10.0))  # type: ignore[arg-type]


def runs_frame(point: str, saturation: str, holdout: bool, sim: dict, real: dict) -> pd.DataFrame:
    rows = []
    for mode, figures in (("sim", sim), ("real", real)):
        for seed, values in enumerate(zip(*figures.values())):
            rows.append({"point": point, "strategy": point.split("/")[0], "load": point.split("/")[1],
                         "arrival": point.split("/")[2], "nodes": 1, "holdout": holdout, "saturation": saturation,
                         "capacity": 1000.0, "capacity_source": "real", "offered": 250.0, "rho": 0.25,
                         "seed": seed, "mode": mode, "timeout_share": 0.0, "failed": None,
                         **dict(zip(figures, values))})
    return pd.DataFrame(rows)


def test_error_table_judges_targets_below_saturation_only():
    below = runs_frame("single_redis/light/burst/n1", "below", False,
                       sim={"goodput": [105.0, 107.0], "ok_p99": [0.019, 0.021], "time_to_sellout": [1.0, 1.0]},
                       real={"goodput": [100.0, 100.0], "ok_p99": [0.010, 0.010], "time_to_sellout": [math.nan, 2.0]})
    only_sim = runs_frame("sharded/light/burst/n1", "below", False,
                          sim={"time_to_sellout": [0.5]}, real={"time_to_sellout": [math.nan]})
    past = runs_frame("db_conditional/past/poisson/n1", "past", True,
                      sim={"goodput": [300.0], "db_tps": [300.0]}, real={"goodput": [100.0], "db_tps": [90.0]})
    errors = error_table(pd.concat([below, only_sim, past], ignore_index=True)).set_index(["point", "figure"])
    good = errors.loc[("single_redis/light/burst/n1", "goodput")]
    assert good["rel_error"] == pytest.approx(0.06) and good["n"] == 2 and good["met"] is True
    assert good["rel_error_ci"] == pytest.approx(12.706 * (0.02 / math.sqrt(2)) / math.sqrt(2), rel=1e-3)  # t(.975, 1) s/√n
    assert good["explanation"] == ""
    p99 = errors.loc[("single_redis/light/burst/n1", "ok_p99")]  # sim/real = 2.0: exactly within 2x
    assert p99["rel_error"] == pytest.approx(1.0) and p99["met"] is True and p99["sim"] == pytest.approx(20.0)
    sellout = errors.loc[("single_redis/light/burst/n1", "time_to_sellout")]  # one seed did not sell out
    assert sellout["n"] == 1 and sellout["rel_error"] == pytest.approx(-0.5) and sellout["met"] is False
    missed = errors.loc[("sharded/light/burst/n1", "time_to_sellout")]  # sold out in sim only: a miss
    assert missed["n"] == 0 and missed["met"] is False and "did not sell out in real" in missed["explanation"]
    for figure in ("goodput", "db_tps"):
        row = errors.loc[("db_conditional/past/poisson/n1", figure)]
        assert not row["judged"] and row["met"] is None and "past saturation" in row["target"]
        assert row["explanation"].startswith("offered")
    md = markdown(errors.reset_index(), {"run": "t"})
    calibration, holdout = md.split("## Hold-out part")
    assert "single_redis/light/burst/n1" in calibration and "db_conditional/past" not in calibration
    assert "db_conditional/past/poisson/n1" in holdout.split("## Targets met")[0]


def test_bad_input_is_one_line_and_status_2(capsys):
    for argv, message in ((["validate", "--replications", "0"], "--replications must be >= 1"),
                          (["validate", "--points", "nope*"], "no validation point matches nope*"),
                          (["validate", "--workers", "0"], "--workers must be >= 1")):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and message in err


def test_building_the_grid_imports_no_real_mode_module():
    probe = ("import sys, sim.validate; from sim.validate import all_point_names; all_point_names(); "
             "print(sorted(m for m in sys.modules if m.startswith(('engine.real', 'asyncmy'))))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
