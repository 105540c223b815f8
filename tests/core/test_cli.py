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


@pytest.mark.parametrize("argv", [
    ["run", *SMALL], ["compare", "--only", "single_redis", *SMALL], ["run", "--real", *SMALL],
    ["plan", "--peak", "1000", "--p99", "0.05"], ["sweep", "experiments/sweeps/quick.toml"], ["validate", "--quick"],
])
@pytest.mark.parametrize("where", ["file", "under_a_file"])
def test_an_unwritable_out_is_refused_before_the_run(argv, where, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out = blocker if where == "file" else blocker / "sub"
    assert main([*argv, "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing ran: not even the scenario line
    assert captured.err.startswith(f"flashsim: error: --out {out}: ") and captured.err.count("\n") == 1
    assert blocker.read_text() == "x"


def test_plot_and_cluster_refuse_an_unwritable_folder(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["plot", str(tmp_path), "--out", str(blocker)]) == 2
    assert main(["cluster", "up", "--dir", str(blocker / "c")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"flashsim: error: --out {blocker}: is a file, not a directory",
                   f"flashsim: error: --dir {blocker / 'c'}: cannot write there (Not a directory)"]


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


HEAVY = ("redis", "asyncmy", "multiprocessing", "engine.real", "sim.bench", "distributed")
IMPORTED = """
import contextlib, io, json, sys
from sim.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    code = main({argv!r})
heavy = sorted(m for m in sys.modules if m.startswith({heavy!r}))
print(json.dumps([code, heavy]))
"""


@pytest.mark.parametrize("argv", [["--help"], ["run", *SMALL], ["compare", "--only", "single_redis", *SMALL],
                                  ["run", "--help"], ["reference"]])
def test_simulated_commands_never_import_the_real_stack(argv):
    probe = IMPORTED.format(argv=argv, heavy=HEAVY)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    code, heavy = json.loads(done.stdout.splitlines()[-1])
    assert code == 0 and heavy == []


def test_the_probe_sees_a_real_command_load_the_real_stack():
    probe = IMPORTED.format(argv=["cluster", "--help"], heavy=HEAVY)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    code, heavy = json.loads(done.stdout.splitlines()[-1])
    assert code == 0 and "redis" in heavy and "engine.real" in heavy


def test_every_listed_command_exists_in_its_module_and_parses(capsys):
    from sim.cli.main import COMMANDS, build_parser, load_command

    for name in COMMANDS:
        assert callable(load_command(name).handler)
        assert main([name, "--help"]) == 0
        assert capsys.readouterr().out.startswith(f"usage: flashsim {name}")
    parser_help = build_parser().format_help()
    assert all(name in parser_help for name in COMMANDS)


def test_compare_prints_a_line_per_strategy_when_stderr_is_not_a_terminal(capsys):
    assert main(["compare", "--only", "single_redis,sharded", *SMALL]) == 0
    err = capsys.readouterr().err.splitlines()
    assert [line.split(" done in ")[0] for line in err] == ["flashsim: single_redis", "flashsim: sharded"]


def test_run_draws_a_bar_of_buyers_on_a_terminal(monkeypatch, capsys):
    import io

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["run", *SMALL]) == 0
    final = terminal.getvalue().split("\r")[-1]
    assert final.startswith("single_redis: 100%") and "2.00k/2.00k" in final and "buyers/s" in final
