"""The command line as a user meets it: exit codes, one-line errors, files written."""

import json
import subprocess
import sys

import pandas as pd
import pytest

from sim.cli import main

SMALL = ["--set", "workload.buyers=2000", "--set", "workload.window=0.05", "--set", "sale.stock=300"]


def test_run_prints_a_summary(capsys):
    assert main(["run", *SMALL, "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "single_redis" in out and "goodput" in out and "p99" in out
    assert "2,000 buyers over 0.05 s" in out


def test_run_writes_results(tmp_path, capsys):
    out_dir = tmp_path / "run1"
    assert main(["run", *SMALL, "--seed", "5", "--out", str(out_dir)]) == 0
    for name in ("config.json", "requests.parquet", "summary.csv", "meta.json", "timeline.parquet"):
        assert (out_dir / name).is_file(), name
    requests = pd.read_parquet(out_dir / "requests.parquet")
    assert len(requests) == 2000
    assert {"id", "t_arrival", "t_done", "latency", "outcome", "qty", "node"} <= set(requests.columns)
    meta = json.loads((out_dir / "meta.json").read_text())
    assert meta["seed"] == 5 and "numpy" in meta["versions"] and meta["wall_seconds"] > 0 and "git_sha" in meta
    config = json.loads((out_dir / "config.json").read_text())
    assert config["scenario"]["sale"]["stock"] == 300
    summary = pd.read_csv(out_dir / "summary.csv")
    assert summary.loc[0, "sold"] == 300


def test_compare_runs_every_strategy(capsys):
    from engine.strategies import STRATEGIES

    assert main(["compare", *SMALL]) == 0
    header = capsys.readouterr().out.splitlines()[1]
    for name in STRATEGIES:
        assert name in header


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--set", "sale.stok=1"], "unknown key 'sale.stok': valid keys under sale: sku, stock, soldout_flag"),
        (["run", "--set", "sale.stock=-5"], "stock must be >= 0"),
        (["run", "--set", "workload.rate=0"], "workload.rate must be > 0"),
        (["run", "--strategy", "magic"], "unknown strategy 'magic'; choose from: single_redis"),
        (["run", "missing.toml"], "scenario file not found: missing.toml"),
        (["run", "--seed", "-1"], "--seed must be >= 0"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_malformed_toml(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[sale\nstock = 1")
    assert main(["run", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "malformed TOML" in err and err.count("\n") == 1


def test_console_script_end_to_end(tmp_path):
    scenario = tmp_path / "s.toml"
    scenario.write_text("[sale]\nstock = 50\n[workload]\nbuyers = 500\nwindow = 0.01\n")
    done = subprocess.run([sys.executable, "-m", "sim.cli", "run", str(scenario), "--quiet"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "500 buyers" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "sim.cli", "run", "--set", "sale.stock=x"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "sale.stock: expected an integer" in bad.stderr
