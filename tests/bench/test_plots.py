"""The standard figures come out of a sweep's folder and of a single run's folder."""

import pandas as pd
import pytest
from matplotlib.image import imread

from sim.bench import plot_results, run_sweep, sweep_from_dict
from sim.bench.plots import load_axis, series
from sim.bench.stats import summarize_points
from sim.cli import main


@pytest.fixture(scope="module")
def sweep_folder(tmp_path_factory):
    sweep = sweep_from_dict({
        "sweep": {"name": "plots", "seed": 2, "replications": 2, "record": ["latency", "timeline"],
                  "strategies": ["single_redis", "sharded"]},
        "base": {"sale": {"stock": 500}, "workload": {"kind": "poisson", "duration": 0.05}},
        "grid": {"workload.rate": [5000, 20000, 60000]},
    })
    return run_sweep(sweep, tmp_path_factory.mktemp("sweep"), workers=2, quiet=True).path


def test_sweep_figures_in_png_and_svg(sweep_folder, tmp_path):
    written = plot_results(sweep_folder, tmp_path / "fig", ["png", "svg"])
    names = {p.name for p in written}
    for figure in ("goodput_vs_load", "latency_vs_load", "latency_cdf", "stock_timeline"):
        assert {f"{figure}.png", f"{figure}.svg"} <= names
    for path in written:
        assert path.stat().st_size > 5_000, path
    image = imread(tmp_path / "fig" / "goodput_vs_load.png")
    assert image.shape[0] > 300 and image.shape[1] > 500
    svg = (tmp_path / "fig" / "goodput_vs_load.svg").read_text()
    assert "Goodput vs offered load" in svg and "requests/s" in svg and "single_redis" in svg and "sharded" in svg


def test_sync_lag_figure_only_when_a_lag_figure_exists(sweep_folder, tmp_path):
    runs = pd.read_parquet(sweep_folder / "runs.parquet")
    has_lag = any("lag" in c for c in runs.columns)
    names = {p.stem for p in plot_results(sweep_folder, tmp_path / "a")}
    assert ("sync_lag" in names) == has_lag
    lagless = tmp_path / "lagless"
    lagless.mkdir()
    runs.drop(columns=[c for c in runs.columns if "lag" in c]).to_parquet(lagless / "runs.parquet")
    names = {p.stem for p in plot_results(lagless)}
    assert names == {"goodput_vs_load", "latency_vs_load"}  # no latency/timeline tables, no lag columns
    assert (lagless / "figures" / "goodput_vs_load.png").is_file()


def test_a_parameter_that_restates_the_load_does_not_split_lines(sweep_folder):
    runs = pd.read_parquet(sweep_folder / "runs.parquet")
    assert load_axis(runs) == "offered_load"
    labels = [label for label, _ in series(summarize_points(runs), "offered_load")]
    assert labels == ["sharded", "single_redis"]


def test_single_run_folder_gives_cdf_and_timeline(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["run", "--set", "workload.buyers=2000", "--set", "sale.stock=300", "--quiet", "--out", str(run)]) == 0
    assert main(["plot", str(run), "--format", "svg"]) == 0
    out = capsys.readouterr().out
    assert "latency_cdf.svg" in out and "stock_timeline.svg" in out
    assert (run / "figures" / "latency_cdf.svg").stat().st_size > 5_000


def test_plot_errors_are_one_line(tmp_path, capsys):
    assert main(["plot", str(tmp_path / "nowhere")]) == 2
    assert "results folder not found" in capsys.readouterr().err
    assert main(["plot", str(tmp_path)]) == 2
    assert "no runs.parquet (a sweep) or requests.parquet (a run) to plot" in capsys.readouterr().err


def test_a_sweep_over_a_named_choice_draws_one_mark_per_choice(tmp_path):
    sweep = sweep_from_dict({
        "sweep": {"name": "policy", "seed": 2, "replications": 2, "strategies": ["sharded"]},
        "base": {"sale": {"stock": 500}, "workload": {"kind": "poisson", "duration": 0.05, "rate": 20000}},
        "grid": {"sharded.policy": ["random", "p2c"]},
    })
    path = run_sweep(sweep, tmp_path / "s", workers=1, quiet=True).path
    names = {p.stem for p in plot_results(path, formats=["svg"])}
    assert {"goodput_by_policy", "latency_by_policy"} <= names
    svg = (path / "figures" / "goodput_by_policy.svg").read_text()
    assert "random" in svg and "p2c" in svg
    one_point = tmp_path / "one"
    one_point.mkdir()
    pd.read_parquet(path / "runs.parquet").query("`sharded.policy` == 'p2c'").to_parquet(one_point / "runs.parquet")
    with pytest.raises(Exception, match="nothing to draw"):
        plot_results(one_point)
