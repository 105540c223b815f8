"""Running sweeps: identical tables from any executor, resume after a crash, adaptive replications."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from sim.bench import confidence_interval, expand, run_sweep, sweep_from_dict
from sim.cli import main

SWEEP = """
[sweep]
name = "resume"
seed = 9
replications = 4
strategies = ["single_redis"]
record = ["latency"]

[base]
sale.stock = 1_000_000
workload.kind = "poisson"
workload.duration = 0.2

[grid]
"workload.rate" = [10_000, 20_000, 30_000, 40_000]
"""


def small(replications=2, record=("latency", "timeline"), **extra):
    return sweep_from_dict({
        "sweep": {"name": "small", "seed": 3, "replications": replications, "record": list(record), **extra},
        "base": {"sale": {"stock": 300}, "workload": {"kind": "poisson", "duration": 0.05}},
        "grid": {"workload.rate": [5000, 20000]},
    })


def test_one_worker_and_a_process_pool_write_identical_tables(tmp_path):
    sweep = small()
    serial = run_sweep(sweep, tmp_path / "serial", workers=1, quiet=True)
    pooled = run_sweep(sweep, tmp_path / "pool", workers=2, quiet=True)
    assert len(serial.runs) == len(expand(sweep)) == 4
    pd.testing.assert_frame_equal(serial.runs, pooled.runs)
    for table in ("runs", "latency", "timeline"):
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "serial" / f"{table}.parquet"),
                                      pd.read_parquet(tmp_path / "pool" / f"{table}.parquet"))
    runs = serial.runs
    assert {"run_key", "point_id", "strategy", "workload.rate", "replication", "seed", "offered_load",
            "goodput", "p99", "sold", "violations", "refused_with_stock"} <= set(runs.columns)
    assert (runs["violations"] == 0).all() and (runs["sold"] <= 300).all()
    assert runs["offered_load"].tolist() == [5000.0, 5000.0, 20000.0, 20000.0]
    # the two replications of a point differ (different seeds), so the CI is not degenerate
    assert runs.groupby("point_id")["requests"].nunique().min() == 2
    points = pd.read_csv(tmp_path / "serial" / "points.csv")
    assert len(points) == 2 and (points["n"] == 2).all()
    assert {"goodput_mean", "goodput_ci", "goodput_low", "goodput_high"} <= set(points.columns)
    meta = json.loads((tmp_path / "serial" / "meta.json").read_text())
    assert meta["executed"] == 4 and meta["reused"] == 0 and "numpy" in meta["versions"] and "git_sha" in meta
    config = json.loads((tmp_path / "serial" / "config.json").read_text())
    assert config["base"]["sale"]["stock"] == 300 and len(config["points"]) == 2


def test_a_run_is_the_same_whatever_else_the_sweep_contains(tmp_path):
    alone = run_sweep(small(), tmp_path / "a", workers=1, quiet=True).runs
    bigger = sweep_from_dict({
        "sweep": {"name": "small", "seed": 3, "replications": 3, "record": ["latency", "timeline"]},
        "base": {"sale": {"stock": 300}, "workload": {"kind": "poisson", "duration": 0.05}},
        "grid": {"workload.rate": [20000, 1000, 5000]},
    })
    grown = run_sweep(bigger, tmp_path / "b", workers=2, quiet=True).runs.set_index("run_key")
    pd.testing.assert_frame_equal(alone.set_index("run_key"), grown.loc[alone["run_key"]])


def test_a_killed_sweep_resumes_without_redoing_work(tmp_path):
    definition = tmp_path / "resume.toml"
    definition.write_text(SWEEP)
    out = tmp_path / "out"
    parts = out / "parts"
    total = 16
    cli = "import sys; from sim.cli import main; sys.exit(main(sys.argv[1:]))"
    process = subprocess.Popen([sys.executable, "-c", cli, "sweep", str(definition), "--workers", "1",
                                "--out", str(out), "--quiet"], start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while len(_rows(parts)) < 5 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.01)
        assert process.poll() is None, f"the sweep ended before it could be killed: {process.stderr.read()!r}"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)  # a crash, not a polite stop
        process.wait()
        process.stderr.close()
    done = {p.name: p.stat().st_mtime_ns for p in _rows(parts)}
    assert 5 <= len(done) < total, f"kill landed at {len(done)} of {total} runs; the test needs it halfway"
    assert not (out / "runs.parquet").exists()

    from sim.bench import load_sweep
    result = run_sweep(load_sweep(definition), out, workers=2, quiet=True)
    assert result.reused == len(done) and result.executed == total - len(done)
    assert {p.name: p.stat().st_mtime_ns for p in _rows(parts) if p.name in done} == done  # untouched
    fresh = run_sweep(load_sweep(definition), tmp_path / "fresh", workers=1, quiet=True)
    pd.testing.assert_frame_equal(result.runs, fresh.runs)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "latency.parquet"),
                                  pd.read_parquet(tmp_path / "fresh" / "latency.parquet"))

    again = run_sweep(load_sweep(definition), out, workers=2, quiet=True)
    assert again.executed == 0 and again.reused == total


def _rows(parts: Path) -> list[Path]:
    """Finished runs: their row files (tables and temporary files excluded)."""
    if not parts.exists():
        return []
    return [p for p in parts.glob("*.parquet") if p.name.count(".") == 1 and not p.name.startswith(".")]


def test_adaptive_replications_stop_at_the_target_or_the_budget(tmp_path):
    # Poisson request counts vary by a few %: a 50 % target is met at once, a 1e-6 one never
    loose = run_sweep(small(3, adaptive={"metric": "requests", "half_width": 0.5, "max_replications": 8}),
                      tmp_path / "loose", workers=1, quiet=True)
    assert (loose.runs.groupby("point_id").size() == 3).all()
    strict = small(adaptive={"metric": "requests", "half_width": 1e-6, "max_replications": 5, "batch": 2})
    result = run_sweep(strict, tmp_path / "strict", workers=2, quiet=True)
    sizes = result.runs.groupby("point_id").size()
    assert (sizes == 5).all()  # 2, then 4, then capped at 5
    assert sorted(result.runs["replication"].unique()) == [0, 1, 2, 3, 4]
    for _, group in result.runs.groupby("point_id"):
        assert not confidence_interval(group["requests"]).met(1e-6, True)
    with pytest.raises(Exception, match="sweep.adaptive.metric 'nope' is not a run figure"):
        run_sweep(small(adaptive={"metric": "nope", "half_width": 0.1}), tmp_path / "bad", workers=1, quiet=True)


def test_cli_sweep_prints_points_and_resumes(tmp_path, capsys):
    definition = tmp_path / "s.toml"
    definition.write_text(SWEEP.replace('"workload.rate" = [10_000, 20_000, 30_000, 40_000]',
                                        '"workload.rate" = [5_000]').replace("replications = 4", "replications = 2"))
    assert main(["sweep", str(definition), "--workers", "1", "--out", str(tmp_path / "o"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "2 runs (2 run now, 0 reused)" in out and "goodput" in out and "±" in out
    assert main(["sweep", str(definition), "--out", str(tmp_path / "o"), "--quiet"]) == 0
    assert "2 runs (0 run now, 2 reused)" in capsys.readouterr().out
    assert main(["sweep", str(tmp_path / "missing.toml")]) == 2
    assert "sweep file not found" in capsys.readouterr().err
    assert main(["sweep", str(definition), "--workers", "0"]) == 2


def test_default_results_folder_is_named_after_sweep_and_fingerprint(tmp_path):
    sweep = small(replications=1, record=())
    result = run_sweep(sweep, workers=1, quiet=True, results_root=tmp_path)
    assert result.path == tmp_path / "small" / sweep.fingerprint
    assert (result.path / "runs.parquet").is_file() and not (result.path / "latency.parquet").exists()


def test_progress_bar_with_eta_on_stderr(tmp_path, capsys):
    definition = tmp_path / "s.toml"
    definition.write_text(SWEEP.replace("replications = 4", "replications = 1"))
    assert main(["sweep", str(definition), "--workers", "1", "--out", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    assert "sweep resume: 4 runs, 0 already done, 1 process ->" in err
    lines = [line for line in err.splitlines() if line.startswith("sweep resume: ") and "|" in line]
    # stderr is not a terminal here: a plain line per tenth (one per run of 4), tqdm's format, no carriage return
    assert [line.split("|")[2].split("[")[0].strip() for line in lines] == ["1/4", "2/4", "3/4", "4/4"]
    assert lines[-1].startswith("sweep resume: 100%|##########| 4/4 [") and "<00:00" in lines[-1] and "\r" not in err


def test_speedup_benchmark_script_runs(capsys):
    import importlib.util

    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("bench_sweep", root / "experiments" / "bench_sweep.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--sweep", str(root / "experiments" / "sweeps" / "quick.toml")]) == 0
    out = capsys.readouterr().out
    assert "identical tables: yes; parallel speed-up on 2 workers:" in out and "1 worker(s)" in out
